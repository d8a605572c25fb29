"""The audit log's patient index: ``_AuditPatient (patientId, entryId, createdAt)``.

An audit entry names the records a request disclosed (``metadata.ids``), not whose charts they
belong to; a patient's accounting of disclosures needs the latter. The sealer
(``domain/audit/seal.py``) resolves each entry it seals to the patients it concerns and adds the
rows here in the sealing transaction, so every sealed entry is indexed exactly once and the
request path pays nothing. The index only points at entries: what a patient is shown is read
from the entries themselves, whose content ``verify-audit`` checks.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from mindharbor.storage.repository import Repository
from mindharbor.storage.system_tables import audit_patient_table


async def add(repo: Repository, rows: list[tuple[str, str, datetime]]) -> None:
    """Index (patient id, entry id, entry time) rows; each pair is added once by the sealer."""
    if rows:
        await repo.conn.execute(
            audit_patient_table.insert(),
            [{"patientId": p, "entryId": e, "createdAt": at} for p, e, at in rows],
        )


async def entry_ids(repo: Repository, patient_id: str, since: datetime, limit: int) -> list[str]:
    """Ids of the newest indexed entries concerning ``patient_id`` since ``since``."""
    table = audit_patient_table
    stmt = (
        sa.select(table.c.entryId)
        .where(table.c.patientId == patient_id, table.c.createdAt >= since)
        .order_by(table.c.createdAt.desc())
        .limit(limit)
    )
    return [str(i) for i in (await repo.conn.execute(stmt)).scalars().all()]
