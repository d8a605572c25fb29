"""Care teams and the server-decided ACLs of PHI records.

Every patient has a role ``careTeam_<patientProfileId>`` whose users are the providers assigned to
that patient. A PHI record's ACL is derived from its ``patient`` pointer: the patient's own user
may read it and the care team may read and write it. A client may narrow that ACL but never
widen it, and a write must leave the record writable by the caller (so nobody can move a record
into another patient's chart). Assignment changes go through audited functions only.
"""

from __future__ import annotations

import secrets
from typing import Any

from mindharbor.auth.roles import ensure_role, roles_of, set_membership
from mindharbor.domain import audit
from mindharbor.errors import (
    ObjectNotFound,
    OperationForbidden,
    ScriptFailed,
    ValidationFailed,
)
from mindharbor.hooks import FunctionRequest, Hooks, SaveRequest
from mindharbor.security.acl import ACLJson, permission_lists, validate_acl
from mindharbor.security.roles import (
    care_team_role,
    emergency_role,
    is_admin,
    is_clinical_staff,
)
from mindharbor.storage.repository import FindQuery, Repository
from mindharbor.storage.server_fields import same_as_stored

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
# Later states that show the patient a record only if the patient could already read it: a
# draft filed in the wrong chart and then marked entered-in-error was never the patient's.
STICKY_STATUSES = {"IntakeAssessment": frozenset({"entered-in-error"})}
TEAM_ONLY = frozenset({"CareAlert"})
RW = {"read": True, "write": True}


class _NoField:
    default = None


_NO_FIELD: Any = _NoField()
# Patients may edit their own contact details and preferences, not their chart's identity.
PROFILE_CLINICAL_FIELDS = frozenset(
    {"medicalRecordNumber", "isActive", "primaryClinic", "dateOfBirth"}
)
# ... and on create they may state their date of birth, but not the fields the clinic decides:
# the MRN (a patient choosing one could probe which MRNs exist through the 137 it would answer),
# the clinic (which decides retention) and whether the chart is active.
PROFILE_STAFF_FIELDS_ON_CREATE = frozenset({"medicalRecordNumber", "isActive", "primaryClinic"})
MRN_PREFIX = "MH-"
_MRN_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O: read aloud and typed by staff


def _pointer_id(value: Any) -> str | None:
    if isinstance(value, dict) and value.get("__type") == "Pointer":
        return str(value.get("objectId"))
    return value if isinstance(value, str) else None


async def assign_mrn(repo: Repository) -> str:
    """A fresh medical record number (``MH-`` + 10 random characters, about 51 bits), checked
    against the stored ones; a clash, already unlikely, is drawn again."""
    system = repo.system()
    while True:
        mrn = MRN_PREFIX + "".join(secrets.choice(_MRN_ALPHABET) for _ in range(10))
        if await system.raw_row("PatientProfile", "medicalRecordNumber", mrn) is None:
            return mrn


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


def patient_reads(class_name: str, patient_user: str, request: SaveRequest) -> bool:
    """Whether the patient may read this version of one of their records."""
    if class_name in TEAM_ONLY:
        return False
    status = request.value("status") or request.schema.fields.get("status", _NO_FIELD).default
    if status in HIDDEN_FROM_PATIENT_STATUSES.get(class_name, frozenset()):
        return False
    if status in STICKY_STATUSES.get(class_name, frozenset()):
        readers = (request.original or {}).get("_rperm") or []
        return patient_user in readers
    return True


def record_acl(
    class_name: str, patient_id: str, patient_user: str, request: SaveRequest
) -> ACLJson:
    """Patient reads (except drafts and the team's alerts), the care team reads and writes, and
    a provider holding an unexpired emergency grant for this patient reads."""
    team = f"role:{care_team_role(patient_id)}"
    acl: ACLJson = {team: dict(RW), f"role:{emergency_role(patient_id)}": {"read": True}}
    if patient_reads(class_name, patient_user, request):
        acl[patient_user] = {"read": True}
    if class_name == "Message":
        # A clinician reads a patient's messages as a member of the care team, and so stops
        # reading them when taken off it (HIPAA's minimum necessary): his user id is never on a
        # message's ACL but for the text of what he sent himself, which stays his (read only;
        # security.roles.may_receive_file_urls keeps its attachments from him). The recipient
        # on the team marks it read through the team's write; messaging.py lets only ``to``
        # touch receipts and nobody change content.
        sender = _pointer_id(request.value("from"))
        for party in (sender, _pointer_id(request.value("to"))):
            if party == patient_user:
                acl[party] = dict(RW)
        if sender and sender != patient_user:
            acl[sender] = {"read": True}
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


def _drop_consistent_staff_fields(request: SaveRequest, guarded: frozenset[str]) -> None:
    """A patient's app that sends staff fields with the values they will have anyway (a new
    chart's ``isActive: true``, an unchanged value on update) is not refused for it."""
    body = request.body
    if request.is_new:
        if body.get("isActive") is True:
            del body["isActive"]  # the server sets it: a new chart is active
        return
    for name in same_as_stored(request.schema, body, request.original or {}, guarded):
        del body[name]


def register(hooks: Hooks) -> None:
    @hooks.on_before_save("PatientProfile")
    async def profile_before_save(request: SaveRequest) -> None:
        auth = request.auth
        user_id = _pointer_id(request.value("user"))
        if not user_id:
            raise ValidationFailed("user is required")
        if request.is_new:
            if not is_admin(auth) and user_id != auth.user_id:
                raise OperationForbidden("Patients can only create their own profile.")
            # Lock the account first: two concurrent creations would each find no profile and
            # split the patient's record over two charts (seen on PostgreSQL).
            await request.repo.system().raw_row("_User", "objectId", user_id, lock=True)
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
        elif (
            "user" in request.body
            and not auth.is_master
            and user_id != (request.original or {}).get("user")
        ):
            raise OperationForbidden("A profile's account cannot be changed.")
        guarded = PROFILE_STAFF_FIELDS_ON_CREATE if request.is_new else PROFILE_CLINICAL_FIELDS
        if not is_clinical_staff(auth):
            _drop_consistent_staff_fields(request, guarded)
        clinical = guarded & set(request.body)
        if clinical and not is_clinical_staff(auth):
            # Refused before any uniqueness check runs: a patient learns nothing about others.
            raise OperationForbidden(
                f"Only the care team or an admin can set {', '.join(sorted(clinical))}."
            )
        if request.is_new and not request.body.get("medicalRecordNumber"):
            # No record number yet (a patient registering in the portal): the server issues
            # one; the clinic may change it later.
            request.body.pop("medicalRecordNumber", None)
            request.server_values["medicalRecordNumber"] = await assign_mrn(request.repo)
        if request.is_new and "isActive" not in request.body:
            request.server_values["isActive"] = True  # a new chart is active until closed
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
        if request.schema.name == "Message" and request.is_new:
            # Parties are checked when sent (they never change): a patient can still mark read
            # a message from a provider who has since left the care team.
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
        if not (is_admin(auth) or user_id == auth.user_id):
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


async def narrow_message_acls(repo: Repository, patient_id: str, provider_id: str) -> None:
    """Messages about the patient that name the provider on their ACL (as messages stored
    before the care team alone gave access did) keep him only as a reader of what he sent."""
    system = repo.system()
    me = _user_pointer(provider_id)
    where = {
        "patient": {"__type": "Pointer", "className": "PatientProfile", "objectId": patient_id},
        "$or": [{"from": me}, {"to": me}],
    }
    after = ""
    while True:
        page = await system.find(
            "Message",
            FindQuery(
                where={**where, "objectId": {"$gt": after}},
                order="objectId",
                limit=500,
            ),
        )
        for message in page.results:
            acl = dict(message.get("ACL") or {})
            if provider_id not in acl:
                continue
            del acl[provider_id]
            if _pointer_id(message.get("from")) == provider_id:
                acl[provider_id] = {"read": True}
            await system.update("Message", message["objectId"], {"ACL": acl})
        if len(page.results) < 500:
            return
        after = page.results[-1]["objectId"]


async def _change_team(request: FunctionRequest, *, member: bool) -> dict[str, Any]:
    auth = request.auth
    if not is_admin(auth):
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
    if not member:
        await narrow_message_acls(repo, patient_id, provider_id)
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
