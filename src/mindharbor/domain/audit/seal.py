"""Tamper evidence for the audit log: entries are sealed into HMAC-chained blocks.

Writers never wait on each other: an entry only stores the digest of its own content. A
background job later takes the entries older than a safety lag (longer than any transaction may
stay open), in ``(createdAt, objectId)`` order, and seals them into a block whose root is
``HMAC(key, previous root + every entry id and digest)``. ``verify`` recomputes every digest and
every root, so it finds an entry that was altered, removed from or inserted into a sealed range,
and a block that was rewritten — even by someone who can write the database but lacks the key.
Entries newer than the last seal are checked for alteration only until they are sealed.
Sealing also indexes each disclosure by the patients it concerns (``patients.py``), in the same
transaction, for the patient's own accounting of disclosures.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import timedelta

from mindharbor.domain.audit.patients import index_block
from mindharbor.domain.audit.writer import entry_digest
from mindharbor.settings import Settings
from mindharbor.storage import audit_chain as chain
from mindharbor.storage import audit_index
from mindharbor.storage.codec import iso, utcnow
from mindharbor.storage.repository import Repository

BLOCK_SIZE = 1000
LEGACY_BLOCKS_PER_RUN = 5  # blocks sealed before the patient index existed, indexed per run
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


async def seal_pending(repo: Repository) -> int:
    """Seal every entry older than the lag into new blocks; returns how many were sealed."""
    settings = repo.store.settings
    schema = repo.schema_or_none("AuditLog")
    if schema is None:
        return 0
    conn = repo.conn
    await chain.lock_sealer(conn, repo.store.dialect)
    table = repo.table(schema)
    key = seal_key(settings)
    horizon = utcnow() - timedelta(seconds=settings.audit_seal_lag_seconds)
    for _ in range(LEGACY_BLOCKS_PER_RUN):
        legacy = await audit_index.legacy_block(repo, table)
        if legacy is None:
            break
        await index_block(repo, legacy[1])
        await audit_index.legacy_done(repo, legacy[0])
    sealed = 0
    while True:
        last = await chain.last_seal(conn)
        last_id = last["entries"][-1][0] if last else None
        last_at = None
        if last_id is not None:
            last_at = await chain.entry_time(conn, table, last_id)
            if last_at is None:  # the last sealed entry is gone: verification will say so
                return sealed
        rows = await chain.entries_to_seal(
            conn, table, before=horizon, after_at=last_at, after_id=last_id, limit=BLOCK_SIZE
        )
        if not rows:
            return sealed
        entries = [[r["objectId"], r["_hash"]] for r in rows]
        await index_block(repo, rows)  # whose charts the sealed disclosures concern
        prev_root = last["root"] if last else GENESIS
        await chain.append_seal(
            conn,
            block=(last["block"] + 1) if last else 1,
            entries=entries,
            prev_root=prev_root,
            root=block_root(key, prev_root, entries),
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
    """Recompute every digest and seal; report the first altered, removed or inserted entry.

    Entries and blocks are streamed in the sealing order (one page in memory at a time): a
    sealed id that is not the next entry is either gone (removed) or further on (then the next
    entry was inserted into the sealed range)."""
    report = VerifyReport()
    schema = repo.schema_or_none("AuditLog")
    if schema is None:
        return report
    conn = repo.conn
    table = repo.table(schema)
    key = seal_key(repo.store.settings)
    async for row in chain.iter_entries(conn, table):
        report.checked += 1
        if entry_digest(row) != row["_hash"]:
            report.fail(
                f"altered entry {row['objectId']} ({row['action']} at "
                f"{iso(row['createdAt'])}): its content no longer matches its digest"
            )
            return report
    prev_root = GENESIS
    entries = chain.iter_entries(conn, table)
    async for block in chain.iter_seals(conn):
        report.sealed_blocks += 1
        sealed = block["entries"]
        if block["prevRoot"] != prev_root or block_root(key, prev_root, sealed) != block["root"]:
            report.fail(f"seal block {block['block']} was rewritten (its root does not verify)")
            return report
        for object_id, digest in sealed:
            current = await anext(entries, None)
            if current is None or current["objectId"] != object_id:
                if not await chain.entry_exists(conn, table, object_id):
                    report.fail(f"removed entry {object_id} (sealed in block {block['block']})")
                elif current is None:
                    report.fail(f"entry {object_id} is sealed twice (block {block['block']})")
                else:
                    report.fail(
                        f"inserted entry {current['objectId']} ({current['action']}) inside "
                        f"sealed block {block['block']}"
                    )
                return report
            if current["_hash"] != digest:
                report.fail(f"altered entry {object_id}: its digest differs from the sealed one")
                return report
        prev_root = block["root"]
    return report
