"""Crisis intervention logs: escalation from screening results, a forward-only lifecycle, and an
append-only history of every change.

Status moves only forward (open → active → resolved → closed); a closed log is never reopened —
a new crisis is a new log, so the record of how the earlier one ended stays true. Every change
appends a ``CrisisLogEvent`` (who, when, which fields from what to what, and the clinician's
note) written by the server in the same transaction; clients cannot write or edit events. A
positive suicide-risk screen opens a log automatically and alerts the care team (``CareAlert``),
in the transaction that finalised the assessment, so the alert can never be lost.
"""

from __future__ import annotations

from typing import Any

from mindharbor.domain import audit
from mindharbor.domain.instruments import InstrumentResult
from mindharbor.errors import OperationForbidden, ValidationFailed
from mindharbor.hooks import AfterSave, Hooks, SaveRequest
from mindharbor.storage.codec import iso, utcnow
from mindharbor.storage.repository import Repository

CLASS = "CrisisInterventionLog"
ORDER = ("open", "active", "resolved", "closed")
NOTE_FIELD = "historyNote"  # a pseudo-field: the note travels with the change, into the event
TRACKED = (
    "interventionDate",
    "details",
    "outcome",
    "riskLevel",
    "responseAction",
    "status",
    "followUpAt",
    "patient",
)


def _pointer(cls: str, object_id: str) -> dict[str, str]:
    return {"__type": "Pointer", "className": cls, "objectId": object_id}


def _plain(value: Any) -> Any:
    """A history value in wire form (dates as ISO strings)."""
    if hasattr(value, "isoformat"):
        return iso(value)
    return value


async def escalate(
    repo: Repository, assessment: dict[str, Any], result: InstrumentResult
) -> str | None:
    """Open a crisis log and alert the care team when scoring says so; returns the log id."""
    if result.crisis_risk_level is None:
        return None
    system = repo.system()
    patient = assessment["patient"]
    created = await system.create(
        CLASS,
        {
            "patient": {
                "__type": "Pointer",
                "className": "PatientProfile",
                "objectId": patient["objectId"],
            },
            "interventionDate": {"__type": "Date", "iso": iso(utcnow())},
            "riskLevel": result.crisis_risk_level,
            "status": "open",
            "details": f"Opened automatically: {result.instrument} screen "
            f"({', '.join(result.risk_flags) or result.severity}).",
            "assessment": _pointer("IntakeAssessment", assessment["objectId"]),
        },
    )
    await system.create(
        "CareAlert",
        {
            "patient": {
                "__type": "Pointer",
                "className": "PatientProfile",
                "objectId": patient["objectId"],
            },
            "kind": "crisis",
            "severity": result.crisis_risk_level,
            "crisisLog": _pointer(CLASS, created["objectId"]),
        },
    )
    await audit.record(
        repo,
        "crisis.auto_open",
        entity_type=CLASS,
        entity_id=created["objectId"],
        summary="Crisis log opened by screening",
        metadata={"assessmentId": assessment["objectId"]},
    )
    return str(created["objectId"])


def register(hooks: Hooks) -> None:
    @hooks.on_before_save(CLASS)
    async def before_save(request: SaveRequest) -> None:
        auth, original = request.auth, request.original or {}
        note = request.body.pop(NOTE_FIELD, None)
        if note is not None and not isinstance(note, str):
            raise ValidationFailed(f"{NOTE_FIELD} must be a string.")
        request.context["note"] = note
        if request.is_new:
            if not auth.is_system and not auth.is_master:
                request.server_values["recordedBy"] = _pointer("_User", str(auth.user_id))
            status = request.value("status") or "open"
            if status != "open" and not auth.is_system:
                raise ValidationFailed("A crisis log starts open.")
            return
        old, new = original.get("status") or "open", request.value("status") or "open"
        if ORDER.index(new) < ORDER.index(old):
            raise ValidationFailed(f"A crisis log cannot go back from {old} to {new}.")
        if old == "closed":
            raise ValidationFailed("A closed crisis log cannot change; open a new log.")
        if "patient" in request.body and not auth.is_master:
            raise OperationForbidden("A crisis log cannot move to another patient.")

    @hooks.on_after_save(CLASS)
    async def record_history(event: AfterSave) -> None:
        before = event.original or {}
        changes = {
            name: {"from": _plain(before.get(name)), "to": _plain(event.row.get(name))}
            for name in TRACKED
            if (event.is_new and event.row.get(name) is not None)
            or (not event.is_new and before.get(name) != event.row.get(name))
        }
        if not changes and not event.context.get("note"):
            return
        actor = event.repo.auth.user_id
        body: dict[str, Any] = {
            "crisisLog": _pointer(CLASS, event.object_id),
            "patient": _pointer("PatientProfile", str(event.row["patient"])),
            "changes": changes,
        }
        if actor:
            body["actor"] = _pointer("_User", actor)
        if event.context.get("note"):
            body["note"] = event.context["note"]
        await event.repo.system().create("CrisisLogEvent", body)
