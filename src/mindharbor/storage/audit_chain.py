"""The audit log's seal blocks, as SQL: what ``domain/audit/seal.py`` reads and writes.

The sealer and the verifier decide what a block is and how its root is computed; this module
only finds entries in ``(createdAt, objectId)`` order, reads and appends seal blocks, and takes
the sealer's lock. Entries are streamed in pages (keyset pagination on the sealing order), so
verifying a log of any length holds one page in memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mindharbor.storage.codec import utcnow
from mindharbor.storage.system_tables import audit_seal_table as seals

SEALER_LOCK = 7315002  # PostgreSQL advisory lock: one sealer at a time across workers
PAGE = 1000


def _ordered(table: sa.Table) -> sa.Select[Any]:
    return sa.select(table).order_by(table.c.createdAt, table.c.objectId)


def _after(table: sa.Table, at: datetime | None, object_id: str | None) -> Any:
    if at is None or object_id is None:
        return sa.true()
    return sa.or_(
        table.c.createdAt > at,
        sa.and_(table.c.createdAt == at, table.c.objectId > object_id),
    )


async def lock_sealer(conn: AsyncConnection, dialect: str) -> None:
    """Hold the sealer's lock until this transaction ends (PostgreSQL; SQLite has one writer)."""
    if dialect == "postgresql":
        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SEALER_LOCK})


async def last_seal(conn: AsyncConnection) -> dict[str, Any] | None:
    stmt = sa.select(seals).order_by(seals.c.block.desc()).limit(1)
    row = (await conn.execute(stmt)).mappings().first()
    return dict(row) if row else None


async def entry_time(conn: AsyncConnection, table: sa.Table, object_id: str) -> datetime | None:
    """When an entry was written, or None when it is gone."""
    value = await conn.scalar(sa.select(table.c.createdAt).where(table.c.objectId == object_id))
    return value if isinstance(value, datetime) else None


async def entry_exists(conn: AsyncConnection, table: sa.Table, object_id: str) -> bool:
    return await entry_time(conn, table, object_id) is not None


async def entries_to_seal(
    conn: AsyncConnection,
    table: sa.Table,
    *,
    before: datetime,
    after_at: datetime | None,
    after_id: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The next ``limit`` entries older than ``before`` that follow the given one."""
    stmt = (
        _ordered(table)
        .where(table.c.createdAt < before, _after(table, after_at, after_id))
        .limit(limit)
    )
    return [dict(r) for r in (await conn.execute(stmt)).mappings().all()]


async def append_seal(
    conn: AsyncConnection, *, block: int, entries: list[list[str]], prev_root: str, root: str
) -> None:
    await conn.execute(
        seals.insert().values(
            block=block,
            entries=entries,
            prevRoot=prev_root,
            root=root,
            sealedAt=utcnow(),
        )
    )


async def iter_entries(conn: AsyncConnection, table: sa.Table) -> AsyncIterator[dict[str, Any]]:
    """Every entry in sealing order, one page at a time."""
    at: datetime | None = None
    object_id: str | None = None
    while True:
        stmt = _ordered(table).where(_after(table, at, object_id)).limit(PAGE)
        rows = (await conn.execute(stmt)).mappings().all()
        for row in rows:
            yield dict(row)
        if len(rows) < PAGE:
            return
        at, object_id = rows[-1]["createdAt"], rows[-1]["objectId"]


async def iter_seals(conn: AsyncConnection) -> AsyncIterator[dict[str, Any]]:
    """Every seal block in order, one page at a time."""
    after = 0
    while True:
        stmt = sa.select(seals).where(seals.c.block > after).order_by(seals.c.block).limit(100)
        rows = (await conn.execute(stmt)).mappings().all()
        for row in rows:
            yield dict(row)
        if len(rows) < 100:
            return
        after = int(rows[-1]["block"])
