"""Issue 13: reads run without a transaction and their audit entries are group-committed by the
worker's audit writer; the response is released only once its entry is committed. Kill -9 the
whole server under a stream of PHI reads: every response a client received must have its
``phi.read`` entry in the log (entries for answers that never left are fine)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import _need_postgres
from tests.support import free_port, postgres_database, serve_process, wait_healthy

KEY = "kill-test-master-key-0123456789abcdef"
PASSWORD = "a long enough passphrase"


@contextmanager
def _database(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'kill.db'}"
        return
    _need_postgres()
    with postgres_database() as url:
        yield url


def _tree(root: int) -> list[int]:
    """``root`` and every descendant (Linux /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat[1])
    found, frontier = [root], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def _entries(url: str, user_id: str) -> int:
    query = "SELECT count(*) FROM \"AuditLog\" WHERE action = 'phi.read' AND actor = "
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return int(conn.execute(query + "?", (user_id,)).fetchone()[0])

    async def count() -> int:
        conn = await asyncpg.connect(url)
        try:
            return int(await conn.fetchval(query + "$1", user_id))
        finally:
            await conn.close()

    return asyncio.run(count())


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_kill_9_never_leaves_a_delivered_read_without_its_entry(
    backend: str, tmp_path: Path
) -> None:
    with _database(backend, tmp_path) as url:
        port = free_port()
        server = serve_process(
            tmp_path,
            port,
            2,
            database_url=url,
            master_key=KEY,
            mfa_required_roles="",
            login_rate_per_ip="100000",
            job_schedule="",
        )
        base = f"http://127.0.0.1:{port}/parse"
        headers = {"X-Parse-Application-Id": "mindharbor"}
        try:
            wait_healthy(server, f"http://127.0.0.1:{port}")
            user = httpx.post(
                f"{base}/users",
                json={"username": "kill.patient", "password": PASSWORD},
                headers=headers,
            ).json()
            mine = {**headers, "X-Parse-Session-Token": user["sessionToken"]}
            profile = httpx.post(
                f"{base}/classes/PatientProfile",
                json={
                    "user": {
                        "__type": "Pointer",
                        "className": "_User",
                        "objectId": user["objectId"],
                    },
                    "displayName": "Kill Test",
                },
                headers=mine,
            )
            assert profile.status_code == 201, profile.text
            path = f"{base}/classes/PatientProfile/{profile.json()['objectId']}"
            before = _entries(url, user["objectId"])
            delivered: list[int] = []
            stop = threading.Event()

            def read() -> None:
                with httpx.Client(headers=mine, timeout=5) as http:
                    while not stop.is_set():
                        try:
                            got = http.get(path)
                        except httpx.HTTPError:
                            return  # the server is gone
                        if got.status_code == 200 and got.json().get("displayName"):
                            delivered.append(1)

            readers = [threading.Thread(target=read) for _ in range(6)]
            for thread in readers:
                thread.start()
            time.sleep(2.0)
            for pid in _tree(server.pid):  # the supervisor first: nothing restarts the workers
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            stop.set()
            for thread in readers:
                thread.join(timeout=10)
        finally:
            stop_server = server.poll() is None
            if stop_server:
                server.kill()
            server.communicate(timeout=30)
        assert len(delivered) > 20, "too few reads before the kill to mean anything"
        recorded = _entries(url, user["objectId"]) - before
        assert recorded >= len(delivered), (recorded, len(delivered))
