"""Two workers' audit batches never fail each other through sessions' last-use times (issue 13).

Found by `make bench-compare` (S2, 2 workers, PostgreSQL): each worker's group-commit batch also
wrote the last-use time of the sessions it had served, in the batch's transaction and in the
order they were first used. Two workers serving the same sessions in different orders deadlocked
(40P01), and the read-audit entries sharing the transaction failed with them: 17 reads answered
503 in one 8-second round. Last-use times now follow the batch in a transaction of their own, in
one order; this drives two stores (two workers) over the same sessions in opposite orders.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
import sqlalchemy as sa

from mindharbor.domain.audit.writer import entry_row
from mindharbor.security.auth import Auth
from mindharbor.storage.codec import new_object_id, utcnow
from mindharbor.storage.db import Store
from tests.support import make_settings, open_store

pytestmark = pytest.mark.anyio


async def _sessions(store: Store, count: int) -> list[str]:
    ids = [new_object_id() for _ in range(count)]
    async with store.unit_of_work(Auth.system()) as repo:
        table = repo.table(repo.schema_or_none("_Session"))  # type: ignore[arg-type]
        now = utcnow()
        await repo.conn.execute(
            table.insert(),
            [
                {"objectId": i, "createdAt": now, "updatedAt": now, "_rperm": [], "_wperm": []}
                for i in ids
            ],
        )
    return ids


def _entry(n: int) -> dict[str, object]:
    return entry_row(
        "phi.read", entity_type="Test", entity_id=str(n), summary="Read", actor=None, metadata={}
    )


async def test_two_workers_touching_the_same_sessions_lose_no_audit_entry(
    fresh_backend_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mindharbor.storage.audit_sink")
    settings = make_settings(fresh_backend_url, tmp_path)
    async with open_store(settings) as one, open_store(settings) as two:
        ids = await _sessions(one, 40)
        rounds = 25
        for n in range(rounds):
            at = utcnow()
            for session_id in ids:
                one.audit_sink.touch(session_id, at)
            for session_id in reversed(ids):
                two.audit_sink.touch(session_id, at)
            # One worker's batch carries a read's entry, the other's only last-use times (the
            # entry of a request waiting on a failed batch raises AuditUnavailable: a 503).
            await asyncio.gather(one.audit_sink.submit([_entry(n)]), two.audit_sink._flush_once())
        last = at
        for sink in (one.audit_sink, two.audit_sink):
            while sink.pending or sink._touches:
                await asyncio.sleep(0.01)
        await one.audit_sink.aclose()
        await two.audit_sink.aclose()
        assert not one.audit_sink.failing and not two.audit_sink.failing
        async with one.unit_of_work(Auth.system()) as repo:
            audit = repo.table(repo.schema_or_none("AuditLog"))  # type: ignore[arg-type]
            written = await repo.conn.scalar(
                sa.select(sa.func.count()).select_from(audit).where(audit.c.entityType == "Test")
            )
            session = repo.table(repo.schema_or_none("_Session"))  # type: ignore[arg-type]
            touched = await repo.conn.scalar(
                sa.select(sa.func.count())
                .select_from(session)
                .where(session.c.objectId.in_(ids), session.c._last_used_at == last)
            )
        assert written == rounds
        # Neither worker's batch failed (a deadlock fails one of the two, either side).
        assert not [r.getMessage() for r in caplog.records], caplog.records
        assert touched == len(ids)  # the last round's times were written too
