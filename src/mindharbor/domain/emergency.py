"""Emergency access ("break the glass"): time-limited read access to a patient's chart.

A provider who is not on the patient's care team, facing an emergency, states a reason and gets
read access for a configurable time (default 60 minutes). The grant is a row the role resolver
turns into the identity ``role:emergency_<patientId>``, which every PHI record's ACL already
lists as a reader, so access ends by itself when the grant expires: nothing has to be revoked.
Each grant writes a high-severity audit entry that compliance reviews; the stated reason is kept
with the grant (it is the provider's words, not chart data) and shown by ``listEmergencyGrants``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from mindharbor.domain import audit
from mindharbor.errors import ObjectNotFound, OperationForbidden, ScriptFailed
from mindharbor.hooks import FunctionRequest, Hooks
from mindharbor.security.roles import is_provider, may_review_compliance
from mindharbor.storage import identity
from mindharbor.storage.codec import iso, new_object_id, utcnow

MIN_REASON = 10


def register(hooks: Hooks) -> None:
    @hooks.function("requestEmergencyAccess")
    async def request_access(request: FunctionRequest) -> dict[str, Any]:
        auth, repo = request.auth, request.repo
        if not is_provider(auth):
            raise OperationForbidden("Only providers can request emergency access.")
        patient_id, reason = request.params.get("patientId"), request.params.get("reason")
        if not isinstance(reason, str) or len(reason.strip()) < MIN_REASON:
            raise ScriptFailed(f"State the reason for emergency access ({MIN_REASON}+ characters).")
        if not isinstance(patient_id, str):
            raise ScriptFailed("patientId is required.")
        try:  # existence is checked by the server: the provider cannot see the chart yet
            await repo.system().get("PatientProfile", patient_id)
        except ObjectNotFound as exc:
            raise ObjectNotFound("Patient not found.") from exc
        minutes = repo.store.settings.emergency_access_minutes
        now = utcnow()
        grant_id = new_object_id()
        await identity.insert_grant(
            repo,
            grant_id=grant_id,
            user_id=str(auth.user_id),
            patient_id=patient_id,
            reason=reason.strip()[:2000],
            created_at=now,
            expires_at=now + timedelta(minutes=minutes),
        )
        await audit.record(
            repo,
            "emergency.access",
            entity_type="PatientProfile",
            entity_id=patient_id,
            summary="Emergency access granted",
            metadata={"severity": "high", "grantId": grant_id, "minutes": minutes},
        )
        return {"grantId": grant_id, "expiresAt": iso(now + timedelta(minutes=minutes))}

    @hooks.function("listEmergencyGrants")
    async def list_grants(request: FunctionRequest) -> list[dict[str, Any]]:
        auth = request.auth
        if not may_review_compliance(auth):
            raise OperationForbidden("Only compliance and admins review emergency access.")
        rows = await identity.recent_grants(request.repo, 500)
        return [
            {
                "grantId": r["objectId"],
                "userId": r["userId"],
                "patientId": r["patientId"],
                "reason": r["reason"],
                "createdAt": iso(r["createdAt"]),
                "expiresAt": iso(r["expiresAt"]),
            }
            for r in rows
        ]
