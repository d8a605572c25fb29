"""LiveQuery with Redis down or hung (issue 14, defect 5), over a Redis server of the test's own.

Two servers (two workers) share the fan-out. With Redis killed, or stopped (SIGSTOP: every call
hangs), a server still delivers its own writes to its own subscribers at once, and every
subscriber whose other-server events may be missed is told so (Parse's error event with
``reconnect: true``) instead of silence; when Redis is back, they are told once more (to
refetch what passed meanwhile) and events cross servers again. Both backends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.live_query.wsclient import LiveClient, session_client
from tests.support import LiveServer, free_port, live_server, make_settings

pytestmark = pytest.mark.anyio


class PrivateRedis:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        import socket

        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@pytest.fixture
def setup(
    backend_url: str, backend: str, tmp_path: Path
) -> Iterator[tuple[PrivateRedis, LiveServer, LiveServer]]:
    redis = PrivateRedis(tmp_path)
    redis.start()
    try:
        with ExitStack() as stack:
            a, b = (
                stack.enter_context(
                    live_server(
                        make_settings(backend_url, tmp_path / name, redis_url=redis.url),
                        backend,
                    )
                )
                for name in ("a", "b")
            )
            yield redis, a, b
    finally:
        if redis.proc is not None:
            redis.resume()
        redis.kill()


async def _subscriber(server: LiveServer, cls: str) -> LiveClient:
    client = await session_client(server.url, server.app_id, master_key=server.master_key)
    assert (await client.subscribe(1, cls))["op"] == "subscribed"
    return client


async def _next_event(client: LiveClient, timeout: float) -> dict[str, Any]:
    while True:
        message = await client.recv(timeout)
        if message["op"] not in ("subscribed",):
            return message


def _write(server: LiveServer, cls: str, n: int) -> str:
    return server.client().create(cls, {"n": n})


async def _both_cross(a: LiveServer, b: LiveServer, cls: str) -> None:
    """Events cross servers (waits for the fan-out to be subscribed)."""
    deadline = time.monotonic() + 20
    while True:
        on_b = await _subscriber(b, cls)
        try:
            made = _write(a, cls, 0)
            try:
                got = await _next_event(on_b, 2.0)
            except TimeoutError:
                got = {}
            if got.get("op") == "create" and got["object"]["objectId"] == made:
                return
        finally:
            await on_b.close()
        assert time.monotonic() < deadline, "events never crossed servers"


async def _told_to_reconnect(client: LiveClient, within: float) -> None:
    message = await _next_event(client, within)
    assert message["op"] == "error" and message["reconnect"] is True, message


async def test_a_dead_redis_is_said_and_local_delivery_goes_on(
    setup: tuple[PrivateRedis, LiveServer, LiveServer],
) -> None:
    redis, a, b = setup
    cls = f"Fan{uuid.uuid4().hex[:6]}"
    _write(a, cls, -1)
    await _both_cross(a, b, cls)
    on_a, on_b = await _subscriber(a, cls), await _subscriber(b, cls)
    again = None
    try:
        redis.kill()
        await _told_to_reconnect(on_a, 10)
        await _told_to_reconnect(on_b, 10)
        again = await _subscriber(a, cls)
        started = time.monotonic()
        made = _write(a, cls, 1)
        event = await _next_event(again, 5)
        assert event["op"] == "create" and event["object"]["objectId"] == made
        assert time.monotonic() - started < 2.0
        redis.start()
        await _told_to_reconnect(again, 20)  # back: refetch what passed meanwhile
        await _both_cross(a, b, cls)
    finally:  # unclosed client sockets failed whichever later test the collector ran in
        for client in (on_a, on_b, again):
            if client is not None:
                await client.close()


async def test_a_hung_redis_delays_nothing_local(
    setup: tuple[PrivateRedis, LiveServer, LiveServer],
) -> None:
    redis, a, b = setup
    cls = f"Hang{uuid.uuid4().hex[:6]}"
    _write(a, cls, -1)
    await _both_cross(a, b, cls)
    on_a, on_b = await _subscriber(a, cls), await _subscriber(b, cls)
    try:
        redis.pause()
        started = time.monotonic()
        made = _write(a, cls, 1)
        event = await _next_event(on_a, 5)
        assert event["op"] == "create" and event["object"]["objectId"] == made
        assert time.monotonic() - started < 1.5  # not held behind a publish that never returns
        await _told_to_reconnect(on_b, 10)  # b cannot get a's events: it says so
        redis.resume()
        await _both_cross(a, b, cls)
    finally:
        await on_a.close()
        await on_b.close()
