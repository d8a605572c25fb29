"""Versioned assessments and standardized instruments.

Lifecycle: ``draft`` (the assessor's work in progress; the patient cannot read it) → ``final``
(published) → ``amended`` (a new version) or ``entered-in-error``. An instrument can also be
``assigned`` to the patient, who completes it from the app. A final assessment is never
overwritten in place: amending snapshots the current version into ``AssessmentVersion`` (with
who, when and why) before applying the change, so every version stays readable to those allowed.
Scores and severity are computed by the server from the instrument's rules and cannot be sent by
a client. A positive suicide-risk screen opens a crisis log in the same transaction.
"""

from __future__ import annotations

from typing import Any

from mindharbor.domain import audit, crisis
from mindharbor.domain.instruments import InstrumentResult, is_scored, score
from mindharbor.errors import OperationForbidden, ScriptFailed, ValidationFailed
from mindharbor.hooks import FunctionRequest, Hooks, SaveRequest
from mindharbor.storage.codec import iso, utcnow
from mindharbor.storage.repository import Repository

CLASS = "IntakeAssessment"
EDITABLE_WHILE_DRAFT = frozenset(
    {"details", "responses", "recommendations", "assessmentDate", "instrument"}
)
AMENDABLE = frozenset({"details", "responses", "recommendations", "assessmentDate"})
CLOSED = frozenset({"entered-in-error"})


def _pointer(cls: str, object_id: str) -> dict[str, str]:
    return {"__type": "Pointer", "className": cls, "objectId": object_id}


def _scoring(result: InstrumentResult) -> dict[str, Any]:
    return {
        "score": result.score,
        "severity": result.severity,
        "scoringVersion": result.rules_version,
        "riskFlags": list(result.risk_flags),
    }


def scored_values(
    instrument: Any, responses: Any
) -> tuple[dict[str, Any], InstrumentResult | None]:
    """Server-computed fields for an instrument's answers (142 on invalid answers)."""
    if not is_scored(instrument) or responses is None:
        return {"score": None, "severity": None, "scoringVersion": None, "riskFlags": None}, None
    result = score(str(instrument), responses)
    return _scoring(result), result


def register(hooks: Hooks) -> None:
    @hooks.on_before_save(CLASS)
    async def before_save(request: SaveRequest) -> None:
        auth, original = request.auth, request.original or {}
        if auth.is_system:
            return  # the functions below drive the lifecycle as the server
        if request.is_new:
            if not auth.is_master:
                request.server_values["assessor"] = _pointer("_User", str(auth.user_id))
            if not (auth.is_master and "status" in request.body):  # imports may set it
                request.server_values["status"] = "draft"
            request.server_values["version"] = 1
        else:
            status = original.get("status")
            if status != "draft":
                raise OperationForbidden(
                    "A published assessment is never changed in place: use amendAssessment."
                )
            if not auth.is_master and original.get("assessor") != auth.user_id:
                raise OperationForbidden("Only the assessor edits a draft.")
            changed = set(request.body) - EDITABLE_WHILE_DRAFT - {"ACL"}
            if changed:
                raise OperationForbidden(f"{', '.join(sorted(changed))} cannot change here.")
        if "responses" in request.body or "instrument" in request.body:
            values, _ = scored_values(request.value("instrument"), request.value("responses"))
            request.server_values.update(values)

    @hooks.function("publishAssessment")
    async def publish(request: FunctionRequest) -> dict[str, Any]:
        repo, assessment = request.repo, await access_assessment(request)
        if assessment.get("status") != "draft":
            raise ScriptFailed("Only a draft can be published.")
        if (
            assessment["assessor"]["objectId"] != request.auth.user_id
            and not request.auth.is_master
        ):
            raise OperationForbidden("Only the assessor publishes an assessment.")
        return await _finalise(repo, assessment, assessment.get("responses"), "assessment.publish")

    @hooks.function("assignInstrument")
    async def assign(request: FunctionRequest) -> dict[str, Any]:
        """A provider assigns an instrument for the patient to complete in the app."""
        repo, params = request.repo, request.params
        instrument = params.get("instrument")
        if not is_scored(instrument):
            raise ScriptFailed("instrument must be PHQ-9, GAD-7 or C-SSRS.")
        patient = params.get("patientId")
        created = await repo.create(
            CLASS,
            {
                "patient": _pointer("PatientProfile", str(patient)),
                "instrument": instrument,
                "assessmentDate": {"__type": "Date", "iso": iso(utcnow())},
            },
        )
        await repo.system().update(CLASS, created["objectId"], {"status": "assigned"})
        return {"assessmentId": created["objectId"], "status": "assigned"}

    @hooks.function("submitInstrument")
    async def submit(request: FunctionRequest) -> dict[str, Any]:
        """The patient answers an instrument assigned to them; it is scored and finalised."""
        repo, assessment = request.repo, await access_assessment(request)
        if assessment.get("status") != "assigned":
            raise ScriptFailed("This assessment is not waiting for answers.")
        profile = await repo.get("PatientProfile", assessment["patient"]["objectId"])
        if profile["user"]["objectId"] != request.auth.user_id:
            raise OperationForbidden("Only the patient completes an assigned instrument.")
        return await _finalise(
            repo, assessment, request.params.get("responses"), "assessment.submit"
        )

    @hooks.function("amendAssessment")
    async def amend(request: FunctionRequest) -> dict[str, Any]:
        repo, params = request.repo, request.params
        assessment = await access_assessment(request)
        reason, changes = params.get("reason"), params.get("changes") or {}
        if not isinstance(reason, str) or not reason.strip():
            raise ScriptFailed("An amendment needs a reason.")
        if assessment.get("status") not in ("final", "amended"):
            raise ScriptFailed("Only a final or amended assessment can be amended.")
        if not isinstance(changes, dict) or not changes or set(changes) - AMENDABLE:
            raise ScriptFailed("changes may set: " + ", ".join(sorted(AMENDABLE)))
        await _require_team_write(repo, assessment)
        await _snapshot(repo, assessment, reason)
        values, result = scored_values(
            assessment.get("instrument"), changes.get("responses", assessment.get("responses"))
        )
        version = int(assessment.get("version") or 1) + 1
        await repo.system().update(
            CLASS,
            assessment["objectId"],
            {**changes, **values, "status": "amended", "version": version},
        )
        await audit.record(
            repo,
            "assessment.amend",
            entity_type=CLASS,
            entity_id=assessment["objectId"],
            summary=f"Amended to v{version}",
            metadata={"version": version, "fields": sorted(changes)},
        )
        if result is not None:
            await crisis.escalate(repo, assessment, result)
        return {"assessmentId": assessment["objectId"], "version": version, "status": "amended"}

    @hooks.function("markAssessmentEnteredInError")
    async def entered_in_error(request: FunctionRequest) -> dict[str, Any]:
        repo, assessment = request.repo, await access_assessment(request)
        reason = request.params.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ScriptFailed("Say why the assessment was entered in error.")
        if assessment.get("status") in CLOSED:
            raise ScriptFailed("Already marked entered-in-error.")
        await _require_team_write(repo, assessment)
        await _snapshot(repo, assessment, reason)
        version = int(assessment.get("version") or 1) + 1
        await repo.system().update(
            CLASS, assessment["objectId"], {"status": "entered-in-error", "version": version}
        )
        await audit.record(
            repo,
            "assessment.entered_in_error",
            entity_type=CLASS,
            entity_id=assessment["objectId"],
            summary="Marked entered-in-error",
        )
        return {"assessmentId": assessment["objectId"], "status": "entered-in-error"}


async def access_assessment(request: FunctionRequest, *, lock: bool = True) -> dict[str, Any]:
    """The assessment named by ``assessmentId``, 101 unless the caller may read it; locked for
    the transaction (``lock``), so two amendments cannot both compute the same next version."""
    assessment_id = request.params.get("assessmentId")
    if not isinstance(assessment_id, str):
        raise ScriptFailed("assessmentId is required.")
    return await request.repo.get(CLASS, assessment_id, lock=lock)


async def _require_team_write(repo: Repository, assessment: dict[str, Any]) -> None:
    """Amending is a write: the caller must hold write permission on the record (care team)."""
    if not await repo.writable(CLASS, assessment["objectId"]):
        raise OperationForbidden("Only the patient's care team amends an assessment.")


async def _snapshot(repo: Repository, assessment: dict[str, Any], reason: str) -> None:
    """Keep the current version, readable by exactly those who could read it (a draft's
    snapshot stays hidden from the patient) and by nobody writable: versions are history."""
    kept = {k: v for k, v in assessment.items() if k not in ("ACL",)}
    stored = await repo.system().get(CLASS, assessment["objectId"])
    acl = stored.get("ACL") or {}
    readers = {who: {"read": True} for who, perms in acl.items() if perms.get("read")}
    await repo.system().create(
        "AssessmentVersion",
        {
            "ACL": readers,
            "assessment": _pointer(CLASS, assessment["objectId"]),
            "patient": assessment["patient"],
            "version": int(assessment.get("version") or 1),
            "snapshot": kept,
            "changedBy": _pointer("_User", str(repo.auth.user_id)) if repo.auth.user_id else None,
            "reason": reason.strip()[:2000],
        },
    )


async def _finalise(
    repo: Repository, assessment: dict[str, Any], responses: Any, action: str
) -> dict[str, Any]:
    instrument = assessment.get("instrument")
    if is_scored(instrument) and responses is None:
        raise ValidationFailed(f"{instrument} needs responses.")
    values, result = scored_values(instrument, responses)
    changes: dict[str, Any] = {**values, "status": "final"}
    if responses is not None:
        changes["responses"] = responses
    await repo.system().update(CLASS, assessment["objectId"], changes)
    await audit.record(
        repo,
        action,
        entity_type=CLASS,
        entity_id=assessment["objectId"],
        summary="Assessment finalised",
    )
    crisis_id = None
    if result is not None:
        crisis_id = await crisis.escalate(repo, assessment, result)
    return {
        "assessmentId": assessment["objectId"],
        "status": "final",
        **values,
        "crisisLogId": crisis_id,
    }
