"""The audit log's patient index: who viewed which patient's chart, one row per sitting.

An audit entry names the records a request disclosed (``metadata.ids``), not whose charts they
belong to, and a clinician's screen that polls writes one every few seconds; a patient's
accounting of disclosures needs "who, which chart, when". The sealer (``domain/audit/seal.py``)
resolves each disclosure it seals to the patients it concerns and records a *sitting* here
(patient, staff member, first entry, start; emergency grants each their own) when none of the
same pair began in the ten minutes before, in the sealing transaction: the request path pays
nothing, and a polling screen adds one row per chart per ten minutes, not one per poll. Blocks
sealed before the index existed are indexed a few per sealing run (``legacy_block`` /
``legacy_done``). The index is derived from sealed entries, whose content ``verify-audit``
checks; each row names the entry it began with.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mindharbor.storage.repository import Repository
from mindharbor.storage.system_tables import (
    audit_index_backfill_table,
    audit_patient_table,
    audit_seal_table,
)

_CHUNK = 500


@dataclass(frozen=True)
class Sitting:
    patient_id: str
    entry_id: str  # the sitting's first entry
    actor_id: str
    at: datetime  # when it began
    emergency: bool


async def add(repo: Repository, sittings: list[Sitting]) -> None:
    if sittings:
        await repo.conn.execute(
            audit_patient_table.insert(),
            [
                {
                    "patientId": s.patient_id,
                    "entryId": s.entry_id,
                    "actorId": s.actor_id,
                    "createdAt": s.at,
                    "emergency": s.emergency,
                }
                for s in sittings
            ],
        )


async def latest_starts(
    repo: Repository, pairs: set[tuple[str, str]]
) -> dict[tuple[str, str], datetime]:
    """When the latest (non-emergency) sitting of each (patient, staff member) pair began."""
    table, ordered, found = audit_patient_table, sorted(pairs), {}
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        stmt = (
            sa.select(
                table.c.patientId,
                table.c.actorId,
                sa.func.max(table.c.createdAt, type_=sa.DateTime),
            )
            .where(
                sa.tuple_(table.c.patientId, table.c.actorId).in_(chunk),
                table.c.emergency.is_(False),
            )
            .group_by(table.c.patientId, table.c.actorId)
        )
        for patient, actor, at in (await repo.conn.execute(stmt)).all():
            found[(str(patient), str(actor))] = at
    return found


async def sittings(repo: Repository, patient_id: str, since: datetime, limit: int) -> list[Sitting]:
    """The newest sittings on ``patient_id``'s chart that began since ``since``."""
    table = audit_patient_table
    stmt = (
        sa.select(table)
        .where(table.c.patientId == patient_id, table.c.createdAt >= since)
        .order_by(table.c.createdAt.desc(), table.c.entryId.desc())
        .limit(limit)
    )
    return [
        Sitting(
            str(r["patientId"]),
            str(r["entryId"]),
            str(r["actorId"]),
            r["createdAt"],
            r["emergency"],
        )
        for r in (await repo.conn.execute(stmt)).mappings()
    ]


async def legacy_block(
    repo: Repository, table: sa.Table
) -> tuple[int, list[dict[str, Any]]] | None:
    """The next block sealed before the index existed and not indexed yet, with its entries'
    stored rows (``table`` is AuditLog's); None when every such block is done."""
    backfill = audit_index_backfill_table
    progress = (await repo.conn.execute(sa.select(backfill))).mappings().first()
    if progress is None or progress["throughBlock"] >= progress["untilBlock"]:
        return None
    block = int(progress["throughBlock"]) + 1
    sealed = await repo.conn.scalar(
        sa.select(audit_seal_table.c.entries).where(audit_seal_table.c.block == block)
    )
    ids = [str(entry[0]) for entry in sealed or []]
    rows: list[dict[str, Any]] = []
    for start in range(0, len(ids), _CHUNK):
        stmt = sa.select(table).where(table.c.objectId.in_(ids[start : start + _CHUNK]))
        rows.extend(dict(r) for r in (await repo.conn.execute(stmt)).mappings())
    position = {object_id: n for n, object_id in enumerate(ids)}
    rows.sort(key=lambda r: position[str(r["objectId"])])  # the block's (sealing) order
    return block, rows


async def legacy_done(repo: Repository, block: int) -> None:
    backfill = audit_index_backfill_table
    done = sa.update(backfill).where(backfill.c.id == 1).values(throughBlock=block)
    await repo.conn.execute(done)
