"""The same clinic, seeded into both servers through their REST APIs.

One plan (who exists, who treats whom, which assessments and messages) drives two adapters,
because the two servers are used differently by the apps built on them, exactly as a team would
use each:

* **Parse Server** knows nothing about care teams: the app (here, a master-key back office)
  creates a ``careTeam_<profileId>`` role per patient, adds the provider to its ``users``
  relation, and sends every record with its ACL (the patient and the care-team role).
* **MindHarbor** derives ACLs itself: ``assignProvider`` builds the care-team role, every PHI
  record's ACL follows from its ``patient``, a message's ``from`` is the session's user.

So the rows differ in how they got their ACLs, not in who can read them: patient *i* and the
providers on their care team read patient *i*'s profile, assessments and messages, nobody else
does. ``check_visibility`` proves that on both servers before any load runs.

Patients sign themselves up (``POST /users`` without the master key), which is how a patient
app does it and hands back the session used for the load. MindHarbor only lets an admin (or the
master key) create provider accounts, so its providers are created with the master key and then
log in; Parse providers sign up like anyone else.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.compare.retry import TRANSIENT, run_batched, send
from bench.find_messages import Call, SeedError, pointer
from mindharbor.auth.passwords import DEFAULT_PROFILE

PATIENTS_PER_SCALE = 1000
PROVIDERS_PER_SCALE = 50
ASSESSMENTS_PER_PATIENT = 12  # more than the dashboard's 10, so the limit really cuts
MESSAGES_PER_PATIENT = 10  # one thread with their provider, turns alternating
PASSWORD = "bench-harbor-passphrase"
SIGNUP_CONCURRENCY = 8
BASE_DATE = datetime(2026, 1, 1, tzinfo=UTC)
SEED_FORMAT = 1  # bump when the plan changes: cached templates of an older plan are reseeded


@dataclass
class Patient:
    username: str
    user_id: str = ""
    token: str = ""
    profile_id: str = ""
    provider: int = 0  # index into providers
    conversation_id: str = ""


@dataclass
class Provider:
    username: str
    user_id: str = ""
    token: str = ""


@dataclass
class Seeded:
    """What one server holds after seeding: ids and session tokens, saved beside the template."""

    server: str
    scale: float
    patients: list[Patient] = field(default_factory=list)
    providers: list[Provider] = field(default_factory=list)
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    # MindHarbor's argon2id profile the accounts were hashed with: a template of another profile
    # would have every first login re-hash (an upgrade write), so it is seeded again.
    hash_profile: str = ""

    def save(self, path: Path) -> None:
        payload = {"format": SEED_FORMAT, **asdict(self)}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Seeded | None:
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if raw.pop("format", None) != SEED_FORMAT:
            return None
        seeded = cls(**raw)
        seeded.patients = [Patient(**p) for p in raw["patients"]]
        seeded.providers = [Provider(**p) for p in raw["providers"]]
        return seeded

    def provider_of(self, patient: Patient) -> Provider:
        return self.providers[patient.provider]


def scale_name(scale: float) -> str:
    """For database and file names: 1 -> s1, 0.05 -> s0_05 (fractions are for trying things)."""
    return "s" + f"{scale:g}".replace(".", "_")


def plan(scale: float) -> tuple[list[Patient], list[Provider]]:
    providers = [
        Provider(f"provider-{i:05d}") for i in range(max(1, round(PROVIDERS_PER_SCALE * scale)))
    ]
    patients = [
        Patient(f"patient-{i:06d}", provider=i % len(providers), conversation_id=f"conv-{i:06d}")
        for i in range(round(PATIENTS_PER_SCALE * scale))
    ]
    return patients, providers


def iso(moment: datetime) -> dict[str, str]:
    return {
        "__type": "Date",
        "iso": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }


def assessment_fields(index: int, k: int) -> dict[str, Any]:
    return {
        "assessmentDate": iso(BASE_DATE + timedelta(days=k * 30, minutes=index)),
        "instrument": "intake-interview",
        "details": f"Intake follow-up {k + 1}: sleep, mood, appetite and supports reviewed.",
        "recommendations": "Continue weekly sessions; revisit the safety plan next visit.",
        "status": "final",
        "version": 1,
    }


def message_turns(patient: Patient) -> list[tuple[bool, bool, str]]:
    """(sent by the patient?, read?, body) per message of the patient's thread, oldest first."""
    return [
        (k % 2 == 0, k < MESSAGES_PER_PATIENT // 2, f"Turn {k} of {patient.conversation_id}.")
        for k in range(MESSAGES_PER_PATIENT)
    ]


async def post_each(
    what: str, items: Sequence[Any], one: Callable[[Any], Awaitable[None]], in_flight: int
) -> None:
    gate = asyncio.Semaphore(in_flight)

    async def guarded(item: Any) -> None:
        async with gate:
            await one(item)

    await asyncio.gather(*(guarded(item) for item in items))


def app_client(base_url: str, app_id: str, master_key: str | None = None) -> httpx.AsyncClient:
    headers = {"X-Parse-Application-Id": app_id}
    if master_key:
        headers["X-Parse-Master-Key"] = master_key
    # Idle connections are dropped before the servers' 5 s keep-alive can close one under a
    # request just sent on it (seen as ReadError on a loaded machine).
    limits = httpx.Limits(keepalive_expiry=2.0)
    return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=120.0, limits=limits)


USERNAME_TAKEN = 202  # Parse's error code, which both servers answer


async def sign_up(
    client: httpx.AsyncClient, person: Patient | Provider, extra: dict[str, Any]
) -> None:
    """``POST /users`` as the person. Its reply may be lost with a connection closed under
    it; sent again, it answers "username taken" for the account this run just made, which is
    then logged in instead (the login proves it is the one with this run's password)."""
    body = {"username": person.username, "password": PASSWORD, **extra}
    retried = False
    try:
        response = await client.post("/parse/users", json=body)
    except TRANSIENT:
        retried = True
        response = await send(client, "POST", "/parse/users", json=body)
    reply = response.json() if response.status_code in (200, 201, 400) else {}
    if retried and reply.get("code") == USERNAME_TAKEN:
        await log_in(client, person)
        return
    if "sessionToken" not in reply:
        raise SeedError(
            f"sign-up of {person.username}: HTTP {response.status_code} {response.text[:200]}"
        )
    person.user_id, person.token = reply["objectId"], reply["sessionToken"]


async def log_in(client: httpx.AsyncClient, person: Patient | Provider) -> None:
    """``POST /login``; sent again after a lost reply (a second session does no harm)."""
    response = await send(
        client, "POST", "/parse/login", json={"username": person.username, "password": PASSWORD}
    )
    reply = response.json() if response.status_code == 200 else {}
    if "sessionToken" not in reply or reply.get("mfaEnrollmentRequired"):
        raise SeedError(
            f"login of {person.username}: HTTP {response.status_code} {response.text[:200]}"
        )
    person.user_id, person.token = reply["objectId"], reply["sessionToken"]


async def seed_mindharbor(base_url: str, app_id: str, master_key: str, scale: float) -> Seeded:
    started = time.perf_counter()
    patients, providers = plan(scale)
    async with (
        app_client(base_url, app_id, master_key) as master,
        app_client(base_url, app_id) as anon,
    ):
        await run_batched(  # one batch at a time: each holds the provider role row it joins
            master,
            "providers",
            [
                (
                    "POST",
                    "/users",
                    {"username": p.username, "password": PASSWORD, "role": "provider"},
                )
                for p in providers
            ],
            in_flight=1,
        )
        await post_each("provider logins", providers, lambda p: log_in(anon, p), SIGNUP_CONCURRENCY)
        await post_each(
            "patient sign-ups",
            patients,
            lambda p: sign_up(anon, p, {"role": "patient"}),
            SIGNUP_CONCURRENCY,
        )
        profiles = await run_batched(
            master,
            "profiles",
            [
                (
                    "POST",
                    "/classes/PatientProfile",
                    {
                        "user": pointer("_User", p.user_id),
                        "medicalRecordNumber": f"MRN-{i:07d}",
                        "displayName": f"Patient {i}",
                        "isActive": True,
                    },
                )
                for i, p in enumerate(patients)
            ],
        )
        for patient, reply in zip(patients, profiles, strict=True):
            patient.profile_id = reply["objectId"]
        await run_batched(
            master,
            "care teams",
            [
                (
                    "POST",
                    "/functions/assignProvider",
                    {"patientId": p.profile_id, "providerId": providers[p.provider].user_id},
                )
                for p in patients
            ],
        )
        await run_batched(
            master,
            "assessments",
            [
                (
                    "POST",
                    "/classes/IntakeAssessment",
                    {
                        "patient": pointer("PatientProfile", p.profile_id),
                        "assessor": pointer("_User", providers[p.provider].user_id),
                        **assessment_fields(i, k),
                    },
                )
                for i, p in enumerate(patients)
                for k in range(ASSESSMENTS_PER_PATIENT)
            ],
        )
        calls: list[Call] = []
        read: list[bool] = []
        for p in patients:
            provider = providers[p.provider].user_id
            for by_patient, is_read, text in message_turns(p):
                body = new_message("mindharbor", p, provider, by_patient=by_patient, text=text)
                # The master key sends as somebody: it names the sender the server would set.
                body["from"] = pointer("_User", p.user_id if by_patient else provider)
                calls.append(("POST", "/classes/Message", body))
                read.append(is_read)
        created = await run_batched(master, "messages", calls)
        # A new message is always unread; the older half becomes read by the master key's
        # operator override of the recipient's receipt.
        await run_batched(
            master,
            "receipts",
            [
                ("PUT", f"/classes/Message/{r['objectId']}", {"isRead": True})
                for r, is_read in zip(created, read, strict=True)
                if is_read
            ],
        )
    return Seeded(
        "mindharbor",
        scale,
        patients,
        providers,
        time.perf_counter() - started,
        {
            "assessments": len(patients) * ASSESSMENTS_PER_PATIENT,
            "messages": len(calls),
        },
        hash_profile=DEFAULT_PROFILE,
    )


def team(profile_id: str) -> str:
    return f"careTeam_{profile_id}"


def parse_acl(patient: Patient, *, patient_writes: bool = True) -> dict[str, Any]:
    """The ACL a Parse app sends with a patient's record: the patient and their care team."""
    return {
        patient.user_id: {"read": True, "write": True} if patient_writes else {"read": True},
        f"role:{team(patient.profile_id)}": {"read": True, "write": True},
    }


def new_message(
    kind: str, patient: Patient, provider_id: str, *, by_patient: bool, text: str
) -> dict[str, Any]:
    """A new, unread message of the patient's thread, as each server's app sends it.

    MindHarbor sets ``from`` (the session's user) and the ACL itself; a Parse app must send both.
    """
    sender, recipient = (
        (patient.user_id, provider_id) if by_patient else (provider_id, patient.user_id)
    )
    body: dict[str, Any] = {
        "conversationId": patient.conversation_id,
        "to": pointer("_User", recipient),
        "patient": pointer("PatientProfile", patient.profile_id),
        "body": text,
        "isRead": False,
    }
    if kind == "parse":
        body["from"] = pointer("_User", sender)
        body["ACL"] = parse_acl(patient)
    return body


async def seed_parse(base_url: str, app_id: str, master_key: str, scale: float) -> Seeded:
    started = time.perf_counter()
    patients, providers = plan(scale)
    async with (
        app_client(base_url, app_id, master_key) as master,
        app_client(base_url, app_id) as anon,
    ):
        await post_each(
            "provider sign-ups", providers, lambda p: sign_up(anon, p, {}), SIGNUP_CONCURRENCY
        )
        await post_each(
            "patient sign-ups", patients, lambda p: sign_up(anon, p, {}), SIGNUP_CONCURRENCY
        )
        profiles = await run_batched(
            master,
            "profiles",
            [
                (
                    "POST",
                    "/classes/PatientProfile",
                    {
                        "user": pointer("_User", p.user_id),
                        "medicalRecordNumber": f"MRN-{i:07d}",
                        "displayName": f"Patient {i}",
                        "isActive": True,
                        "ACL": {p.user_id: {"read": True, "write": True}},
                    },
                )
                for i, p in enumerate(patients)
            ],
        )
        for patient, reply in zip(patients, profiles, strict=True):
            patient.profile_id = reply["objectId"]
        roles = await run_batched(
            master,
            "care-team roles",
            [
                (
                    "POST",
                    "/roles",
                    {
                        "name": team(p.profile_id),
                        "ACL": {p.user_id: {"read": True}},
                        "users": {
                            "__op": "AddRelation",
                            "objects": [pointer("_User", providers[p.provider].user_id)],
                        },
                    },
                )
                for p in patients
            ],
        )

        await run_batched(
            master,
            "profile care teams",
            [
                (
                    "PUT",
                    f"/classes/PatientProfile/{p.profile_id}",
                    {
                        "careTeam": pointer("_Role", role["objectId"]),
                        "ACL": parse_acl(p),
                    },
                )
                for p, role in zip(patients, roles, strict=True)
            ],
        )
        await run_batched(
            master,
            "assessments",
            [
                (
                    "POST",
                    "/classes/IntakeAssessment",
                    {
                        "patient": pointer("PatientProfile", p.profile_id),
                        "assessor": pointer("_User", providers[p.provider].user_id),
                        **assessment_fields(i, k),
                        "ACL": parse_acl(p, patient_writes=False),
                    },
                )
                for i, p in enumerate(patients)
                for k in range(ASSESSMENTS_PER_PATIENT)
            ],
        )
        calls: list[Call] = []
        for p in patients:
            provider = providers[p.provider].user_id
            for by_patient, is_read, text in message_turns(p):
                body = new_message("parse", p, provider, by_patient=by_patient, text=text)
                calls.append(("POST", "/classes/Message", body | {"isRead": is_read}))
        await run_batched(master, "messages", calls)
    return Seeded(
        "parse",
        scale,
        patients,
        providers,
        time.perf_counter() - started,
        {
            "assessments": len(patients) * ASSESSMENTS_PER_PATIENT,
            "messages": len(calls),
        },
    )


async def check_visibility(
    base_url: str, app_id: str, seeded: Seeded, sample: int = 5
) -> list[str]:
    """Before any load: each sampled patient sees exactly their own rows, each provider only
    their own patients'. Unfiltered queries, so only the server's access control restricts them."""
    problems: list[str] = []
    async with app_client(base_url, app_id) as client:
        for patient in seeded.patients[:: max(1, len(seeded.patients) // sample)][:sample]:
            headers = {"X-Parse-Session-Token": patient.token}
            for cls, want in (
                ("IntakeAssessment", ASSESSMENTS_PER_PATIENT),
                ("Message", MESSAGES_PER_PATIENT),
                ("PatientProfile", 1),
            ):
                response = await send(
                    client,
                    "GET",
                    f"/parse/classes/{cls}",
                    params={"limit": "1000"},
                    headers=headers,
                )
                rows = response.json().get("results", []) if response.status_code == 200 else None
                if rows is None:
                    problems.append(
                        f"{seeded.server} {patient.username} {cls}: "
                        f"HTTP {response.status_code} {response.text[:200]}"
                    )
                    continue
                owners = (
                    {(r.get("patient") or {}).get("objectId") for r in rows}
                    if cls != "PatientProfile"
                    else {r["objectId"] for r in rows}
                )
                if owners != {patient.profile_id} or len(rows) != want:
                    problems.append(
                        f"{seeded.server} {patient.username} {cls}: "
                        f"{len(rows)} rows of {sorted(o or '' for o in owners)[:3]}"
                    )
        provider = seeded.providers[0]
        mine = {p.profile_id for p in seeded.patients if seeded.provider_of(p) is provider}
        response = await send(
            client,
            "GET",
            "/parse/classes/PatientProfile",
            params={"limit": "1000"},
            headers={"X-Parse-Session-Token": provider.token},
        )
        seen = (
            {r["objectId"] for r in response.json().get("results", [])}
            if response.status_code == 200
            else set()
        )
        if seen != mine:
            problems.append(
                f"{seeded.server} {provider.username} PatientProfile: "
                f"{len(seen)} rows, expected {len(mine)}"
            )
    return problems
