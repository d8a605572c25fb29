"""Whose charts a disclosure concerns, as sittings for the patient index (``audit_index.py``).

Run by the sealer for each block it seals (``seal.py``), never on the request path. A record is
a patient's when it is their ``PatientProfile`` or points at one with a ``patient`` field (the
schema says which classes do: assessments and their versions, crisis logs and their events,
messages, appointments). Not indexed: a patient's reads of their own chart, entries without an
actor (master key), writes, and records deleted before their entry is sealed (the entry itself
stays in the log for compliance). A staff member's reads of one chart are one sitting until ten
minutes after it began; each emergency grant is a sitting of its own.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from mindharbor.storage import audit_index
from mindharbor.storage.repository import FindQuery, Repository

DISCLOSURES = ("phi.read", "emergency.access")
PROFILE = "PatientProfile"
CHUNK = 500  # record ids looked up per query
SITTING = timedelta(minutes=10)


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


async def _pointed_at(
    repo: Repository, class_name: str, ids: set[str], field: str
) -> dict[str, str]:
    """object id -> the id its Pointer ``field`` names, for the objects that still exist."""
    system, ordered, found = repo.system(), sorted(ids), {}
    for start in range(0, len(ordered), CHUNK):
        chunk = ordered[start : start + CHUNK]
        rows = await system.find(
            class_name,
            FindQuery(where={"objectId": {"$in": chunk}}, keys=[field], limit=len(chunk)),
        )
        for row in rows.results:
            target = row.get(field)
            if isinstance(target, dict) and target.get("objectId"):
                found[str(row["objectId"])] = str(target["objectId"])
    return found


async def _patients_of(repo: Repository, class_name: str, ids: set[str]) -> dict[str, str]:
    """record id -> patient profile id, for the records of ``class_name`` that still exist."""
    if class_name == PROFILE:
        return {i: i for i in ids}
    if not _points_at_patient(repo, class_name):
        return {}
    return await _pointed_at(repo, class_name, ids, "patient")


async def index_block(repo: Repository, entries: list[dict[str, Any]]) -> int:
    """Record the sittings the disclosures among ``entries`` begin (stored rows, as the sealer
    reads them); returns how many were added."""
    disclosures = sorted(  # in sealing order, whatever order the caller read them in
        (e for e in entries if e.get("action") in DISCLOSURES and e.get("actor")),
        key=lambda e: (e["createdAt"], str(e["objectId"])),
    )
    named = {str(e["objectId"]): _named(e) for e in disclosures}
    wanted: dict[str, set[str]] = {}
    for by_class in named.values():
        for cls, ids in by_class.items():
            wanted.setdefault(cls, set()).update(ids)
    owners = {cls: await _patients_of(repo, cls, ids) for cls, ids in wanted.items()}
    charts: list[tuple[dict[str, Any], list[str]]] = []
    for entry in disclosures:
        found = {
            owners[cls][i]
            for cls, ids in named[str(entry["objectId"])].items()
            for i in ids
            if i in owners[cls]
        }
        charts.append((entry, sorted(found)))
    profiles = {p for _, patients in charts for p in patients}
    users = await _pointed_at(repo, PROFILE, profiles, "user")  # the patients' accounts
    pairs = {
        (p, str(e["actor"]))
        for e, patients in charts
        for p in patients
        if users.get(p) != e["actor"]
    }
    began = await audit_index.latest_starts(repo, pairs)
    new: list[audit_index.Sitting] = []
    for entry, patients in charts:
        actor, at = str(entry["actor"]), entry["createdAt"]
        emergency = entry["action"] == "emergency.access"
        for patient in patients:
            if users.get(patient) == actor:
                continue  # the patient's own reads are no disclosure to them
            last = began.get((patient, actor))
            if emergency or last is None or at - last > SITTING:
                new.append(
                    audit_index.Sitting(patient, str(entry["objectId"]), actor, at, emergency)
                )
                if not emergency:
                    began[(patient, actor)] = at
    await audit_index.add(repo, new)
    return len(new)
