"""Scale-out and misbehaving clients: two workers fan out through the real Redis, a stalled
client is cut off without slowing the others, and keepalive pings find a dead peer."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn

from mindharbor.app import create_app
from mindharbor.settings import Settings
from tests.live_query.wsclient import session_client
from tests.support import (
    MASTER_KEY,
    REQUIRE_SERVICES,
    LiveServer,
    ParseClient,
    free_port,
    live_server,
    make_settings,
    unique_class,
)

pytestmark = pytest.mark.anyio
REDIS_URL = "redis://127.0.0.1:6379/0"


def _need_redis() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except Exception:
        if REQUIRE_SERVICES:
            pytest.fail("Redis at 127.0.0.1:6379 is required (MINDHARBOR_REQUIRE_SERVICES=1)")
        pytest.skip("Redis not reachable at 127.0.0.1:6379: fan-out test skipped")


@pytest.mark.redis
async def test_two_workers_fan_out_through_redis(fresh_backend_url: str, tmp_path: Path) -> None:
    _need_redis()
    settings = make_settings(fresh_backend_url, tmp_path, redis_url=REDIS_URL)
    backend = "postgres" if fresh_backend_url.startswith("postgres") else "sqlite"
    with live_server(settings, backend) as one, live_server(settings, backend) as two:
        cls = unique_class("Lq")
        writer = two.client()
        writer.create_class(cls, {"name": {"type": "String"}})
        on_one = await session_client(one.url, one.app_id)
        on_two = await session_client(two.url, two.app_id)
        try:
            for live in (on_one, on_two):
                assert (await live.subscribe(1, cls))["op"] == "subscribed"
            oid = writer.create(cls, {"name": "via worker 2", "ACL": {"*": {"read": True}}})
            for live in (on_one, on_two):
                created = await live.expect("create")
                assert created["object"]["objectId"] == oid
                assert created["object"]["name"] == "via worker 2"
            one.client().put(f"/classes/{cls}/{oid}", {"name": "via worker 1"}, master=True)
            for live in (on_one, on_two):
                assert (await live.expect("update"))["original"]["name"] == "via worker 2"
            await on_one.silent(0.3)  # exactly once per worker, not once per publisher
        finally:
            await on_one.close()
            await on_two.close()


@contextmanager
def _server(settings: Settings, **uvicorn_options: Any) -> Iterator[tuple[str, Any]]:
    """A live server whose app object the test can inspect (for the hub's connections)."""
    port = free_port()
    app = create_app(settings)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **uvicorn_options
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}{settings.mount_path}", app.state.server
    finally:
        server.should_exit = True
        thread.join(timeout=30)


async def _wait_until(check: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


async def test_stalled_client_is_disconnected_and_others_keep_up(
    backend_url: str, tmp_path: Path
) -> None:
    settings = make_settings(
        backend_url, tmp_path, live_query_queue_size=8, live_query_send_timeout_seconds=2.0
    )
    backend = "postgres" if backend_url.startswith("postgres") else "sqlite"
    with _server(settings) as (url, mh):
        api = ParseClient(LiveServer(url, settings.app_id, MASTER_KEY, settings, backend))
        cls = unique_class("Lq")
        api.create_class(cls, {"blob": {"type": "String"}, "n": {"type": "Number"}})
        # A raw socket with a small receive buffer that stops reading after subscribing: its
        # TCP window closes and the server's sends to it block.
        stalled = _raw_websocket(url, rcvbuf=8192)
        stalled.sendall(_frame({"op": "connect", "applicationId": settings.app_id}))
        stalled.sendall(
            _frame({"op": "subscribe", "requestId": 1, "query": {"className": cls, "where": {}}})
        )
        await _wait_until(lambda: any(c.subscriptions for c in mh.live_query.connections), 5)
        healthy = await session_client(url, settings.app_id)
        assert (await healthy.subscribe(1, cls))["op"] == "subscribed"
        try:
            blob = "x" * 200_000
            for n in range(60):
                api.create(cls, {"blob": blob, "n": n, "ACL": {"*": {"read": True}}})
                assert (await healthy.expect("create"))["object"]["n"] == n
            # The hub dropped the stalled connection (queue overflow or send timeout).
            await _wait_until(lambda: len(mh.live_query.connections) == 1, 15)
            # Its socket is closed by the server: reading it to the end finishes.
            stalled.settimeout(10)
            while stalled.recv(1 << 20):
                pass
        finally:
            await healthy.close()
            stalled.close()
            api.http.close()


def _raw_websocket(url: str, rcvbuf: int | None = None) -> socket.socket:
    """A WebSocket opened by hand on a plain socket (the test decides when it reads)."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    path = "/" + url.split("//")[1].split("/", 1)[1]
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    try:
        _handshake(sock, host, port, path)
    except BaseException:
        sock.close()
        raise
    return sock


def _handshake(sock: socket.socket, host: str, port: str, path: str) -> None:
    sock.connect((host, int(port)))
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)
    assert b" 101 " in response, response


def _frame(body: dict[str, Any]) -> bytes:
    """One masked client text frame (RFC 6455 section 5.2)."""
    payload = orjson.dumps(body)
    mask = os.urandom(4)
    header = bytes([0x81])
    if len(payload) < 126:
        header += bytes([0x80 | len(payload)])
    else:
        header += bytes([0x80 | 126]) + len(payload).to_bytes(2, "big")
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


async def test_keepalive_pings_find_a_dead_peer(backend_url: str, tmp_path: Path) -> None:
    settings = make_settings(backend_url, tmp_path)
    with _server(settings, ws_ping_interval=0.5, ws_ping_timeout=0.5) as (url, mh):
        raw = _raw_websocket(url)
        try:
            await _wait_until(lambda: len(mh.live_query.connections) == 1, 5)
            # This peer never answers a ping: the server gives up on it and the hub forgets it.
            await _wait_until(lambda: len(mh.live_query.connections) == 0, 10)
        finally:
            raw.close()
