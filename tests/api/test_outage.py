"""When the database cannot be used, MindHarbor says so (issue 14, defect 3).

PostgreSQL is reached through a real TCP proxy the test can cut: requests then answer 503 with
``Retry-After`` and Parse's code 1, ``/health`` answers 503 naming the database, liveness stays
200, and everything works again once the proxy is back. A full disk (SQLite's, filled for real
with a page limit) is a clear 503, not a generic 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import create_async_engine

from mindharbor.storage.dberrors import outage
from tests.support import (
    free_port,
    live_server,
    make_settings,
    postgres_available,
    postgres_database,
)


class Proxy:
    """127.0.0.1:<port> → PostgreSQL, in a thread; ``cut`` drops every connection and stops
    accepting, ``restore`` accepts again."""

    def __init__(self, target_port: int = 5432) -> None:
        self.port = free_port()
        self.target_port = target_port
        self.loop = asyncio.new_event_loop()
        self.server: asyncio.Server | None = None
        self.links: set[asyncio.StreamWriter] = set()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.restore()

    def _call(self, coro: object) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)  # type: ignore[arg-type]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.links.update({writer, up_writer})
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _start(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for writer in list(self.links):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self.links.clear()

    def restore(self) -> None:
        self._call(self._start())

    def cut(self) -> None:
        self._call(self._stop())

    def close(self) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[Proxy, str]]:
    if not postgres_available():
        pytest.skip("PostgreSQL not reachable: the outage test cuts its connections")
    with postgres_database() as url:
        proxy = Proxy()
        try:
            yield proxy, url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        finally:
            proxy.close()


@pytest.mark.postgres
def test_a_database_outage_is_a_503_and_health_says_so(
    proxied: tuple[Proxy, str], tmp_path: Path
) -> None:
    proxy, url = proxied
    settings = make_settings(url, tmp_path, mfa_required_roles="", login_rate_per_ip=100_000)
    with live_server(settings, "postgres") as live:
        api = live.client()
        name = f"p_{uuid.uuid4().hex[:8]}"
        made = api.post("/users", {"username": name, "password": "a long enough passphrase"})
        token = made.json()["sessionToken"]
        session = {"X-Parse-Session-Token": token}
        assert api.get("/users/me", headers=session).status_code == 200
        assert api.get("/health").json() == {"status": "ok"}
        proxy.cut()
        time.sleep(2.1)  # the health result is reused for 2 s
        for path in ("/classes/Message", "/users/me"):
            started = time.monotonic()
            down = api.get(path, headers=session)
            assert time.monotonic() - started < 10
            assert down.status_code == 503, down.text
            assert down.json()["code"] == 1 and down.headers["Retry-After"].isdigit()
        created = api.post("/classes/Note", {"text": "x"}, master=True)
        assert created.status_code == 503, created.text
        health = api.get("/health")
        assert health.status_code == 503 and health.headers["Retry-After"]
        assert health.json()["status"] != "ok"
        assert health.json()["checks"]["database"] == "unavailable"
        assert api.get("/health/live").json() == {"status": "alive"}
        proxy.restore()
        deadline = time.monotonic() + 20
        while api.get("/users/me", headers=session).status_code != 200:
            assert time.monotonic() < deadline, "did not recover"
            time.sleep(0.2)
        time.sleep(2.1)
        assert api.get("/health").json() == {"status": "ok"}


def test_a_full_disk_is_a_clear_503(tmp_path: Path) -> None:
    async def fill() -> Exception:
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'full.db'}")

        @event.listens_for(engine.sync_engine, "connect")
        def _tiny(dbapi_conn: object, _record: object) -> None:
            cursor = dbapi_conn.cursor()  # type: ignore[attr-defined]
            cursor.execute("PRAGMA max_page_count = 8")
            cursor.close()

        try:
            async with engine.begin() as conn:
                await conn.execute(sa.text("CREATE TABLE t (v TEXT)"))
                for _ in range(200):
                    await conn.execute(sa.text("INSERT INTO t VALUES (:v)"), {"v": "x" * 4000})
        except sa.exc.DBAPIError as exc:
            return exc
        finally:
            await engine.dispose()
        raise AssertionError("the database never filled up")

    error = asyncio.run(fill())
    mapped = outage(error)
    assert mapped is not None and mapped.http_status == 503
    assert "space" in mapped.message
    assert outage(ConnectionRefusedError()) is not None
    assert outage(ValueError("not an outage")) is None
