"""Honest health: ``/health`` says ok only when a request could actually be served.

Readiness (``GET {mount}/health``, Parse's route and shape): ``{"status": "ok"}`` with 200 when
the database answers and takes audit writes, Redis answers (when configured) and the file store
takes a write (a probe object written, read back and removed); otherwise 503 with
``{"status": "unavailable", "checks": {...}}`` naming what failed, and ``Retry-After``. A load
balancer takes the worker out of rotation; nothing secret is in the answer. Checks run
concurrently, each within ``TIMEOUT`` seconds, and a result is reused for ``CACHE_SECONDS``, so
health probes cannot load the database. Liveness (``{mount}/health/live``): 200 while the
process's event loop runs, whatever its dependencies (restart the process only if this fails).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

TIMEOUT = 3.0
CACHE_SECONDS = 2.0
PROBE_PREFIX = "_health-probe-"


class HealthChecks:
    def __init__(self, store: Any, files: Any, redis_url: str | None) -> None:
        self.store = store
        self.files = files
        self.redis_url = redis_url
        self._redis: Any = None
        self._last: tuple[float, dict[str, str]] | None = None
        self._lock = asyncio.Lock()

    async def results(self) -> dict[str, str]:
        """{"database": "ok"|"unavailable", "files": ..., "redis": ... (when configured)}."""
        async with self._lock:
            now = time.monotonic()
            if self._last is not None and now - self._last[0] < CACHE_SECONDS:
                return self._last[1]
            checks: dict[str, Callable[[], Awaitable[bool]]] = {
                "database": self.store.check_database,
                "files": self._files,
            }
            if self.redis_url:
                checks["redis"] = self._redis_ping
            outcomes = await asyncio.gather(*(_bounded(check) for check in checks.values()))
            found = {
                name: "ok" if ok else "unavailable"
                for name, ok in zip(checks, outcomes, strict=True)
            }
            self._last = (time.monotonic(), found)
            return found

    async def _files(self) -> bool:
        blobs = getattr(self.files, "blobs", None)
        if blobs is None:
            return True

        async def one_piece() -> AsyncIterator[bytes]:
            yield b"ok"

        # A key of its own per probe: workers probing the same store at once must not read or
        # delete each other's probe (a shared key made healthy workers answer 503 under load).
        key = PROBE_PREFIX + uuid.uuid4().hex
        try:
            await blobs.put(key, one_piece())
            return await blobs.read(key) == b"ok"
        finally:
            await blobs.delete(key)

    async def _redis_ping(self) -> bool:
        if self._redis is None and self.redis_url:
            import redis.asyncio as aioredis

            self._redis = aioredis.from_url(
                self.redis_url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT
            )
        return bool(await self._redis.ping())

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


async def _bounded(check: Callable[[], Awaitable[bool]]) -> bool:
    try:
        async with asyncio.timeout(TIMEOUT):
            return await check()
    except Exception:
        return False
