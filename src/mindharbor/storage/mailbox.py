"""Messaging's SQL: the thread list, retention policies and legal holds (``domain/messaging.py``
decides who may do what and audits it; this module only reads and writes the rows).

The thread list applies the caller's read filter inside the statement, before ranking and
counting, and records the last messages it returns as reads of the request, by construction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from mindharbor.storage.codec import utcnow
from mindharbor.storage.repository import Repository
from mindharbor.storage.schema import ClassSchema

# -- server tables (created by migration 0005) -------------------------------------------------
_metadata = sa.MetaData()
retention_table = sa.Table(
    "_MessageRetention",
    _metadata,
    sa.Column("clinic", sa.String(200), primary_key=True),
    sa.Column("days", sa.Integer, nullable=False),
    sa.Column("updatedAt", sa.DateTime, nullable=False),
    sa.Column("updatedBy", sa.String(32)),
)
legal_hold_table = sa.Table(
    "_MessageLegalHold",
    _metadata,
    sa.Column("messageId", sa.String(32), primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("heldBy", sa.String(32)),
    sa.Column("heldAt", sa.DateTime, nullable=False),
)


async def latest_per_thread(
    repo: Repository, schema: ClassSchema, *, limit: int, skip: int
) -> list[tuple[dict[str, Any], int]]:
    """Each readable thread's newest message (wire form) and its unread count for the caller,
    newest thread first, in one statement."""
    table = repo.table(schema)
    thread = (table.c.conversationId, table.c.patient)
    newest_first = (table.c.createdAt.desc(), table.c.objectId.desc())
    unread_for_me = sa.case(
        (sa.and_(table.c["to"] == repo.auth.user_id, table.c.isRead == sa.false()), 1),
        else_=0,
    )
    ranked = (
        sa.select(
            *table.c,
            sa.func.row_number()
            .over(partition_by=thread, order_by=newest_first)
            .label("_thread_rank"),
            sa.func.sum(unread_for_me).over(partition_by=thread).label("_thread_unread"),
        )
        # The access policy's own predicate, applied before ranking and counting: a message the
        # caller may not read is neither a thread's last message nor counted as unread.
        .where(repo.readable(schema, table, "find"))
        .subquery("ranked")
    )
    stmt = (
        sa.select(ranked)
        .where(ranked.c._thread_rank == 1)
        .order_by(ranked.c.createdAt.desc(), ranked.c.objectId.desc())
        .limit(limit)
        .offset(skip)
    )
    rows = [dict(r) for r in (await repo.conn.execute(stmt)).mappings()]
    threads = [(repo.encode(schema, row), int(row["_thread_unread"] or 0)) for row in rows]
    # The last messages leave the server: they belong in the request's PHI access entry.
    repo._note_reads(schema, [str(last["objectId"]) for last, _ in threads])
    return threads


async def set_retention(repo: Repository, clinic: str, days: int, by: str | None) -> int | None:
    """Set a clinic's retention (row locked first); returns the days it had before, if any."""
    t = retention_table
    previous = await repo.conn.scalar(
        sa.select(t.c.days).where(t.c.clinic == clinic).with_for_update()
    )
    values = {"days": days, "updatedAt": utcnow(), "updatedBy": by}
    if previous is None:
        await repo.conn.execute(t.insert().values(clinic=clinic, **values))
    else:
        await repo.conn.execute(t.update().where(t.c.clinic == clinic).values(values))
    return int(previous) if previous is not None else None


async def set_hold(
    repo: Repository,
    messages: ClassSchema,
    message_id: str,
    *,
    hold: bool,
    reason: str,
    by: str | None,
) -> bool | None:
    """Place or release a message's legal hold; returns whether it was held before, or None
    when the message does not exist. The server looks (an admin is no party to the message)."""
    t = legal_hold_table
    table = repo.table(messages)
    if repo.dialect == "postgresql":
        # Ordered against a running purge (which holds a stronger lock on this table): either
        # the purge sees this hold, or this call sees that the message is gone.
        await repo.conn.execute(sa.text(f'LOCK TABLE "{t.name}" IN ROW EXCLUSIVE MODE'))
    found = await repo.conn.scalar(
        sa.select(table.c.objectId).where(table.c.objectId == message_id)
    )
    if found is None:
        return None
    held = await repo.conn.scalar(sa.select(t.c.messageId).where(t.c.messageId == message_id))
    if hold and held is None:
        await repo.conn.execute(
            t.insert().values(messageId=message_id, reason=reason, heldBy=by, heldAt=utcnow())
        )
    elif not hold and held is not None:
        await repo.conn.execute(t.delete().where(t.c.messageId == message_id))
    return held is not None


async def retention_policies(repo: Repository) -> dict[str, int]:
    """Every clinic's retention in days; on PostgreSQL, first blocks new holds until commit
    (holds placed while a purge runs wait for it; holds committed before it are seen)."""
    if repo.dialect == "postgresql":
        await repo.conn.execute(
            sa.text(f'LOCK TABLE "{legal_hold_table.name}" IN SHARE ROW EXCLUSIVE MODE')
        )
    stmt = sa.select(retention_table.c.clinic, retention_table.c.days)
    return {str(clinic): int(days) for clinic, days in (await repo.conn.execute(stmt)).all()}


async def expired_messages(
    repo: Repository,
    messages: ClassSchema,
    profiles: ClassSchema,
    *,
    policies: dict[str, int],
    default_days: int,
    now: datetime,
    limit: int,
) -> list[str]:
    """Ids of messages past their patient's clinic retention (the default for no clinic, an
    unknown one or a profile that is gone) and not on legal hold, oldest first."""
    table, profile = repo.table(messages), repo.table(profiles)
    clinic = profile.c.primaryClinic

    def older_than(days: int) -> sa.ColumnElement[bool]:
        return table.c.createdAt < now - timedelta(days=days)

    expired = sa.or_(
        *(sa.and_(clinic == name, older_than(days)) for name, days in policies.items()),
        sa.and_(sa.or_(clinic.is_(None), clinic.not_in(list(policies))), older_than(default_days)),
    )
    held = sa.exists().where(legal_hold_table.c.messageId == table.c.objectId)
    stmt = (
        sa.select(table.c.objectId)
        .select_from(table.outerjoin(profile, profile.c.objectId == table.c.patient))
        .where(expired, ~held)
        .order_by(table.c.createdAt, table.c.objectId)
        .limit(limit)
    )
    return [str(i) for i in (await repo.conn.scalars(stmt)).all()]
