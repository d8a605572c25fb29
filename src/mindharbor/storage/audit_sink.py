"""Group commit for the audit entries of read requests (and sessions' last-use times).

A read request runs read-only; the entry recording what it disclosed is handed to this worker's
writer, which inserts the entries of every request waiting at that moment in one multi-row
statement and one commit. The request's response is released only after the batch holding its
entry has committed: no PHI leaves the server before its access is durably recorded (HIPAA
164.312(b)), while a busy server pays one WAL flush for many reads. There is no timer: while a
batch is being committed the next one gathers, so an idle server commits each entry at once
and a busy one batches by itself (up to ``max_batch`` entries).

If a batch cannot be committed, every request waiting on it fails (the caller answers 503) and
nothing it read is sent. Sessions' last-use times follow each batch in a transaction of their own
(never failing the entries with them); they are not awaited: losing one only makes a session look
idle a minute early.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mindharbor.errors import ServiceUnavailable
from mindharbor.security.auth import Auth
from mindharbor.storage.audit_rows import insert_rows
from mindharbor.storage.dberrors import sqlstate
from mindharbor.storage.identity import touch_session

if TYPE_CHECKING:
    from mindharbor.storage.db import Store

log = logging.getLogger(__name__)


class AuditSink:
    def __init__(self, store: Store, max_batch: int = 512) -> None:
        self.store = store
        self.max_batch = max_batch
        self._entries: list[tuple[list[dict[str, Any]], asyncio.Future[None]]] = []
        self._since: list[float] = []  # when each of _entries was submitted (monotonic)
        self._touches: dict[str, datetime] = {}
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.entries_written = 0
        self.failing = False  # the last batch failed (health reports it)

    async def submit(self, rows: list[dict[str, Any]]) -> None:
        """Return once ``rows`` are committed (raises if their batch failed)."""
        if not rows:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._entries.append((rows, future))
        self._since.append(time.monotonic())
        self._kick()
        await future

    def touch(self, session_id: str, at: datetime) -> None:
        previous = self._touches.get(session_id)
        if previous is None or at > previous:
            self._touches[session_id] = at
        self._kick()

    @property
    def lag_seconds(self) -> float:
        """How long the oldest entry still waiting for its batch has waited (0: none)."""
        return time.monotonic() - self._since[0] if self._since else 0.0

    @property
    def pending(self) -> int:
        return sum(len(rows) for rows, _ in self._entries)

    def _kick(self) -> None:
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run())
        assert self._wake is not None
        self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._entries or self._touches:
                await self._flush_once()

    async def _flush_once(self) -> None:
        taken: list[tuple[list[dict[str, Any]], asyncio.Future[None]]] = []
        count = 0
        while self._entries and (count == 0 or count + len(self._entries[0][0]) <= self.max_batch):
            item = self._entries.pop(0)
            self._since.pop(0)
            taken.append(item)
            count += len(item[0])
        touches, self._touches = self._touches, {}
        rows = [row for batch, _ in taken for row in batch]
        if rows:
            try:
                store = self.store
                async with store.unit_of_work(Auth.system(), engine=store.audit_engine) as repo:
                    await insert_rows(repo, rows)
            except Exception as exc:
                self.failing = True
                log.error(
                    "audit batch of %d entries failed: %s %s",
                    len(rows),
                    type(exc).__name__,
                    sqlstate(exc) or "",
                )
                for _, future in taken:
                    if not future.done():
                        future.set_exception(AuditUnavailable())
                return
            self.failing = False
            self.batches += 1
            self.entries_written += len(rows)
            for _, future in taken:
                if not future.done():
                    future.set_result(None)
        if touches:
            await self._touch(touches)

    async def _touch(self, touches: dict[str, datetime]) -> None:
        """Sessions' last-use times, after the audit batch and in a transaction of their own,
        each session in one order (by id). Measured in the benchmark (issue 13): two workers'
        batches touching the same sessions in different orders deadlocked (PostgreSQL 40P01),
        and the audit entries that shared the transaction failed with them (503s). A failed
        touch is dropped, not retried: the next minute's use records the session again."""
        try:
            store = self.store
            async with store.unit_of_work(Auth.system(), engine=store.audit_engine) as repo:
                for session_id in sorted(touches):
                    await touch_session(repo, session_id, touches[session_id])
        except Exception as exc:
            log.warning(
                "last-use times of %d sessions not written: %s %s",
                len(touches),
                type(exc).__name__,
                sqlstate(exc) or "",
            )

    async def aclose(self) -> None:
        """Commit what is queued, then stop."""
        if self._task is None:
            return
        with contextlib.suppress(Exception):
            while self._entries or self._touches:
                await self._flush_once()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None


class AuditUnavailable(ServiceUnavailable):
    """The audit log could not be written: nothing may be disclosed (503)."""

    default_message = "The audit log is unavailable; nothing can be read right now."
