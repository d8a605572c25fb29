"""A read-only repository's connection, checked out only if a statement needs SQLAlchemy.

Most reads of a busy server run a compiled shape (``storage/shapes.py``) on the worker's asyncpg
pool, holding a connection for that one statement; the rest of the request (parsing, access
checks, encoding, waiting for its audit batch) holds none. Only a read that builds a statement
(an uncached shape, an ``include``, a lookup) checks out a pooled SQLAlchemy connection, in
autocommit mode, and keeps it until the repository is done.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection

if TYPE_CHECKING:
    from mindharbor.storage.db import Store


class LazyConnection:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._context: AbstractAsyncContextManager[AsyncConnection] | None = None
        self._conn: AsyncConnection | None = None
        self._locked = False
        self.dialect = store.engine.dialect

    @property
    def used(self) -> bool:
        return self._conn is not None

    async def connection(self) -> AsyncConnection:
        if self._conn is None:
            lock = self._store._sqlite_lock
            if lock is not None:
                # SQLite: one statement at a time per process, reads included, as for writes
                # (reads racing a schema change's DDL on another connection failed).
                await lock.acquire()
                self._locked = True
            context = self._store._connect()
            try:
                conn = await context.__aenter__()
            except BaseException:
                self._release()
                raise
            self._context = context  # entered: close() must exit it
            self._conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    def _release(self) -> None:
        if self._locked and self._store._sqlite_lock is not None:
            self._locked = False
            self._store._sqlite_lock.release()

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        return await (await self.connection()).execute(*args, **kwargs)

    async def scalar(self, *args: Any, **kwargs: Any) -> Any:
        return await (await self.connection()).scalar(*args, **kwargs)

    async def scalars(self, *args: Any, **kwargs: Any) -> Any:
        return await (await self.connection()).scalars(*args, **kwargs)

    async def stream(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a read-only repository has no transaction to hold a cursor")

    async def run_sync(self, *args: Any, **kwargs: Any) -> Any:
        return await (await self.connection()).run_sync(*args, **kwargs)

    async def get_raw_connection(self) -> Any:
        return await (await self.connection()).get_raw_connection()

    async def close(self, exc: BaseException | None = None) -> None:
        context, self._context, self._conn = self._context, None, None
        try:
            if context is not None:
                await context.__aexit__(type(exc) if exc else None, exc, None)
        finally:
            self._release()
