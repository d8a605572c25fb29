"""Demo data for the embedded default: a clinic with one of each role and a care team.

Idempotent: accounts that exist are left alone. Refused in production. The clinical demo data
(assessments, crisis logs, conversations, appointments) grows with the clinical workflows.
"""

from __future__ import annotations

from typing import Any

from mindharbor.auth import accounts
from mindharbor.auth.roles import care_team_role, set_membership
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


async def seed_demo(repo: Repository) -> list[dict[str, Any]]:
    """Create the demo clinic; returns the logins to print."""
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
    return [{"username": u, "role": r, "password": DEMO_PASSWORD} for u, r, _ in DEMO_USERS]


async def _ensure(repo: Repository, cls: str, user: dict[str, str], body: dict[str, Any]) -> str:
    found = await repo.find(cls, FindQuery(where={"user": user}, limit=1))
    if found.results:
        return str(found.results[0]["objectId"])
    return str((await repo.create(cls, {"user": user, **body}))["objectId"])
