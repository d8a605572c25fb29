"""Tamper evidence for the audit log: entries are sealed into HMAC-chained blocks.

Writers never wait on each other: an entry only stores the digest of its own content. A
background job later takes the entries older than a safety lag (longer than any transaction may
stay open), in ``(createdAt, objectId)`` order, and seals them into a block whose root is
``HMAC(key, previous root + every entry id and digest)``. ``verify`` recomputes every digest and
every root, so it finds an entry that was altered, removed from or inserted into a sealed range,
and a block that was rewritten — even by someone who can write the database but lacks the key.
Entries newer than the last seal are checked for alteration only until they are sealed.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from mindharbor.domain.audit.writer import entry_digest
from mindharbor.settings import Settings
from mindharbor.storage.codec import iso, utcnow
from mindharbor.storage.repository import Repository
from mindharbor.storage.system_tables import audit_seal_table as seals

BLOCK_SIZE = 1000
GENESIS = "0" * 64


def seal_key(settings: Settings) -> bytes:
    """The HMAC key: ``MINDHARBOR_AUDIT_KEY``, else derived from the master key."""
    base = settings.audit_key or settings.master_key or ""
    return hmac.new(base.encode(), b"mindharbor-audit-seal", hashlib.sha256).digest()


def block_root(key: bytes, prev_root: str, entries: list[list[str]]) -> str:
    mac = hmac.new(key, prev_root.encode(), hashlib.sha256)
    for object_id, digest in entries:
        mac.update(f"|{object_id}:{digest}".encode())
    return mac.hexdigest()


def _ordered(table: sa.Table) -> Any:
    return sa.select(table).order_by(table.c.createdAt, table.c.objectId)


async def _last_seal(repo: Repository) -> dict[str, Any] | None:
    row = (
        (await repo.conn.execute(sa.select(seals).order_by(seals.c.block.desc()).limit(1)))
        .mappings()
        .first()
    )
    return dict(row) if row else None


def _after(table: sa.Table, last_entry: list[str] | None, last_at: Any) -> Any:
    if last_entry is None:
        return sa.true()
    return sa.or_(
        table.c.createdAt > last_at,
        sa.and_(table.c.createdAt == last_at, table.c.objectId > last_entry[0]),
    )


async def seal_pending(repo: Repository) -> int:
    """Seal every entry older than the lag into new blocks; returns how many were sealed."""
    settings = repo.store.settings
    schema = repo.schema_or_none("AuditLog")
    if schema is None:
        return 0
    if repo.store.dialect == "postgresql":  # one sealer at a time across workers
        await repo.conn.execute(sa.text("SELECT pg_advisory_xact_lock(7315002)"))
    table = repo.table(schema)
    key = seal_key(settings)
    horizon = utcnow() - timedelta(seconds=settings.audit_seal_lag_seconds)
    sealed = 0
    while True:
        last = await _last_seal(repo)
        last_entry = last["entries"][-1] if last else None
        last_at = None
        if last_entry is not None:
            last_at = await repo.conn.scalar(
                sa.select(table.c.createdAt).where(table.c.objectId == last_entry[0])
            )
            if last_at is None:  # the last sealed entry is gone: verification will say so
                return sealed
        rows = (
            (
                await repo.conn.execute(
                    _ordered(table)
                    .where(table.c.createdAt < horizon, _after(table, last_entry, last_at))
                    .limit(BLOCK_SIZE)
                )
            )
            .mappings()
            .all()
        )
        if not rows:
            return sealed
        entries = [[r["objectId"], r["_hash"]] for r in rows]
        prev_root = last["root"] if last else GENESIS
        await repo.conn.execute(
            seals.insert().values(
                block=(last["block"] + 1) if last else 1,
                entries=entries,
                prevRoot=prev_root,
                root=block_root(key, prev_root, entries),
                sealedAt=utcnow(),
            )
        )
        sealed += len(rows)


@dataclass
class VerifyReport:
    ok: bool = True
    checked: int = 0
    sealed_blocks: int = 0
    problems: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.ok = False
        self.problems.append(message)


async def verify(repo: Repository) -> VerifyReport:
    """Recompute every digest and seal; report the first altered, removed or inserted entry."""
    report = VerifyReport()
    schema = repo.schema_or_none("AuditLog")
    if schema is None:
        return report
    table = repo.table(schema)
    key = seal_key(repo.store.settings)
    rows = (await repo.conn.execute(_ordered(table))).mappings().all()
    position = {row["objectId"]: i for i, row in enumerate(rows)}
    for row in rows:
        report.checked += 1
        if entry_digest(dict(row)) != row["_hash"]:
            report.fail(
                f"altered entry {row['objectId']} ({row['action']} at "
                f"{iso(row['createdAt'])}): its content no longer matches its digest"
            )
            return report
    prev_root, cursor = GENESIS, 0
    for block in (await repo.conn.execute(sa.select(seals).order_by(seals.c.block))).mappings():
        report.sealed_blocks += 1
        entries = block["entries"]
        if block["prevRoot"] != prev_root or block_root(key, prev_root, entries) != block["root"]:
            report.fail(f"seal block {block['block']} was rewritten (its root does not verify)")
            return report
        for object_id, digest in entries:
            index = position.get(object_id)
            if index is None:
                report.fail(f"removed entry {object_id} (sealed in block {block['block']})")
                return report
            if index != cursor:
                extra = rows[cursor]
                report.fail(
                    f"inserted entry {extra['objectId']} ({extra['action']}) inside "
                    f"sealed block {block['block']}"
                )
                return report
            if rows[index]["_hash"] != digest:
                report.fail(f"altered entry {object_id}: its digest differs from the sealed one")
                return report
            cursor += 1
        prev_root = block["root"]
    return report
