"""The audit log's patient index: ``_AuditPatient (patientId, entryId, createdAt, records)``.

An audit entry names the records a request disclosed (``metadata.ids``), not whose charts they
belong to; a patient's accounting of disclosures needs the latter. The sealer
(``domain/audit/seal.py``) resolves each entry it seals to the patients it concerns and adds the
rows here in the sealing transaction, so every sealed entry is indexed exactly once and the
request path pays nothing; blocks sealed before the index existed are indexed a few per
sealing run (``legacy_block`` / ``legacy_done``). The index only points at entries: what a
patient is shown is read from the entries themselves, whose content ``verify-audit`` checks.
"""

from __future__ import annotations

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


async def add(repo: Repository, rows: list[tuple[str, str, datetime, int]]) -> None:
    """Index (patient id, entry id, entry time, records of the chart named) rows; each pair is
    added once by the sealer."""
    if rows:
        await repo.conn.execute(
            audit_patient_table.insert(),
            [{"patientId": p, "entryId": e, "createdAt": at, "records": n} for p, e, at, n in rows],
        )


async def entries(
    repo: Repository, patient_id: str, since: datetime, limit: int
) -> list[tuple[str, int]]:
    """(entry id, records of the chart it names) of the newest indexed entries concerning
    ``patient_id`` since ``since``."""
    table = audit_patient_table
    stmt = (
        sa.select(table.c.entryId, table.c.records)
        .where(table.c.patientId == patient_id, table.c.createdAt >= since)
        .order_by(table.c.createdAt.desc())
        .limit(limit)
    )
    return [(str(e), int(n)) for e, n in (await repo.conn.execute(stmt)).all()]


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
    return block, rows


async def legacy_done(repo: Repository, block: int) -> None:
    backfill = audit_index_backfill_table
    done = sa.update(backfill).where(backfill.c.id == 1).values(throughBlock=block)
    await repo.conn.execute(done)
