"""Rate limits for credential endpoints (login, MFA, password reset, sign-up).

Why: account lockout alone protects one account; a per-IP (and per-identifier) limit is what
stops password spraying across many accounts and brute force of 6-digit MFA codes. Both
implementations use a fixed window: a key may be hit ``limit`` times per ``window_seconds``.

* ``MemoryRateLimiter`` is for the embedded single-process demo. Its memory is bounded: expired
  windows are swept, and past ``max_keys`` the oldest window is dropped, so an attacker
  cycling through source addresses cannot exhaust the server's memory.
* ``RedisRateLimiter`` is for several workers/hosts: a count kept in one process would let an
  attacker multiply their budget by the number of workers. INCR and (P)EXPIRE run in one Lua
  script, so the count and its expiry are set atomically; a crash between the two can never
  leave a counter without a TTL (which would lock a key out forever). Keys are stored as
  ``mh:rl:`` + SHA-256 of the caller's key, which keeps e-mail addresses and IPs out of the
  Redis keyspace (data minimisation; not a secrecy guarantee).

A Redis failure is not swallowed: ``hit`` raises ``redis.exceptions.RedisError``, so the request
fails closed (a 500) instead of silently dropping brute-force protection.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as redis_asyncio

KEY_PREFIX = "mh:rl:"
_SWEEP_SECONDS = 60.0

# KEYS[1] counter key, ARGV[1] window in milliseconds. Returns the count including this hit.
_HIT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return count
"""


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window_seconds: int) -> bool:
        """Count one hit on ``key``; True when it is within ``limit`` for the current window."""
        ...

    async def reset(self, key: str) -> None:
        """Forget ``key``'s count (e.g. after a successful login)."""
        ...

    async def aclose(self) -> None: ...


def _check_args(limit: int, window_seconds: int) -> None:
    if limit < 1 or window_seconds < 1:
        raise ValueError("limit and window_seconds must be positive")


class MemoryRateLimiter:
    """Fixed-window counters in this process, bounded to ``max_keys`` live windows."""

    def __init__(
        self, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max_keys = max_keys
        self._clock = clock
        # key -> (window end, hits); dict order is insertion order = oldest window first.
        self._windows: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()
        self._next_sweep = clock() + _SWEEP_SECONDS

    async def hit(self, key: str, limit: int, window_seconds: int) -> bool:
        _check_args(limit, window_seconds)
        with self._lock:
            now = self._clock()
            ends, count = self._windows.get(key, (0.0, 0))
            if ends <= now:
                self._windows.pop(key, None)
                self._make_room(now)
                ends, count = now + window_seconds, 0
            if count >= limit:
                return False
            self._windows[key] = (ends, count + 1)
            return True

    async def reset(self, key: str) -> None:
        with self._lock:
            self._windows.pop(key, None)

    async def aclose(self) -> None:
        with self._lock:
            self._windows.clear()

    def __len__(self) -> int:
        return len(self._windows)

    def _make_room(self, now: float) -> None:
        """Before adding a window: sweep expired ones (each minute, or when full), then drop
        the oldest while still full."""
        if now >= self._next_sweep or len(self._windows) >= self._max_keys:
            self._next_sweep = now + _SWEEP_SECONDS
            expired = [key for key, (ends, _) in self._windows.items() if ends <= now]
            for key in expired:
                del self._windows[key]
        while len(self._windows) >= self._max_keys:
            del self._windows[next(iter(self._windows))]


class RedisRateLimiter:
    """Fixed-window counters in Redis, shared by every worker that uses the same Redis."""

    def __init__(self, url: str, *, prefix: str = KEY_PREFIX) -> None:
        self._redis = redis_asyncio.Redis.from_url(url)
        self._prefix = prefix
        self._script = self._redis.register_script(_HIT_SCRIPT)

    def redis_key(self, key: str) -> str:
        """The Redis key that holds ``key``'s counter."""
        return self._prefix + hashlib.sha256(key.encode("utf-8")).hexdigest()

    async def hit(self, key: str, limit: int, window_seconds: int) -> bool:
        _check_args(limit, window_seconds)
        window_ms = math.ceil(window_seconds * 1000)
        count = await self._script(keys=[self.redis_key(key)], args=[window_ms])
        return int(count) <= limit

    async def reset(self, key: str) -> None:
        await self._redis.delete(self.redis_key(key))

    async def aclose(self) -> None:
        await self._redis.aclose()


def make_rate_limiter(redis_url: str | None) -> RateLimiter:
    """Redis when configured (required with several workers), else per-process memory."""
    if redis_url:
        return RedisRateLimiter(redis_url)
    return MemoryRateLimiter()


_log = logging.getLogger(__name__)


async def within_rate(limiter: RateLimiter, key: str, limit: int, what: str) -> bool:
    """One hit of ``key`` against ``limit`` per minute, for the credential endpoints' callers.

    If the limiter itself fails (Redis down) the attempt is let through and logged: the
    per-account lockout (kept in the database) still bounds guessing, and an outage must not
    lock everyone out of the EHR. ``what`` names the endpoint in the log line (no key: keys
    hold addresses and account ids)."""
    try:
        return bool(await limiter.hit(key, limit, 60))
    except Exception:
        _log.warning("%s rate limiter unavailable; relying on account lockout", what)
        return True
