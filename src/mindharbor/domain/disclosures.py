"""What the web views need beyond the plain classes: the patient's accounting of who viewed
their record, and the audit verification result for admins and compliance.

``myAccessHistory`` answers a patient's "who viewed my record" from the audit log, which the
patient cannot read (it is for compliance and admins): the server reads it and discloses only
what concerns the caller's own chart, with staff named by their roles and, for providers, their
public display name. It never returns the audit entries themselves (their metadata holds
request details and ids of other records). It reads the sittings of the audit log's patient
index (``storage/audit_index.py``, built as entries are sealed, a few minutes after they are
written), plus the newest ``HISTORY_SCAN`` chart-related entries for those not sealed yet, and
looks back ``HISTORY_DAYS``; a staff member's reads within ten minutes are one row.

``verifyAudit`` runs the same check as ``mindharbor verify-audit`` for an admin or compliance
officer, so the audit viewer can show its result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mindharbor.domain import audit
from mindharbor.domain.audit.patients import SITTING
from mindharbor.domain.careteam import PATIENT_RECORDS
from mindharbor.errors import OperationForbidden, ScriptFailed
from mindharbor.hooks import FunctionRequest, Hooks
from mindharbor.security.roles import care_team_role, may_review_compliance
from mindharbor.storage import audit_index, identity
from mindharbor.storage.codec import iso, parse_iso, utcnow
from mindharbor.storage.repository import FindQuery, Repository

HISTORY_DAYS = 365
HISTORY_SCAN = 1000  # unindexed (recent) audit entries examined per call, newest first
HISTORY_INDEXED = 2000  # sittings of the patient index read per call, newest first
RECORDS_PER_CLASS = 1000
SHOWN = 200
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


def _visit(last: dict[str, Any] | None, read: _Read) -> dict[str, Any] | None:
    """The listed row this read belongs to: the same person's reads within one sitting
    (``SITTING``) are one row, as a patient would describe a visit to their chart."""
    if last is None or last["actor"] != read.actor or last["emergency"] or read.emergency:
        return None
    if last["from"] - read.at > SITTING:
        return None
    return last


def _instant(value: Any) -> datetime:
    """An entry's time as stored (naive UTC), whether encoded as a string or a Date."""
    if isinstance(value, datetime):
        return value
    return parse_iso(value.get("iso") if isinstance(value, dict) else value)


@dataclass
class _Read:
    """One disclosure of the chart: a sitting from the index, or a recent entry not sealed yet."""

    entry_id: str
    actor: str
    at: datetime
    emergency: bool


async def _reads(repo: Repository, profile_id: str, since: datetime) -> list[_Read]:
    """The chart's disclosures to others than the patient, newest first: the index's sittings,
    and the recent entries (newest ``HISTORY_SCAN`` that can concern a chart) naming its
    records, which include those not sealed yet."""
    reads = {
        s.entry_id: _Read(s.entry_id, s.actor_id, s.at, s.emergency)
        for s in await audit_index.sittings(repo, profile_id, since, HISTORY_INDEXED)
    }
    ids = await _record_ids(repo, profile_id)
    recent = await repo.system().find(
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
    for entry in recent.results:
        actor, entry_id = _actor_id(entry.get("actor")), str(entry["objectId"])
        if actor is not None and entry_id not in reads and _touches(entry, ids):
            emergency = entry.get("action") == "emergency.access"
            reads[entry_id] = _Read(entry_id, actor, _instant(entry["createdAt"]), emergency)
    own = repo.auth.user_id
    return sorted(
        (r for r in reads.values() if r.actor != own),
        key=lambda r: (r.at, r.entry_id),
        reverse=True,
    )


async def access_history(request: FunctionRequest) -> dict[str, Any]:
    """``myAccessHistory``: staff reads of the caller's chart, newest first (read-only)."""
    repo = request.repo
    profile = await _own_profile(repo)
    profile_id = str(profile["objectId"])
    since = utcnow() - timedelta(days=HISTORY_DAYS)
    people: dict[str, dict[str, Any]] = {}
    shown: list[dict[str, Any]] = []
    for read in await _reads(repo, profile_id, since):
        visit = _visit(shown[-1] if shown else None, read)
        if visit is not None:  # more reads in the same sitting: one row
            visit["from"] = read.at
            continue
        if len(shown) >= SHOWN:
            break
        if read.actor not in people:
            people[read.actor] = await _who(repo, read.actor, profile_id)
        who = people[read.actor]
        shown.append(
            {
                "actor": read.actor,
                "at": read.at,
                "from": read.at,
                "roles": who["roles"],
                "name": who["name"],
                "emergency": read.emergency,
                "purpose": "emergency access"
                if read.emergency
                else ("care team" if who["onCareTeam"] else None),
            }
        )
    for row in shown:
        row["what"] = "emergency access granted" if row.pop("emergency") else "viewed your record"
        row["at"], row["from"] = iso(row["at"]), iso(row["from"])
        del row["actor"]
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
