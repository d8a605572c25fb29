"""Slow senders are timed out and oversized heads refused (issue 14, defect 6).

Raw sockets against ``mindharbor serve`` in its own process, with short limits: a head trickled
a line at a time and a body sent a byte at a time get ``408`` by their deadline; 100 KB of
headers or 500 header lines get ``431``; ordinary and keep-alive requests are untouched.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import free_port, serve_process

HEAD_TIMEOUT = 1.5
BODY_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    data_dir: Path = tmp_path_factory.mktemp("slow")
    port = free_port()
    server = serve_process(
        data_dir,
        port,
        1,
        master_key="test-master-key-not-secret",
        header_timeout_seconds=str(HEAD_TIMEOUT),
        body_timeout_seconds=str(BODY_TIMEOUT),
        max_header_bytes="16384",
        max_headers="100",
    )
    deadline = time.monotonic() + 60
    while True:
        assert server.poll() is None, server.communicate()[0]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/parse/health/live", timeout=1).is_success:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.1)
    try:
        yield port
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
        assert "Traceback" not in output, output


@pytest.fixture
def connect(port: int) -> Iterator[Callable[[], socket.socket]]:
    opened: list[socket.socket] = []

    def open_one() -> socket.socket:
        opened.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        return opened[-1]

    yield open_one
    for conn in opened:
        conn.close()


def _read_all(conn: socket.socket) -> bytes:
    """Everything until the server closes the connection."""
    chunks = []
    while chunk := conn.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def test_a_trickled_head_gets_408_by_its_deadline(connect: Callable[[], socket.socket]) -> None:
    conn = connect()
    started = time.monotonic()
    conn.sendall(b"GET /parse/health/live HTTP/1.1\r\n")
    answer = b""
    try:
        for index in range(100):  # a header line every 0.25 s, never the blank line
            conn.sendall(b"X-Slow-%d: y\r\n" % index)
            time.sleep(0.25)
    except OSError:
        pass  # closed under us: what we want
    answer = _read_all(conn)
    took = time.monotonic() - started
    assert _status(answer) == 408, answer
    assert b'"code":124' in answer
    assert took < HEAD_TIMEOUT + 1.5, took


def test_a_silent_connection_is_closed(connect: Callable[[], socket.socket]) -> None:
    conn = connect()
    started = time.monotonic()
    answer = _read_all(conn)
    assert time.monotonic() - started < HEAD_TIMEOUT + 1.5
    assert answer == b"" or _status(answer) == 408


def test_a_body_at_one_byte_a_second_gets_408(connect: Callable[[], socket.socket]) -> None:
    conn = connect()
    conn.sendall(
        b"POST /parse/classes/Note HTTP/1.1\r\nHost: t\r\nX-Parse-Application-Id: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    started = time.monotonic()
    try:
        for _ in range(60):
            time.sleep(0.5)
            conn.sendall(b" ")
    except OSError:
        pass
    answer = _read_all(conn)
    took = time.monotonic() - started
    assert _status(answer) == 408, answer
    assert took < BODY_TIMEOUT + 1.5, took


@pytest.mark.parametrize(
    "headers",
    [
        b"X-Big: " + b"a" * 100_000 + b"\r\n",
        b"".join(b"X-H%d: v\r\n" % i for i in range(500)),
    ],
    ids=["100KB", "500 headers"],
)
def test_oversized_heads_get_431(connect: Callable[[], socket.socket], headers: bytes) -> None:
    conn = connect()
    with contextlib.suppress(OSError):
        conn.sendall(b"GET /parse/health/live HTTP/1.1\r\nHost: t\r\n" + headers + b"\r\n")
    answer = _read_all(conn)
    assert _status(answer) == 431, answer[:200]
    assert b'"code":107' in answer


def test_ordinary_requests_and_keep_alive_are_untouched(
    port: int, connect: Callable[[], socket.socket]
) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        for _ in range(3):
            assert client.get("/parse/health/live").status_code == 200
            time.sleep(HEAD_TIMEOUT / 2)  # idle between requests, under the head deadline
        many = {f"X-H{i}": "v" for i in range(50)}
        assert client.get("/parse/health/live", headers=many).status_code == 200
    conn = connect()  # a body sent slowly but within its deadline
    conn.sendall(
        b"POST /parse/functions/nothing HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{"
    )
    time.sleep(BODY_TIMEOUT / 2)
    conn.sendall(b"}")
    assert _status(_read_all(conn)) not in (408, 431)
