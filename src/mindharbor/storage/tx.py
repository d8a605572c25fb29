"""A unit of work's connection on PostgreSQL: its transaction begins with its first write, and
plain inserts wait for the commit, where they go out as one statement.

Under READ COMMITTED every statement sees the data committed when it starts, in a transaction
or not, so the reads a request makes before its first write lose nothing by running on their
own. What must be atomic — the writes and their audit entries — still is: a write (an UPDATE, a
DELETE, a ``SELECT ... FOR UPDATE``, any SQL text or DDL, a NOTIFY) begins the transaction, and
the commit ends it. A create that needs nothing back from the database before the commit (no
trigger reads it, no relation rows follow) is *deferred*: its row, and the audit entries of the
request, are inserted at the commit — in the transaction if one began, or otherwise together
as one ``WITH ... INSERT`` statement, which is atomic by itself. A typical create (a message:
read the chart it belongs to, insert it, record it) then costs two round trips instead of five
(BEGIN, SELECT, INSERT, INSERT, COMMIT). Anything that runs after a deferred insert sees it: the
pending rows are written (in the transaction) before any other statement.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncTransaction


def _writes(statement: Any) -> bool:
    """Whether a statement needs the transaction (anything but a plain SELECT)."""
    if isinstance(statement, sa.Select):
        return statement._for_update_arg is not None
    return not isinstance(statement, sa.CompoundSelect)  # DML, text, DDL: begin first


class TxConnection:
    """Duck-types the part of ``AsyncConnection`` the storage layer and hooks use."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._tx: AsyncTransaction | None = None
        self.pending: list[tuple[sa.Table, dict[str, Any]]] = []
        self.dialect = conn.dialect

    @property
    def in_transaction(self) -> bool:
        return self._tx is not None

    async def ensure_transaction(self) -> None:
        if self._tx is None:
            conn = self._conn
            if conn.in_transaction():
                await conn.commit()  # the autocommit reads' logical transaction: no round trip
            await conn.execution_options(isolation_level="READ COMMITTED")
            self._tx = await conn.begin()

    async def _before(self, writes: bool) -> None:
        if writes or self.pending:
            await self.ensure_transaction()
        if self.pending:
            await self._flush_pending()

    async def _flush_pending(self) -> None:
        pending, self.pending = self.pending, []
        await self._insert_all(pending)

    async def _insert_all(self, pending: list[tuple[sa.Table, dict[str, Any]]]) -> None:
        """Every pending row in one statement (compiled once per shape of rows)."""
        if not pending:
            return
        sql, args = _one_statement(pending, self.dialect)
        # Through the driver adapter (not the raw connection): in a transaction, the adapter
        # sends its BEGIN first, so a rollback undoes these rows too.
        await self._conn.exec_driver_sql(sql, tuple(args))

    def defer_insert(self, table: sa.Table, row: dict[str, Any]) -> None:
        self.pending.append((table, row))

    # -- the AsyncConnection surface ------------------------------------------------------------
    async def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        await self._before(_writes(statement))
        return await self._conn.execute(statement, *args, **kwargs)

    async def scalar(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        await self._before(_writes(statement))
        return await self._conn.scalar(statement, *args, **kwargs)

    async def scalars(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        await self._before(_writes(statement))
        return await self._conn.scalars(statement, *args, **kwargs)

    async def stream(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        await self._before(True)  # a server-side cursor lives in a transaction
        return await self._conn.stream(statement, *args, **kwargs)

    async def run_sync(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        await self._before(True)  # DDL, inspection, compiled statements: in the transaction
        return await self._conn.run_sync(fn, *args, **kwargs)

    @asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[Any]:
        """A SAVEPOINT, inside the (now begun) transaction."""
        await self._before(True)
        async with self._conn.begin_nested() as nested:
            yield nested

    async def get_raw_connection(self) -> Any:
        await self._before(False)  # the caller reads (storage/shapes.py)
        return await self._conn.get_raw_connection()

    # -- the end of the unit of work ------------------------------------------------------------
    async def commit(self) -> None:
        if self._tx is not None:
            await self._flush_pending()
            await self._tx.commit()
            self._tx = None
        elif self.pending:
            pending, self.pending = self.pending, []
            await self._insert_all(pending)  # atomic by itself: no transaction needed

    async def rollback(self) -> None:
        self.pending = []
        if self._tx is not None:
            await self._tx.rollback()
            self._tx = None


def _grouped(
    pending: Iterable[tuple[sa.Table, dict[str, Any]]],
) -> list[tuple[sa.Table, list[dict[str, Any]]]]:
    """Rows by (table, columns), in first-seen order: one multi-row insert each."""
    groups: dict[tuple[sa.Table, tuple[str, ...]], list[dict[str, Any]]] = {}
    for table, row in pending:
        groups.setdefault((table, tuple(row)), []).append(row)
    return [(table, rows) for (table, _), rows in groups.items()]


# Compiled multi-insert statements by shape: ((table, columns, row count), ...).
_COMPILED: dict[tuple[Any, ...], tuple[str, list[tuple[int, int, str]], list[Any]]] = {}


def _one_statement(
    pending: list[tuple[sa.Table, dict[str, Any]]], dialect: Any
) -> tuple[str, list[Any]]:
    """``WITH w0 AS (INSERT ...), w1 AS (INSERT ...) SELECT count(*) FROM w0``: every pending
    row in one statement, so all of them or none are written, even without a transaction.
    The SQL is compiled once per shape of rows; each call only orders its values."""
    groups = _grouped(pending)
    key = tuple((table, tuple(rows[0]), len(rows)) for table, rows in groups)
    compiled = _COMPILED.get(key)
    if compiled is None:
        if len(_COMPILED) > 256:
            _COMPILED.clear()
        compiled = _COMPILED[key] = _compile(key, dialect)
    sql, slots, processors = compiled
    args = []
    for (group, row, column), proc in zip(slots, processors, strict=True):
        value = groups[group][1][row][column]
        args.append(proc(value) if proc is not None and value is not None else value)
    return sql, args


def _compile(
    key: tuple[Any, ...], dialect: Any
) -> tuple[str, list[tuple[int, int, str]], list[Any]]:
    ctes = []
    where: dict[str, tuple[int, int, str]] = {}
    for g, (table, columns, count) in enumerate(key):
        rows = []
        for r in range(count):
            values = {}
            for c, column in enumerate(columns):
                name = f"p{g}_{r}_{c}"
                where[name] = (g, r, column)
                values[column] = sa.bindparam(name, type_=table.c[column].type)
            rows.append(values)
        ctes.append(table.insert().values(rows).returning(table.c.objectId).cte(f"w{g}"))
    statement = sa.select(sa.func.count()).select_from(ctes[0])
    for cte in ctes[1:]:
        statement = statement.add_cte(cte)
    compiled = statement.compile(dialect=dialect)
    names = list(compiled.positiontup or [])
    processors = compiled._bind_processors or {}
    return compiled.string, [where[n] for n in names], [processors.get(n) for n in names]


def unwrap(conn: Any) -> Connection | Any:
    return getattr(conn, "_conn", conn)
