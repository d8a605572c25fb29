"""Per-request state shared by every resolver: the unit of work, a lock, the pointer batcher.

graphql-core resolves sibling fields concurrently, but one request owns one database
connection, and a connection runs one statement at a time. Every repository call therefore goes
through ``Context.run``, which serialises them; the batcher makes that cheap by turning all the
pointer lookups of one tick into one ``objectId $in`` query per class.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mindharbor.settings import Settings
from mindharbor.storage.repository import FindQuery, FindResult, Repository

T = TypeVar("T")


class Skipped(Exception):
    """A mutation not run because an earlier one in the same request failed (it rolls back)."""


@dataclass
class Context:
    """What a resolver may touch during one GraphQL request."""

    repo: Repository
    settings: Settings
    client_ip: str | None = None
    session_token: str | None = None
    installation_id: str | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    failed: bool = False  # a mutation failed: the rest are skipped, the transaction rolls back
    # A mutation whose error is answered after the commit (a failed login's counter and audit
    # entry must be kept): its response path. Later mutations are skipped, earlier ones commit.
    deferred_path: list[str | int] | None = None
    loader: PointerLoader = field(init=False)

    def __post_init__(self) -> None:
        self.loader = PointerLoader(self)

    async def run(self, call: Callable[[Repository], Awaitable[T]]) -> T:
        """One repository call, never concurrently with another on this connection."""
        async with self.lock:
            return await call(self.repo)

    async def mutate(self, call: Callable[[Repository], Awaitable[T]]) -> T:
        """A write: skipped after a failure, and a failure marks the request for rollback."""
        if self.failed or self.deferred_path is not None:
            raise Skipped()
        try:
            return await self.run(call)
        except Exception:
            self.failed = True
            raise

    def defer_failure(self, path: list[str | int]) -> bool:
        """True (and remembered) when the last call queued an error for after the commit."""
        if self.repo.deferred_error is None:
            return False
        self.deferred_path = path
        return True


class PointerLoader:
    """DataLoader-style batching of pointer targets: one access-filtered query per class per
    tick of the event loop, whatever the number of rows that point there (no N+1)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.cache: dict[tuple[str, str], asyncio.Future[dict[str, Any] | None]] = {}
        self.pending: dict[str, dict[str, asyncio.Future[dict[str, Any] | None]]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.scheduled = False

    async def load(self, class_name: str, object_id: str) -> dict[str, Any] | None:
        key = (class_name, object_id)
        future = self.cache.get(key)
        if future is None:
            loop = asyncio.get_running_loop()
            future = loop.create_future()
            self.cache[key] = future
            self.pending.setdefault(class_name, {})[object_id] = future
            if not self.scheduled:
                self.scheduled = True
                loop.call_soon(self._start)
        return await future

    def _start(self) -> None:
        task = asyncio.get_running_loop().create_task(self._dispatch())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _dispatch(self) -> None:
        # Let every resolver started in this tick register its pointer before querying.
        await asyncio.sleep(0)
        batch, self.pending, self.scheduled = self.pending, {}, False
        chunk = max(1, self.ctx.settings.max_in_list)
        for class_name, futures in batch.items():
            ids = sorted(futures)
            try:
                found: dict[str, dict[str, Any]] = {}
                for start in range(0, len(ids), chunk):
                    part = ids[start : start + chunk]
                    query = FindQuery(where={"objectId": {"$in": part}}, limit=len(part))
                    result = await self.ctx.run(functools.partial(_find, class_name, query))
                    for obj in result.results:
                        obj["__className"] = class_name
                        found[obj["objectId"]] = obj
            except Exception as exc:
                for future in futures.values():
                    if not future.done():
                        future.set_exception(exc)
                continue
            for object_id, future in futures.items():
                if not future.done():
                    future.set_result(found.get(object_id))


async def _find(class_name: str, query: FindQuery, repo: Repository) -> FindResult:
    return await repo.find(class_name, query)
