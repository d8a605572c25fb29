"""The recent log lines ``GET /scriptlog`` answers (the Dashboard's Logs page), PHI-free.

A bounded ring of records from the ``mindharbor`` loggers, kept per process: only the formatted
message, its level and its time. Tracebacks and exception text are never kept (an exception may
carry PHI or SQL; the process log has them for operators), and the code logs no PHI by rule.
Each worker answers from its own ring, as Parse Server answers from its own log files.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from datetime import UTC, datetime
from typing import Any

CAPACITY = 1000
_LEVELS = {"error": logging.ERROR, "warn": logging.WARNING, "info": logging.INFO}


class RingHandler(logging.Handler):
    """Keeps the last ``CAPACITY`` records as ``(levelno, level, message, timestamp)``."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.records: deque[tuple[int, str, str, str]] = deque(maxlen=CAPACITY)
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break logging
            message = str(record.msg)
        when = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        entry = (record.levelno, record.levelname.lower(), message, when.replace("+00:00", "Z"))
        with self._guard:
            self.records.append(entry)

    def recent(self, level: str, size: int, order: str) -> list[dict[str, Any]]:
        """Parse's shape: ``[{level, message, timestamp}]``, newest first unless ``asc``."""
        floor = _LEVELS.get(level, logging.INFO)
        with self._guard:
            rows = [r for r in self.records if r[0] >= floor]
        rows.reverse()
        rows = rows[:size]
        if order == "asc":
            rows.reverse()
        return [{"level": lvl, "message": msg, "timestamp": ts} for _, lvl, msg, ts in rows]


_handler: RingHandler | None = None
_install_guard = threading.Lock()


def ring() -> RingHandler:
    """The process's ring, attached to the ``mindharbor`` logger on first use."""
    global _handler
    with _install_guard:
        if _handler is None:
            _handler = RingHandler()
            # The loggers' own levels decide what is kept (as for any other handler).
            logging.getLogger("mindharbor").addHandler(_handler)
        return _handler
