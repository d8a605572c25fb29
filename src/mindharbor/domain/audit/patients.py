"""Whose charts a disclosure concerns: the patients behind the records an audit entry names.

Run by the sealer for each block it seals (``seal.py``), never on the request path. A record is
a patient's when it is their ``PatientProfile`` or points at one with a ``patient`` field (the
schema says which classes do: assessments and their versions, crisis logs and their events,
messages, appointments). A record deleted before its entry is sealed is not indexed; the entry
itself stays in the log for compliance.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mindharbor.storage import audit_index
from mindharbor.storage.repository import FindQuery, Repository

DISCLOSURES = ("phi.read", "emergency.access")
PROFILE = "PatientProfile"
CHUNK = 500  # record ids looked up per query


def _named(entry: dict[str, Any]) -> dict[str, set[str]]:
    """Record ids the entry names, by class."""
    named: dict[str, set[str]] = {}
    ids = (entry.get("metadata") or {}).get("ids")
    for cls, found in (ids if isinstance(ids, dict) else {}).items():
        if isinstance(found, list):
            named.setdefault(str(cls), set()).update(str(i) for i in found)
    kind, entity = entry.get("entityType"), entry.get("entityId")
    if kind and entity and kind != "multiple" and entity != "*":
        named.setdefault(str(kind), set()).add(str(entity))
    return named


def _points_at_patient(repo: Repository, class_name: str) -> bool:
    schema = repo.schema_or_none(class_name)
    spec = schema.fields.get("patient") if schema is not None else None
    return spec is not None and spec.type == "Pointer" and spec.target_class == PROFILE


async def _patients_of(repo: Repository, class_name: str, ids: set[str]) -> dict[str, str]:
    """record id -> patient profile id, for the records of ``class_name`` that still exist."""
    if class_name == PROFILE:
        return {i: i for i in ids}
    if not _points_at_patient(repo, class_name):
        return {}
    system, ordered, found = repo.system(), sorted(ids), {}
    for start in range(0, len(ordered), CHUNK):
        chunk = ordered[start : start + CHUNK]
        rows = await system.find(
            class_name,
            FindQuery(where={"objectId": {"$in": chunk}}, keys=["patient"], limit=len(chunk)),
        )
        for row in rows.results:
            patient = row.get("patient")
            if isinstance(patient, dict) and patient.get("objectId"):
                found[str(row["objectId"])] = str(patient["objectId"])
    return found


async def index_block(repo: Repository, entries: list[dict[str, Any]]) -> int:
    """Index the disclosures among ``entries`` (stored rows, as the sealer reads them) by
    patient; returns how many (patient, entry) pairs were added."""
    disclosures = [e for e in entries if e.get("action") in DISCLOSURES]
    named = {str(e["objectId"]): _named(e) for e in disclosures}
    wanted: dict[str, set[str]] = {}
    for by_class in named.values():
        for cls, ids in by_class.items():
            wanted.setdefault(cls, set()).update(ids)
    owners = {cls: await _patients_of(repo, cls, ids) for cls, ids in wanted.items()}
    rows: list[tuple[str, str, datetime, int]] = []
    for entry in disclosures:
        entry_id = str(entry["objectId"])
        records: dict[str, int] = {}
        for cls, ids in named[entry_id].items():
            for record in ids & owners[cls].keys():
                patient = owners[cls][record]
                records[patient] = records.get(patient, 0) + 1
        rows.extend((p, entry_id, entry["createdAt"], n) for p, n in sorted(records.items()))
    await audit_index.add(repo, rows)
    return len(rows)
