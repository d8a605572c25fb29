"""A query's cost is bounded before any of it is built (issue 14, defect 7): thousands of terms
are refused with 102 in milliseconds, over REST (the SDK's POST form) and LiveQuery, while the
same worker keeps answering; both backends."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from tests.live_query.wsclient import session_client
from tests.support import LiveServer

pytestmark = pytest.mark.anyio

HUGE = {"$and": [{"$or": [{"n": i * 1000 + j} for j in range(1000)]} for i in range(8)]}


def _health_during(live: LiveServer, stop: threading.Event, worst: list[float]) -> None:
    with httpx.Client(base_url=live.url, timeout=30) as client:
        while not stop.is_set():
            started = time.monotonic()
            assert client.get("/health/live").status_code == 200
            worst.append(time.monotonic() - started)
            time.sleep(0.01)


def test_a_huge_where_is_refused_at_once(server: LiveServer) -> None:
    api = server.client()
    stop, worst = threading.Event(), []  # type: ignore[var-annotated]
    watcher = threading.Thread(target=_health_during, args=(server, stop, worst))
    watcher.start()
    try:
        for path in ("/classes/Anything", "/users"):
            started = time.monotonic()
            answer = api.post(
                path,
                {"_method": "GET", "where": HUGE},
                master=True,
                headers={"Content-Type": "text/plain"},
            )
            elapsed = time.monotonic() - started
            assert answer.status_code == 400, answer.text
            assert answer.json()["code"] == 102 and "too complex" in answer.json()["error"]
            assert elapsed < 1.0, elapsed
    finally:
        deadline = time.monotonic() + 10
        while not worst and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()
        watcher.join()
    assert worst and max(worst) < 1.0


async def test_a_huge_live_query_is_refused(server: LiveServer) -> None:
    live = await session_client(server.url, server.app_id, master_key=server.master_key)
    try:
        started = time.monotonic()
        answer: dict[str, Any] = await live.subscribe(1, "Anything", HUGE)
        assert answer["op"] == "error" and answer["code"] == 102, answer
        assert time.monotonic() - started < 1.0
    finally:
        await live.close()
