"""Cross-worker delivery of committed changes through Redis, never in the way of local delivery.

A worker's own writes are dispatched to its own subscribers at once, whatever Redis is doing;
Redis only carries them to the *other* workers. Each worker publishes its events in order with
a sequence number, through a bounded queue, every call bounded by a timeout. What a worker can
no longer vouch for, it says: whenever its other-worker events may have been missed — a gap in a
publisher's sequence (a publish that failed or timed out, or an overflowing queue), a lost
subscription, or a Redis that stops answering its ping (a hung server: a call that never
returns) — the hub tells its clients with Parse's error event and ``reconnect: true``, so the
SDKs reconnect, resubscribe and refetch. It says so again when Redis is back. Nothing is
dropped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from mindharbor.storage.repository import ChangeEvent

log = logging.getLogger(__name__)

Dispatch = Callable[[ChangeEvent], Awaitable[None]]


class RedisFanout:
    def __init__(
        self,
        url: str,
        channel: str,
        dispatch: Dispatch,
        missed: Callable[[str], None],
        encode: Callable[[ChangeEvent], bytes],
        decode: Callable[[bytes | str], ChangeEvent],
        *,
        timeout: float = 1.0,
        queue_size: int = 10_000,
    ) -> None:
        self.url = url
        self.channel = channel
        self.dispatch = dispatch
        self.missed = missed  # tell this worker's clients (why)
        self.encode = encode
        self.decode = decode
        self.timeout = timeout
        self.origin = uuid.uuid4().hex
        self._seq = 0
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(queue_size)
        self._last: dict[str, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._client: Any = None
        self.healthy = False  # subscribed, and Redis answered its last ping
        self._was_up = False
        self.dropped = 0

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        import redis.asyncio as aioredis

        self._client = aioredis.from_url(
            self.url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout
        )
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._publisher()), loop.create_task(self._supervise())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
            self._client = None

    # -- publishing ---------------------------------------------------------------------------
    def publish(self, event: ChangeEvent) -> None:
        """Queue a committed change for the other workers (never waits)."""
        self._seq += 1
        message = orjson.dumps({"o": self.origin, "s": self._seq, "e": self.encode(event).decode()})
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped += 1  # the others will see the gap in our sequence and say so

    async def _publisher(self) -> None:
        while True:
            message = await self._queue.get()
            try:
                async with asyncio.timeout(self.timeout):
                    await self._client.publish(self.channel, message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.dropped += 1
                log.warning("live query: Redis publish failed (%s)", type(exc).__name__)

    # -- consuming ----------------------------------------------------------------------------
    async def _supervise(self) -> None:
        """Keep one subscription alive, pinging Redis beside it; whenever it fails or hangs,
        say so to the clients and start again (saying so once more when it is back)."""
        delay = 0.2
        while True:
            consumer = asyncio.get_running_loop().create_task(self._consume())
            try:
                while not consumer.done():
                    await asyncio.sleep(self.timeout)
                    async with asyncio.timeout(self.timeout):
                        await self._client.ping()
                    delay = 0.2
                await consumer  # re-raises why it ended
            except asyncio.CancelledError:
                consumer.cancel()
                raise
            except Exception as exc:
                log.warning(
                    "live query: Redis unavailable (%s); local delivery only", type(exc).__name__
                )
            finally:
                consumer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await consumer
            if self.healthy:
                self.healthy = False
                self.missed("Live updates from other servers were interrupted; reconnect.")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _consume(self) -> None:
        pubsub = self._client.pubsub()
        try:
            async with asyncio.timeout(self.timeout):
                await pubsub.subscribe(self.channel)
            self._last.clear()
            if not self.healthy:
                self.healthy = True
                if self._was_up:
                    # Whatever happened while it was down is unknown here: refetch once.
                    self.missed("Live updates from other servers resumed; reconnect to refetch.")
                self._was_up = True
            while True:
                item = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if item is None or item.get("type") != "message":
                    continue
                await self._received(item["data"])
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _received(self, data: bytes | str) -> None:
        try:
            message = orjson.loads(data)
            origin, seq, body = message["o"], int(message["s"]), message["e"]
        except Exception:
            return
        if origin == self.origin:
            return  # already delivered here, at once
        last = self._last.get(origin)
        self._last[origin] = seq
        if last is not None and seq != last + 1:
            self.missed("Some live updates from another server were lost; reconnect.")
        try:
            await self.dispatch(self.decode(body))
        except Exception:
            log.exception("live query: could not dispatch an event from Redis")
