"""Care teams and the server-decided ACLs of PHI records.

Every patient has a role ``careTeam_<patientProfileId>`` whose users are the providers assigned to
that patient. A PHI record's ACL is derived from its ``patient`` pointer: the patient's own user
may read it and the care team may read and write it. A client may narrow that ACL but never
widen it, and a write must leave the record writable by the caller (so nobody can move a record
into another patient's chart). Assignment changes go through audited functions only.
"""

from __future__ import annotations

from typing import Any

from mindharbor.auth.roles import care_team_role, ensure_role, roles_of, set_membership
from mindharbor.domain import audit
from mindharbor.errors import (
    ObjectNotFound,
    OperationForbidden,
    ScriptFailed,
    ValidationFailed,
)
from mindharbor.hooks import FunctionRequest, Hooks, SaveRequest
from mindharbor.security.acl import ACLJson, permission_lists, validate_acl
from mindharbor.storage.repository import FindQuery, Repository

PATIENT_RECORDS = (
    "IntakeAssessment",
    "CrisisInterventionLog",
    "Message",
    "Appointment",
    "AssessmentVersion",
    "CrisisLogEvent",
    "CareAlert",
)
# Records the patient does not read: drafts in progress and the team's own alerts.
HIDDEN_FROM_PATIENT_STATUSES = {"IntakeAssessment": frozenset({"draft"})}
TEAM_ONLY = frozenset({"CareAlert"})
RW = {"read": True, "write": True}


class _NoField:
    default = None


_NO_FIELD: Any = _NoField()
# Patients may edit their own contact details and preferences, not their chart's identity.
PROFILE_CLINICAL_FIELDS = frozenset(
    {"medicalRecordNumber", "isActive", "primaryClinic", "dateOfBirth"}
)


def _is_staff(auth: Any) -> bool:
    return bool(auth.is_master or auth.roles & {"admin", "provider"})


def _pointer_id(value: Any) -> str | None:
    if isinstance(value, dict) and value.get("__type") == "Pointer":
        return str(value.get("objectId"))
    return value if isinstance(value, str) else None


def _user_pointer(user_id: str) -> dict[str, str]:
    return {"__type": "Pointer", "className": "_User", "objectId": user_id}


def merge_client_acl(request: SaveRequest, default: ACLJson) -> ACLJson:
    """The client's ACL if it only narrows ``default``; refused (119) if it widens it."""
    sent = request.body.pop("ACL", None)
    if sent is None or request.auth.is_master:
        return validate_acl(sent) if sent is not None else default
    narrowed = validate_acl(sent)
    for principal, perms in narrowed.items():
        for perm in perms:
            if not default.get(principal, {}).get(perm):
                raise OperationForbidden("The ACL of a clinical record is set by the server.")
    return narrowed


def require_writable_after(request: SaveRequest, acl: ACLJson) -> None:
    if request.auth.is_master:
        return
    _, writers = permission_lists(acl)
    if not set(writers) & set(request.auth.identities):
        raise OperationForbidden("This change would move the record out of your reach.")


async def patient_context(request: SaveRequest) -> tuple[str, str]:
    """(patient profile id, the patient's user id) for a record, checked with the caller's
    rights: a patient the caller cannot see does not exist for them."""
    patient_id = _pointer_id(request.value("patient"))
    if not patient_id:
        raise ValidationFailed("patient is required")
    try:
        profile = await request.repo.get("PatientProfile", patient_id)
    except (ObjectNotFound, OperationForbidden) as exc:
        raise ObjectNotFound("Patient not found.") from exc
    user_id = _pointer_id(profile.get("user"))
    if not user_id:
        raise ValidationFailed("The patient has no account.")
    return patient_id, user_id


def emergency_role(patient_profile_id: str) -> str:
    return f"emergency_{patient_profile_id}"


def record_acl(
    class_name: str, patient_id: str, patient_user: str, request: SaveRequest
) -> ACLJson:
    """Patient reads (except drafts and the team's alerts), the care team reads and writes, and
    a provider holding an unexpired emergency grant for this patient reads."""
    team = f"role:{care_team_role(patient_id)}"
    acl: ACLJson = {team: dict(RW), f"role:{emergency_role(patient_id)}": {"read": True}}
    hidden_statuses = HIDDEN_FROM_PATIENT_STATUSES.get(class_name, frozenset())
    status = request.value("status") or request.schema.fields.get("status", _NO_FIELD).default
    if class_name not in TEAM_ONLY and status not in hidden_statuses:
        acl[patient_user] = {"read": True}
    if class_name == "Message":
        acl[team] = {"read": True}
        for party in (request.value("from"), request.value("to")):
            party_id = _pointer_id(party)
            if party_id:
                acl[party_id] = dict(RW)
    return acl


async def _check_message_parties(request: SaveRequest, patient_id: str, patient_user: str) -> None:
    """Messages flow between a patient and their care team, or within that care team."""
    team = care_team_role(patient_id)
    auth = request.auth
    for field in ("from", "to"):
        party = _pointer_id(request.value(field))
        if party is None or party == patient_user:
            continue
        # The caller's own roles were read in this same transaction when its session was
        # resolved; anyone else's are read now.
        if party == auth.user_id and not auth.is_master:
            held = auth.roles
        else:
            held = await roles_of(request.repo.system(), party)
        if team not in held:
            raise ValidationFailed(f"The message's {field} is not the patient or their care team.")


def register(hooks: Hooks) -> None:
    @hooks.on_before_save("PatientProfile")
    async def profile_before_save(request: SaveRequest) -> None:
        auth = request.auth
        user_id = _pointer_id(request.value("user"))
        if not user_id:
            raise ValidationFailed("user is required")
        if request.is_new:
            is_admin = auth.is_master or "admin" in auth.roles
            if not is_admin and user_id != auth.user_id:
                raise OperationForbidden("Patients can only create their own profile.")
            existing = await request.repo.system().find(
                "PatientProfile", FindQuery(where={"user": _user_pointer(user_id)}, limit=1)
            )
            if existing.results:
                raise ValidationFailed("This user already has a patient profile.")
            role_id = await ensure_role(
                request.repo, care_team_role(request.object_id), {"role:admin": RW}
            )
            request.server_values["careTeam"] = {
                "__type": "Pointer",
                "className": "_Role",
                "objectId": role_id,
            }
        elif "user" in request.body and not auth.is_master:
            raise OperationForbidden("A profile's account cannot be changed.")
        clinical = PROFILE_CLINICAL_FIELDS & set(request.body)
        if clinical and not request.is_new and not _is_staff(auth):
            raise OperationForbidden(
                f"Only the care team or an admin can change {', '.join(sorted(clinical))}."
            )
        default = {
            user_id: dict(RW),
            f"role:{care_team_role(request.object_id)}": dict(RW),
            "role:admin": dict(RW),
            f"role:{emergency_role(request.object_id)}": {"read": True},
        }
        request.acl = merge_client_acl(request, default)

    @hooks.on_before_save(*PATIENT_RECORDS)
    async def record_before_save(request: SaveRequest) -> None:
        if request.schema.name == "Message" and request.is_new and not request.auth.is_master:
            request.server_values["from"] = _user_pointer(str(request.auth.user_id))
        patient_id, patient_user = await patient_context(request)
        if request.schema.name == "Message":
            await _check_message_parties(request, patient_id, patient_user)
        acl = merge_client_acl(
            request, record_acl(request.schema.name, patient_id, patient_user, request)
        )
        require_writable_after(request, acl)
        request.acl = acl

    @hooks.on_before_save("ProviderProfile")
    async def provider_before_save(request: SaveRequest) -> None:
        auth = request.auth
        user_id = _pointer_id(request.value("user"))
        if not user_id:
            raise ValidationFailed("user is required")
        if not (auth.is_master or "admin" in auth.roles or user_id == auth.user_id):
            raise OperationForbidden("Providers can only edit their own profile.")
        if "provider" not in await roles_of(request.repo.system(), user_id):
            raise ValidationFailed("The user is not a provider.")
        request.body.pop("ACL", None)
        request.acl = {user_id: dict(RW), "role:admin": dict(RW), "*": {"read": True}}

    @hooks.function("assignProvider")
    async def assign_provider(request: FunctionRequest) -> dict[str, Any]:
        return await _change_team(request, member=True)

    @hooks.function("unassignProvider")
    async def unassign_provider(request: FunctionRequest) -> dict[str, Any]:
        return await _change_team(request, member=False)


async def _change_team(request: FunctionRequest, *, member: bool) -> dict[str, Any]:
    auth = request.auth
    if not (auth.is_master or "admin" in auth.roles):
        raise OperationForbidden("Only an admin can change a care team.")
    patient_id = request.params.get("patientId")
    provider_id = request.params.get("providerId")
    if not isinstance(patient_id, str) or not isinstance(provider_id, str):
        raise ScriptFailed("patientId and providerId are required.")
    repo: Repository = request.repo
    await repo.get("PatientProfile", patient_id)  # 101 unless the admin can see the patient
    if member and "provider" not in await roles_of(repo.system(), provider_id):
        raise ScriptFailed("The user is not a provider.")
    await set_membership(repo, care_team_role(patient_id), provider_id, member=member)
    action = "careteam.assign" if member else "careteam.unassign"
    await audit.record(
        repo,
        action,
        entity_type="PatientProfile",
        entity_id=patient_id,
        summary=f"Provider {'added to' if member else 'removed from'} care team",
        metadata={"providerId": provider_id},
    )
    return {"patientId": patient_id, "providerId": provider_id, "member": member}
