"""What the web views need beyond the plain classes: the patient's accounting of who viewed
their record, and the audit verification result for admins and compliance.

``myAccessHistory`` answers a patient's "who viewed my record" from the audit log, which the
patient cannot read (it is for compliance and admins): the server reads it and discloses only
what concerns the caller's own chart, with staff named by their roles and, for providers, their
public display name. It never returns the audit entries themselves (their metadata holds
request details and ids of other records). It finds the entries through the audit log's patient
index (``storage/audit_index.py``, built as entries are sealed, a few minutes after they are
written), plus the newest ``HISTORY_SCAN`` chart-related entries for those not sealed yet; it
looks back ``HISTORY_DAYS``.

``verifyAudit`` runs the same check as ``mindharbor verify-audit`` for an admin or compliance
officer, so the audit viewer can show its result.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from mindharbor.domain import audit
from mindharbor.domain.careteam import PATIENT_RECORDS
from mindharbor.errors import OperationForbidden, ScriptFailed
from mindharbor.hooks import FunctionRequest, Hooks
from mindharbor.security.roles import care_team_role, may_review_compliance
from mindharbor.storage import audit_index, identity
from mindharbor.storage.codec import iso, utcnow
from mindharbor.storage.repository import FindQuery, Repository

HISTORY_DAYS = 365
HISTORY_SCAN = 1000  # unindexed (recent) audit entries examined per call, newest first
HISTORY_INDEXED = 5000  # indexed entries of the chart read per call (no metadata), newest first
ENTRIES_PER_QUERY = 500
RECORDS_PER_CLASS = 1000
SHOWN = 200
SITTING = timedelta(minutes=10)
ACCESS_ACTIONS = ("phi.read", "emergency.access")
STAFF_ROLES = ("provider", "admin", "compliance")


def _pointer(cls: str, object_id: str) -> dict[str, str]:
    return {"__type": "Pointer", "className": cls, "objectId": object_id}


def _actor_id(value: Any) -> str | None:
    if isinstance(value, dict):
        return str(value.get("objectId")) if value.get("objectId") else None
    return str(value) if value else None


async def _own_profile(repo: Repository) -> dict[str, Any]:
    """The caller's patient profile, read with the caller's own rights."""
    if repo.auth.user_id is None:
        raise ScriptFailed("Sign in to see who viewed your record.")
    found = await repo.find(
        "PatientProfile", FindQuery(where={"user": _pointer("_User", repo.auth.user_id)}, limit=1)
    )
    if not found.results:
        raise OperationForbidden("Only a patient with a profile has an access history.")
    return dict(found.results[0])


async def _record_ids(repo: Repository, profile_id: str) -> set[str]:
    """Ids of the chart's records (the profile and every record pointing at it)."""
    ids = {profile_id}
    system = repo.system()
    for cls in PATIENT_RECORDS:
        rows = await system.find(
            cls,
            FindQuery(
                where={"patient": _pointer("PatientProfile", profile_id)},
                keys=["objectId"],
                limit=RECORDS_PER_CLASS,
                order="-createdAt",
            ),
        )
        ids.update(str(r["objectId"]) for r in rows.results)
    return ids


def _touches(entry: dict[str, Any], ids: set[str]) -> int:
    """How many of the chart's records the entry names."""
    named = {str(entry.get("entityId"))}
    for found in ((entry.get("metadata") or {}).get("ids") or {}).values():
        named.update(str(i) for i in found)
    return len(named & ids)


async def _who(repo: Repository, user_id: str, profile_id: str) -> dict[str, Any]:
    """Roles and (for providers) the public display name: never the staff member's account."""
    system = repo.system()
    roles = await identity.roles_of(system, user_id)
    names = await system.find(
        "ProviderProfile",
        FindQuery(where={"user": _pointer("_User", user_id)}, keys=["displayName"], limit=1),
    )
    name = names.results[0].get("displayName") if names.results else None
    return {
        "roles": [r for r in STAFF_ROLES if r in roles],
        "name": name,
        "onCareTeam": care_team_role(profile_id) in roles,
    }


def _visit(
    last: dict[str, Any] | None, actor: str, entry: dict[str, Any], emergency: bool
) -> dict[str, Any] | None:
    """The listed row this entry belongs to: the same person's reads within one sitting
    (``SITTING``) are one row, as a patient would describe a visit to their chart."""
    if last is None or last["actor"] != actor or last["emergency"] or emergency:
        return None
    if _instant(last["from"]) - _instant(entry["createdAt"]) > SITTING:
        return None
    return last


def _instant(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    text = value.get("iso") if isinstance(value, dict) else str(value)
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


async def _entries(
    repo: Repository, profile_id: str, since: datetime
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """(the disclosures that may concern the chart, newest first; for those the index says do,
    how many of its records each named). Indexed entries are sealed ones, read without their
    metadata (the index counted the records); the recent scan covers those not sealed yet."""
    system = repo.system()
    recent = await system.find(
        "AuditLog",
        FindQuery(
            where={
                "action": {"$in": list(ACCESS_ACTIONS)},
                # Only entries that can concern a chart: the window is not spent on other reads.
                "entityType": {"$in": ["PatientProfile", *PATIENT_RECORDS, "multiple"]},
                "createdAt": {"$gte": {"__type": "Date", "iso": iso(since)}},
            },
            order="-createdAt",
            limit=HISTORY_SCAN,
        ),
    )
    found = {str(e["objectId"]): dict(e) for e in recent.results}
    indexed = dict(await audit_index.entries(repo, profile_id, since, HISTORY_INDEXED))
    missing = [i for i in indexed if i not in found]
    for start in range(0, len(missing), ENTRIES_PER_QUERY):
        chunk = missing[start : start + ENTRIES_PER_QUERY]
        rows = await system.find(
            "AuditLog",
            FindQuery(
                where={"objectId": {"$in": chunk}},
                keys=["actor", "action", "createdAt"],
                limit=len(chunk),
            ),
        )
        found.update((str(e["objectId"]), dict(e)) for e in rows.results)
    ordered = sorted(
        found.values(), key=lambda e: (_instant(e["createdAt"]), e["objectId"]), reverse=True
    )
    return ordered, indexed


async def access_history(request: FunctionRequest) -> dict[str, Any]:
    """``myAccessHistory``: staff reads of the caller's chart, newest first (read-only)."""
    repo = request.repo
    profile = await _own_profile(repo)
    profile_id = str(profile["objectId"])
    ids = await _record_ids(repo, profile_id)
    since = utcnow() - timedelta(days=HISTORY_DAYS)
    entries, indexed = await _entries(repo, profile_id, since)
    people: dict[str, dict[str, Any]] = {}
    shown: list[dict[str, Any]] = []
    for entry in entries:
        actor = _actor_id(entry.get("actor"))
        if actor is None or actor == repo.auth.user_id:
            continue
        count = indexed.get(entry["objectId"]) or _touches(entry, ids)
        if not count:
            continue
        if actor not in people:
            people[actor] = await _who(repo, actor, profile_id)
        emergency = entry.get("action") == "emergency.access"
        visit = _visit(shown[-1] if shown else None, actor, entry, emergency)
        if visit is not None:  # one more read in the same sitting: counted, not listed again
            visit["records"] += count
            visit["from"] = entry["createdAt"]
            continue
        if len(shown) >= SHOWN:
            break
        who = people[actor]
        shown.append(
            {
                "actor": actor,
                "at": entry["createdAt"],
                "from": entry["createdAt"],
                "roles": who["roles"],
                "name": who["name"],
                "emergency": emergency,
                "records": count,
                "purpose": "emergency access"
                if emergency
                else ("care team" if who["onCareTeam"] else None),
            }
        )
    for row in shown:
        row["what"] = (
            "emergency access granted"
            if row.pop("emergency")
            else f"viewed {row['records']} record(s)"
        )
        del row["actor"], row["records"]
    await audit.record(
        repo,
        "disclosures.view",
        entity_type="PatientProfile",
        entity_id=profile_id,
        summary="Patient viewed their access history",
    )
    return {"entries": shown, "days": HISTORY_DAYS}


async def verify_audit(request: FunctionRequest) -> dict[str, Any]:
    """``verifyAudit``: the result of ``mindharbor verify-audit`` (compliance and admins)."""
    if not may_review_compliance(request.auth):
        raise OperationForbidden("Only compliance and admins verify the audit log.")
    report = await audit.verify(request.repo.system())
    return {
        "ok": report.ok,
        "checked": report.checked,
        "sealedBlocks": report.sealed_blocks,
        "problems": report.problems,
    }


def register(hooks: Hooks) -> None:
    hooks.function("myAccessHistory")(access_history)
    hooks.function("verifyAudit")(verify_audit)
