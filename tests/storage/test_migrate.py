"""Startup migrations beside a running server: every worker migrates when it starts, so on a
current database a migration must change nothing and wait for nobody; when it must change
something, it waits for the audit sealer instead of deadlocking with it.

Found by the benchmark (issue 7): with ``serve --workers 2`` one worker's unconditional
``DROP/CREATE TRIGGER`` on the audit tables deadlocked with the other worker's first audit seal,
and uvicorn stopped the whole server.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import httpx
import pytest
import sqlalchemy as sa

from mindharbor.storage.db import Store
from mindharbor.storage.system_tables import schema_table
from tests.conftest import _need_postgres
from tests.support import make_settings, open_store, postgres_database

pytestmark = pytest.mark.anyio


def _asyncpg_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def test_a_second_migration_writes_nothing(fresh_backend_url: str, tmp_path: Path) -> None:
    settings = make_settings(fresh_backend_url, tmp_path)
    async with open_store(settings) as store:
        async with store.engine.connect() as conn:
            before = (await conn.execute(sa.select(schema_table))).all()
        await store.migrate()
        async with store.engine.connect() as conn:
            after = (await conn.execute(sa.select(schema_table))).all()
    assert before == after  # not even updatedAt moved: no row was rewritten


@pytest.fixture
def pg_url() -> object:
    _need_postgres()
    with postgres_database() as url:
        yield url


async def test_migrating_a_current_database_waits_for_no_writer(
    pg_url: str, tmp_path: Path
) -> None:
    settings = make_settings(pg_url, tmp_path)
    async with open_store(settings):
        pass
    writer = await asyncpg.connect(_asyncpg_url(pg_url))
    try:
        # What a serving worker holds mid-request and mid-seal: row-exclusive locks on the
        # audit tables and a class table. Any DDL on them would wait for this transaction.
        tx = writer.transaction()
        await tx.start()
        await writer.execute('LOCK TABLE "AuditLog", "_AuditSeal", "Message" IN ROW EXCLUSIVE MODE')
        await writer.execute("SELECT pg_advisory_xact_lock(7315002)")  # a seal in progress
        second = Store(settings)
        try:
            # Deadlock detection, not a speed check: the old code blocked here until the writer
            # ended, which in this test is never.
            await asyncio.wait_for(second.migrate(), timeout=60)
        finally:
            await second.close()
        await tx.rollback()
    finally:
        await writer.close()


async def test_a_migration_that_must_change_something_waits_for_the_sealer(
    pg_url: str, tmp_path: Path
) -> None:
    settings = make_settings(pg_url, tmp_path)
    async with open_store(settings):
        pass
    sealer = await asyncpg.connect(_asyncpg_url(pg_url))
    try:
        await sealer.execute('DROP TRIGGER append_only ON "AuditLog"')  # an older database
        await sealer.execute("SELECT pg_advisory_lock(7315002)")
        store = Store(settings)
        try:
            task = asyncio.ensure_future(store.migrate())
            waiting = 0
            for _ in range(600):
                waiting = await sealer.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND objid = 7315002 AND NOT granted"
                )
                if waiting or task.done():
                    break
                await asyncio.sleep(0.05)
            assert waiting == 1 and not task.done()  # queued behind the seal, holding no DDL
            await sealer.execute("SELECT pg_advisory_unlock(7315002)")
            await asyncio.wait_for(task, timeout=60)
        finally:
            await store.close()
        restored = await sealer.fetchval(
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'append_only' "
            "AND tgrelid = '\"AuditLog\"'::regclass"
        )
        assert restored == 1
    finally:
        await sealer.close()


def test_serve_with_two_workers_starts_and_seals(tmp_path: Path) -> None:
    """Both workers migrate and schedule a seal at once, on PostgreSQL, repeatedly."""
    _need_postgres()
    from tests.support import free_port, serve_process

    with postgres_database() as url:
        for round_ in range(3):
            port = free_port()
            server = serve_process(
                tmp_path / f"data{round_}",
                port,
                2,
                database_url=url,
                master_key="test-master-key-not-secret",
                job_schedule="sealAuditLog=1",
            )
            try:
                deadline = time.monotonic() + 90
                answered = 0
                while answered < 20:
                    assert server.poll() is None, "the server stopped while starting"
                    assert time.monotonic() < deadline, "the server did not start"
                    try:
                        health = httpx.get(f"http://127.0.0.1:{port}/parse/health", timeout=2)
                        answered += health.status_code == 200
                    except httpx.HTTPError:
                        pass
                    time.sleep(0.1)
                time.sleep(2.5)  # a few scheduled seals in both workers
                assert server.poll() is None, "a worker failed after starting"
            finally:
                server.terminate()
                output = server.communicate(timeout=30)[0]
            assert "deadlock" not in output.lower(), output
            assert "Traceback" not in output, output
