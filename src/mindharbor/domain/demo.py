"""Demo data for the embedded default: a clinic with one of each role and a care team.

Idempotent: accounts that exist are left alone. Refused in production. The clinical demo data
(assessments, crisis logs, conversations, appointments) grows with the clinical workflows.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from mindharbor.auth import accounts
from mindharbor.auth.roles import set_membership
from mindharbor.hooks import FunctionRequest
from mindharbor.security.roles import care_team_role
from mindharbor.storage.codec import iso, utcnow
from mindharbor.storage.repository import FindQuery, Repository

DEMO_PASSWORD = "harbor-demo-password"  # noqa: S105 - printed demo login, refused in production
DEMO_USERS = (
    ("admin.demo", "admin", "Avery Admin"),
    ("compliance.demo", "compliance", "Casey Compliance"),
    ("dr.rivera", "provider", "Dr. Sam Rivera"),
    ("dr.okafor", "provider", "Dr. Ada Okafor"),
    ("pat.morgan", "patient", "Morgan Lee"),
    ("pat.jordan", "patient", "Jordan Diaz"),
)


async def _user_id(repo: Repository, username: str) -> str | None:
    found = await repo.find("_User", FindQuery(where={"username": username}, limit=1))
    return found.results[0]["objectId"] if found.results else None


async def seed_demo(
    repo: Repository, advance: Callable[[int], None] | None = None
) -> list[dict[str, Any]]:
    """Create the demo clinic; returns the logins to print. ``advance(1)`` after each user."""
    ids: dict[str, str] = {}
    for username, role, _ in DEMO_USERS:
        existing = await _user_id(repo, username)
        if existing is None:
            _, created = await accounts.sign_up(
                repo,
                {
                    "username": username,
                    "password": DEMO_PASSWORD,
                    "email": f"{username}@demo.mindharbor.local",
                    "role": role,
                },
                None,
            )
            existing = str(created["objectId"])
        ids[username] = existing
    provider_for = {"pat.morgan": "dr.rivera", "pat.jordan": "dr.okafor"}
    for number, (username, role, display) in enumerate(DEMO_USERS):
        user = {"__type": "Pointer", "className": "_User", "objectId": ids[username]}
        if role == "provider":
            await _ensure(
                repo,
                "ProviderProfile",
                user,
                {"displayName": display, "specialty": "Psychiatry", "clinic": "Harbor Clinic"},
            )
        if role == "patient":
            profile = await _ensure(
                repo,
                "PatientProfile",
                user,
                {
                    "displayName": display,
                    "medicalRecordNumber": f"DEMO-{1000 + number}",
                    "primaryClinic": "Harbor Clinic",
                    "isActive": True,
                },
            )
            provider = ids[provider_for[username]]
            await set_membership(repo, care_team_role(profile), provider, member=True)
            await _clinical_story(repo, profile, ids[username], provider, number)
        if advance is not None:
            advance(1)
    return [{"username": u, "role": r, "password": DEMO_PASSWORD} for u, r, _ in DEMO_USERS]


def _ptr(cls: str, object_id: str) -> dict[str, str]:
    return {"__type": "Pointer", "className": cls, "objectId": object_id}


def _at(days: int, hour: int) -> dict[str, str]:
    moment = (utcnow() + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return {"__type": "Date", "iso": iso(moment)}


async def _clinical_story(
    repo: Repository, profile: str, patient_user: str, provider: str, number: int
) -> None:
    """Assessments of each instrument, a crisis with history, a conversation, appointments."""
    patient = _ptr("PatientProfile", profile)
    existing = await repo.find("IntakeAssessment", FindQuery(where={"patient": patient}, limit=1))
    if existing.results:
        return
    risky = number % 2 == 1  # the second patient screens positive on PHQ-9 item 9
    instruments = {
        "PHQ-9": {f"item{i}": 2 if i < 5 else 1 for i in range(1, 10)} | {"item9": int(risky)},
        "GAD-7": {f"item{i}": 1 for i in range(1, 8)},
        "C-SSRS": {"q1": True, "q2": False, "q6": False},
    }
    for offset, (instrument, responses) in enumerate(instruments.items()):
        draft = await repo.create(
            "IntakeAssessment",
            {
                "patient": patient,
                "assessor": _ptr("_User", provider),
                "instrument": instrument,
                "responses": responses,
                "assessmentDate": _at(-30 + offset * 7, 10),
                "details": f"{instrument} administered at the clinic.",
            },
        )
        request = FunctionRequest(repo, {"assessmentId": draft["objectId"]})
        result = await repo.store.hooks.call_function("publishAssessment", request)
        if result.get("crisisLogId"):
            await repo.update(
                "CrisisInterventionLog",
                result["crisisLogId"],
                {
                    "status": "active",
                    "responseAction": "Safety plan reviewed by phone",
                    "followUpAt": _at(1, 15),
                    "historyNote": "Called the patient within the hour.",
                },
            )
    conversation = f"demo-{profile}"
    for sender, recipient, body in (
        (patient_user, provider, "Hi, can we move Thursday's session to the afternoon?"),
        (provider, patient_user, "Of course - 3pm works. See you then."),
    ):
        await repo.create(
            "Message",
            {
                "conversationId": conversation,
                "from": _ptr("_User", sender),
                "to": _ptr("_User", recipient),
                "patient": patient,
                "body": body,
                "isRead": False,
            },
        )
    await repo.create(
        "Appointment",
        {
            "patient": patient,
            "provider": _ptr("_User", provider),
            "startAt": _at(3, 15),
            "endAt": _at(3, 16),
            "status": "scheduled",
            "location": "Room 2",
            "reason": "Follow-up",
        },
    )


async def _ensure(repo: Repository, cls: str, user: dict[str, str], body: dict[str, Any]) -> str:
    found = await repo.find(cls, FindQuery(where={"user": user}, limit=1))
    if found.results:
        return str(found.results[0]["objectId"])
    return str((await repo.create(cls, {"user": user, **body}))["objectId"])
