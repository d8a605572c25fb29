"""Rate limiters: the in-process one and the Redis one shared by several workers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import anyio
import pytest
import redis.asyncio as redis_asyncio

from mindharbor.auth.ratelimit import (
    KEY_PREFIX,
    MemoryRateLimiter,
    RedisRateLimiter,
    make_rate_limiter,
)
from tests.support import REQUIRE_SERVICES, free_port

REDIS_URL = "redis://127.0.0.1:6379/15"

pytestmark = pytest.mark.anyio


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_allows_up_to_limit_then_refuses() -> None:
    limiter = MemoryRateLimiter()
    assert [await limiter.hit("ip:1", 3, 60) for _ in range(5)] == [True] * 3 + [False] * 2
    assert await limiter.hit("ip:2", 3, 60)  # other keys are independent
    await limiter.aclose()


async def test_memory_window_expires() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    assert await limiter.hit("k", 1, 10)
    assert not await limiter.hit("k", 1, 10)
    clock.now += 9.9
    assert not await limiter.hit("k", 1, 10)
    clock.now += 0.1
    assert await limiter.hit("k", 1, 10)
    await limiter.aclose()


async def test_memory_window_expires_real_clock() -> None:
    limiter = MemoryRateLimiter()
    assert await limiter.hit("k", 1, 1)
    assert not await limiter.hit("k", 1, 1)
    await anyio.sleep(1.1)
    assert await limiter.hit("k", 1, 1)
    await limiter.aclose()


async def test_memory_reset() -> None:
    limiter = MemoryRateLimiter()
    assert await limiter.hit("k", 1, 60)
    assert not await limiter.hit("k", 1, 60)
    await limiter.reset("k")
    assert await limiter.hit("k", 1, 60)
    await limiter.aclose()


async def test_memory_is_bounded_and_evicts_expired_first() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(max_keys=100, clock=clock)
    for i in range(50):
        await limiter.hit(f"old{i}", 5, 1)
    clock.now += 2  # the 50 "old" windows have expired
    await limiter.hit("blocked", 1, 3600)
    assert not await limiter.hit("blocked", 1, 3600)
    for i in range(90):  # 50 expired + "blocked" + 90 > 100: the expired ones go first
        await limiter.hit(f"spray{i}", 5, 3600)
    assert not await limiter.hit("blocked", 1, 3600)
    for i in range(90, 1000):
        await limiter.hit(f"spray{i}", 5, 3600)
        assert len(limiter) <= 100
    assert len(limiter) <= 100
    await limiter.aclose()


async def test_memory_sweeps_expired_keys_periodically() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    for i in range(20):
        await limiter.hit(f"k{i}", 5, 1)
    clock.now += 120
    await limiter.hit("fresh", 5, 1)
    assert len(limiter) == 1
    await limiter.aclose()


async def test_invalid_arguments_refused() -> None:
    limiter = MemoryRateLimiter()
    with pytest.raises(ValueError):
        await limiter.hit("k", 0, 60)
    with pytest.raises(ValueError):
        await limiter.hit("k", 1, 0)
    await limiter.aclose()


async def test_make_rate_limiter_without_redis_is_memory() -> None:
    limiter = make_rate_limiter(None)
    assert isinstance(limiter, MemoryRateLimiter)
    await limiter.aclose()


async def test_redis_unreachable_fails_closed() -> None:
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(redis_asyncio.ConnectionError):
            await limiter.hit("k", 5, 60)
    finally:
        await limiter.aclose()


# --- Redis -------------------------------------------------------------------------------------


async def _redis_or_skip() -> redis_asyncio.Redis:
    client = redis_asyncio.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        reason = f"Redis not reachable at {REDIS_URL} ({type(exc).__name__})"
        if REQUIRE_SERVICES:
            pytest.fail(f"{reason}; required (MINDHARBOR_REQUIRE_SERVICES=1)")
        pytest.skip(f"{reason}: Redis rate limiter tests skipped")
    return client


@pytest.fixture
async def redis_admin() -> AsyncIterator[tuple[redis_asyncio.Redis, str]]:
    """A raw client and a prefix unique to this test; every key under it is deleted after."""
    client = await _redis_or_skip()
    prefix = f"{KEY_PREFIX}test:{uuid.uuid4().hex}:"
    try:
        yield client, prefix
    finally:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.mark.redis
async def test_redis_limit_and_shared_between_workers(
    redis_admin: tuple[redis_asyncio.Redis, str],
) -> None:
    admin, prefix = redis_admin
    worker_a = RedisRateLimiter(REDIS_URL, prefix=prefix)
    worker_b = RedisRateLimiter(REDIS_URL, prefix=prefix)
    try:
        results = []
        for i in range(6):
            worker = worker_a if i % 2 == 0 else worker_b
            results.append(await worker.hit("login:ip:203.0.113.9", 4, 60))
        assert results == [True] * 4 + [False] * 2
        assert await worker_b.hit("login:ip:203.0.113.10", 4, 60)
        key = worker_a.redis_key("login:ip:203.0.113.9")
        assert key.startswith(prefix) and "203.0.113" not in key
        assert await admin.get(key) == b"6"
        ttl = await admin.pttl(key)
        assert 0 < ttl <= 60_000
    finally:
        await worker_a.aclose()
        await worker_b.aclose()


@pytest.mark.redis
async def test_redis_window_expires(redis_admin: tuple[redis_asyncio.Redis, str]) -> None:
    _, prefix = redis_admin
    worker_a = RedisRateLimiter(REDIS_URL, prefix=prefix)
    worker_b = RedisRateLimiter(REDIS_URL, prefix=prefix)
    try:
        assert await worker_a.hit("k", 2, 1)
        assert await worker_b.hit("k", 2, 1)
        assert not await worker_a.hit("k", 2, 1)
        await anyio.sleep(1.2)
        assert await worker_b.hit("k", 2, 1)
    finally:
        await worker_a.aclose()
        await worker_b.aclose()


@pytest.mark.redis
async def test_redis_reset_is_shared(redis_admin: tuple[redis_asyncio.Redis, str]) -> None:
    _, prefix = redis_admin
    worker_a = RedisRateLimiter(REDIS_URL, prefix=prefix)
    worker_b = RedisRateLimiter(REDIS_URL, prefix=prefix)
    try:
        assert await worker_a.hit("k", 1, 60)
        assert not await worker_b.hit("k", 1, 60)
        await worker_b.reset("k")
        assert await worker_a.hit("k", 1, 60)
    finally:
        await worker_a.aclose()
        await worker_b.aclose()


@pytest.mark.redis
async def test_redis_counter_without_ttl_gets_one(
    redis_admin: tuple[redis_asyncio.Redis, str],
) -> None:
    """A counter left without an expiry (e.g. written by hand) must not lock a key out forever."""
    admin, prefix = redis_admin
    limiter = RedisRateLimiter(REDIS_URL, prefix=prefix)
    try:
        await admin.set(limiter.redis_key("k"), 100)
        assert not await limiter.hit("k", 5, 1)
        assert await admin.pttl(limiter.redis_key("k")) > 0
        await anyio.sleep(1.2)
        assert await limiter.hit("k", 5, 1)
    finally:
        await limiter.aclose()


@pytest.mark.redis
async def test_make_rate_limiter_with_redis(redis_admin: tuple[redis_asyncio.Redis, str]) -> None:
    admin, _ = redis_admin
    limiter = make_rate_limiter(REDIS_URL)
    assert isinstance(limiter, RedisRateLimiter)
    key = f"test:{uuid.uuid4().hex}"
    try:
        assert await limiter.hit(key, 1, 60)
        assert limiter.redis_key(key).startswith("mh:rl:")
        assert await admin.exists(limiter.redis_key(key))
    finally:
        await limiter.reset(key)
        assert not await admin.exists(limiter.redis_key(key))
        await limiter.aclose()
