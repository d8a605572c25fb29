"""JSON log lines (standard library ``logging``), one object per line on standard output.

Every record carries ``time``, ``level``, ``logger`` and ``message``; request lines add the
fields the request observer passes in ``extra``. An exception is written as its type and the
frames it passed through, never its message or the values in it (a database error can quote a
row). uvicorn's access log stays off: its lines carry the whole URL, query string included.

In ``serve`` the lines are written by a thread of their own (:func:`write_off_loop`): a slow
or stalled reader of standard output (a full pipe, a paused log shipper) must never stall the
event loop. When that thread falls ``QUEUE_SIZE`` lines behind, new lines are dropped and
counted (``LineWriter.dropped``), not waited for. Request lines skip the ``logging`` machinery
there (one ``orjson.dumps``: a request line cost 74 us through ``logging``).
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import threading
import traceback
from datetime import UTC, datetime
from typing import Any

import orjson

from mindharbor.observe import requests

# Attributes every LogRecord has: anything else came from ``extra``.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            kind, _, trace = record.exc_info
            line["exception"] = kind.__name__
            line["stack"] = [
                f"{frame.filename}:{frame.lineno} {frame.name}"
                for frame in traceback.extract_tb(trace)
            ]
        return orjson.dumps(line, default=str).decode()


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for ``serve`` (and uvicorn's ``log_config``, so every
    worker applies it): JSON to standard output, uvicorn's access log silenced."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "mindharbor.observe.logs.JsonFormatter"}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            }
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            "alembic": {"level": "WARNING"},
        },
    }


QUEUE_SIZE = 10_000
FLUSH_SECONDS = 0.05


class LineWriter:
    """Writes whole lines to a file descriptor from a thread of its own, in batches.

    ``put`` only appends to a deque (thread-safe, no lock, no wake-up): the thread wakes every
    ``FLUSH_SECONDS`` and writes what is waiting in one ``write``. Past ``limit`` waiting lines,
    new ones are dropped and counted. At exit the last lines are written if that takes under
    two seconds (a reader that is gone must not hold the process).
    """

    def __init__(self, fd: int = 1, limit: int = QUEUE_SIZE) -> None:
        self.fd = fd
        self.limit = limit
        self.lines: collections.deque[bytes] = collections.deque()
        self.dropped = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def put(self, line: bytes) -> None:
        if len(self.lines) >= self.limit:
            self.dropped += 1
            return
        self.lines.append(line)

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            self.flush()
        self.flush()

    def flush(self) -> None:
        batch = []
        while self.lines:
            batch.append(self.lines.popleft())
        data = memoryview(b"".join(batch))
        while data:
            try:
                written = os.write(self.fd, data)
            except InterruptedError:
                continue
            except OSError:
                return  # standard output is gone: nothing to do with these lines
            data = data[written:]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


class LineHandler(logging.Handler):
    """A logging handler that formats in the caller and hands the line to a ``LineWriter``."""

    def __init__(self, writer: LineWriter) -> None:
        super().__init__()
        self.writer = writer
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.writer.put(self.format(record).encode() + b"\n")
        except Exception:
            self.handleError(record)


_writer: LineWriter | None = None


def write_off_loop() -> LineWriter:
    """Send this process's log lines (and request lines) through one writer thread on
    standard output, replacing the root logger's handlers (once per process)."""
    global _writer
    if _writer is None:
        _writer = LineWriter()
    root = logging.getLogger()
    root.handlers = [LineHandler(_writer)]
    writer = _writer
    requests.set_line_sink(lambda line: writer.put(orjson.dumps(line) + b"\n"))
    return writer
