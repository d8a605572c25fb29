"""The access matrix: every PHI class x operation x caller, asserted over HTTP on both backends.

Callers: anonymous, patient A, patient B, a provider on A's care team, a provider not on it, an
admin, a compliance officer, the master key, and two personas from issue 19: ``adminCrafted``, an
admin who tried to make himself an ``emergency_<A>`` / ``careTeam_<A>`` role (refused, and a
stored one from an older version confers nothing), and ``providerFormer``, a provider who was on
A's care team, messaged with A, and was taken off it (he keeps only the text he sent). Records
exist for patients A and B. The tables below are the specification; each cell is checked by a
real request; the two issue-19 personas are re-checked through /batch, GraphQL and LiveQuery.

Legend for single-object operations: "ok" succeeds; "nf" answers 101 (exactly as for a missing
object: existence is never revealed); "deny" answers 119 (the class or the change is closed to the
caller); "bad" answers 142 (a clinical rule refuses it).
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mindharbor.security.auth import Auth
from tests.graphql.support import GraphQLClient, error_code
from tests.live_query.wsclient import session_client
from tests.support import LiveServer, ParseClient, live_server, make_settings, open_store, pointer

# fmt: off
CALLERS = ("anon", "patientA", "patientB", "providerOn", "providerOff", "admin", "compliance",
           "master", "adminCrafted", "providerFormer")
PHI_CLASSES = ("PatientProfile", "IntakeAssessment", "CrisisInterventionLog", "Message",
               "Appointment")
CLINICAL = ("IntakeAssessment", "CrisisInterventionLog", "Message", "Appointment")

# find / count / get: whose records the caller sees (None: the class is closed to it, 119).
#                      anon  patientA patientB providerOn providerOff admin       compliance master
#                      adminCrafted providerFormer
VISIBLE: dict[str, dict[str, set[str] | None]] = {
    "PatientProfile": dict(zip(CALLERS, (None, {"A"}, {"B"}, {"A"}, set(), {"A", "B"}, set(),
                                         {"A", "B"}, {"A", "B"}, set()), strict=True)),
    **{cls: dict(zip(CALLERS, (None, {"A"}, {"B"}, {"A"}, set(), set(), set(), {"A", "B"},
                               set(), set()), strict=True)) for cls in CLINICAL},
}

# update of patient A's record (a harmless field).
#              anon    patientA patientB providerOn providerOff admin compliance master
UPDATE_A: dict[str, dict[str, str]] = {
    "PatientProfile":        dict(zip(CALLERS, ("deny", "ok", "nf", "ok", "nf", "ok", "nf", "ok",
                                                "ok", "nf"), strict=True)),
    # A published assessment is never changed in place, not even by the master key: amend it.
    "IntakeAssessment":      dict(zip(CALLERS, ("deny", "nf", "nf", "deny", "nf", "nf", "nf",
                                                "deny", "nf", "nf"), strict=True)),
    "CrisisInterventionLog": dict(zip(CALLERS, ("deny", "nf", "nf", "ok", "nf", "nf", "nf", "ok",
                                                "nf", "nf"), strict=True)),
    # Messages are written by their sender and recipient only (here providerOn -> patientA), and
    # a read receipt (the change tried here) only by the recipient.
    "Message":               dict(zip(CALLERS, ("deny", "ok", "nf", "deny", "nf", "nf", "nf",
                                                "ok", "nf", "nf"), strict=True)),
    "Appointment":           dict(zip(CALLERS, ("deny", "nf", "nf", "ok", "nf", "nf", "nf", "ok",
                                                "nf", "nf"), strict=True)),
}
# delete: clinical records are never deleted through the API (they are amended, cancelled or
# marked entered-in-error; retention purges run as the server), and only an admin closes a
# patient's chart.
DELETE: dict[str, dict[str, str]] = {
    "PatientProfile": dict(zip(CALLERS, ("deny", "deny", "deny", "deny", "deny", "ok", "deny",
                                         "ok", "ok", "deny"), strict=True)),
    **{cls: dict(zip(CALLERS, ("deny",) * 7 + ("ok", "deny", "deny"), strict=True))
       for cls in CLINICAL},
}

# create a record about patient A (PatientProfile: a profile for some other new account).
# An admin sees A's profile but is no party to A's care, so the messaging rule refuses (142).
#              anon    patientA patientB providerOn providerOff admin  compliance master
CREATE_FOR_A: dict[str, dict[str, str]] = {
    "PatientProfile":        dict(zip(CALLERS, ("deny", "deny", "deny", "deny", "deny", "ok",
                                                "deny", "ok", "ok", "deny"), strict=True)),
    "IntakeAssessment":      dict(zip(CALLERS, ("deny", "deny", "nf", "ok", "nf", "deny", "nf",
                                                "ok", "deny", "nf"), strict=True)),
    "CrisisInterventionLog": dict(zip(CALLERS, ("deny", "deny", "nf", "ok", "nf", "deny", "nf",
                                                "ok", "deny", "nf"), strict=True)),
    "Message":               dict(zip(CALLERS, ("deny", "ok", "nf", "ok", "nf", "bad", "nf",
                                                "ok", "bad", "nf"), strict=True)),
    "Appointment":           dict(zip(CALLERS, ("deny", "deny", "nf", "ok", "nf", "deny", "nf",
                                                "ok", "deny", "nf"), strict=True)),
}
AUDIT_READ = dict(zip(CALLERS, (None, None, None, None, None, True, True, True, True, None),
                      strict=True))
# What each issue-19 persona keeps: the former provider, the text of the message he sent A.
FORMER_OWN = {"adminCrafted": set[str](), "providerFormer": {"sent"}}
# fmt: on

PASSWORD = "a long enough passphrase"
# Each appointment the fixtures book gets an hour of its own: a provider is never
# double-booked (domain/appointments.py).
_SLOTS = itertools.count()


def _slot(hours: int) -> dict[str, str]:
    at = datetime(2026, 1, 5, 10, tzinfo=UTC) + timedelta(hours=hours)
    return {"__type": "Date", "iso": at.strftime("%Y-%m-%dT%H:%M:%S.000Z")}


@dataclass
class World:
    live: LiveServer
    api: ParseClient
    tokens: dict[str, str | None] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)
    patients: dict[str, str] = field(default_factory=dict)  # "A"/"B" -> PatientProfile id
    records: dict[tuple[str, str], str] = field(default_factory=dict)  # (class, A/B) -> id
    former: dict[str, str] = field(default_factory=dict)  # providerFormer's "sent"/"received"

    def call(self, caller: str, method: str, path: str, **kw: Any) -> Any:
        headers = dict(kw.pop("headers", {}) or {})
        token = self.tokens.get(caller)
        if token:
            headers["X-Parse-Session-Token"] = token
        return self.api.request(method, path, master=caller == "master", headers=headers, **kw)


def _user(api: ParseClient, name: str, role: str) -> str:
    response = api.post(
        "/users", {"username": name, "password": PASSWORD, "role": role}, master=True
    )
    assert response.status_code == 201, response.text
    return str(response.json()["objectId"])


def _login(api: ParseClient, name: str) -> str:
    response = api.post("/login", {"username": name, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return str(response.json()["sessionToken"])


def _record_body(cls: str, patient_id: str, provider: str, patient_user: str) -> dict[str, Any]:
    patient = pointer("PatientProfile", patient_id)
    now = {"__type": "Date", "iso": "2026-01-05T10:00:00.000Z"}
    return {
        "IntakeAssessment": {
            "patient": patient,
            "assessor": pointer("_User", provider),
            "assessmentDate": now,
            "details": "intake",
            "status": "final",
        },
        "CrisisInterventionLog": {"patient": patient, "interventionDate": now, "details": "call"},
        "Message": {
            "patient": patient,
            "conversationId": f"c-{patient_id}",
            "from": pointer("_User", provider),
            "to": pointer("_User", patient_user),
            "body": "hello",
            "isRead": False,
        },
        "Appointment": {
            "patient": patient,
            "provider": pointer("_User", provider),
            "startAt": _slot(hour := 2 * next(_SLOTS)),
            "endAt": _slot(hour + 1),
            "status": "scheduled",
        },
    }[cls]


@pytest.fixture(scope="module")
def world(
    backend_url: str, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    settings = make_settings(
        backend_url,
        Path(tmp_path_factory.mktemp("matrix")),
        mfa_required_roles="",
        login_rate_per_ip=10_000,
    )
    with live_server(settings, backend) as live:
        api = live.client()
        w = World(live, api)
        tag = uuid.uuid4().hex[:6]
        roles = {
            "patientA": "patient",
            "patientB": "patient",
            "providerOn": "provider",
            "providerOff": "provider",
            "admin": "admin",
            "compliance": "compliance",
            "adminCrafted": "admin",
            "providerFormer": "provider",
        }
        for caller, role in roles.items():
            w.users[caller] = _user(api, f"{caller}_{tag}", role)
            w.tokens[caller] = _login(api, f"{caller}_{tag}")
        w.tokens["anon"] = None
        for label, caller in (("A", "patientA"), ("B", "patientB")):
            w.patients[label] = api.create(
                "PatientProfile",
                {
                    "user": pointer("_User", w.users[caller]),
                    "medicalRecordNumber": f"{label}-{tag}",
                    "displayName": f"Patient {label}",
                    "isActive": True,
                },
            )
        assigned = w.call(
            "admin",
            "POST",
            "/functions/assignProvider",
            json={"patientId": w.patients["A"], "providerId": w.users["providerOn"]},
        )
        assert assigned.status_code == 200, assigned.text
        for cls in PHI_CLASSES[1:]:
            for label, caller in (("A", "patientA"), ("B", "patientB")):
                body = _record_body(cls, w.patients[label], w.users["providerOn"], w.users[caller])
                if label == "B":
                    body = _record_body(
                        cls, w.patients["B"], w.users["providerOff"], w.users[caller]
                    )
                    if cls == "Message":  # B's care team is empty: a message from B to itself
                        body["from"] = body["to"]
                w.records[(cls, label)] = api.create(cls, body)
        for cls in PHI_CLASSES[1:]:
            assert w.records[(cls, "A")] and w.records[(cls, "B")]
        w.records[("PatientProfile", "A")] = w.patients["A"]
        w.records[("PatientProfile", "B")] = w.patients["B"]
        _craft_roles(w)
        _former_provider(w)
        yield w


def _craft_roles(w: World) -> None:
    """adminCrafted tries to make himself A's emergency or care-team role (refused), and holds a
    stored ``emergency_<A>`` role as an older version would have let him make."""
    me = pointer("_User", w.users["adminCrafted"])
    for name in (f"emergency_{w.patients['A']}", f"careTeam_{w.patients['A']}"):
        crafted = w.call(
            "adminCrafted",
            "POST",
            "/roles",
            json={
                "name": name,
                "ACL": {"role:admin": {"read": True, "write": True}},
                "users": {"__op": "AddRelation", "objects": [me]},
            },
        )
        assert _outcome(crafted) == "deny", crafted.text

    async def store() -> None:
        async with open_store(w.live.settings) as db, db.unit_of_work(Auth.system()) as repo:
            await repo.create(
                "_Role",
                {
                    "name": f"emergency_{w.patients['A']}",
                    "ACL": {"role:admin": {"read": True, "write": True}},
                    "users": {"__op": "AddRelation", "objects": [me]},
                },
            )

    asyncio.run(store())


def _former_provider(w: World) -> None:
    """providerFormer joins A's care team, exchanges a message each way with A, and leaves."""
    args = {"patientId": w.patients["A"], "providerId": w.users["providerFormer"]}
    assert _outcome(w.call("admin", "POST", "/functions/assignProvider", json=args)) == "ok"
    for key, sender, recipient in (
        ("sent", "providerFormer", "patientA"),
        ("received", "patientA", "providerFormer"),
    ):
        body = {
            "patient": pointer("PatientProfile", w.patients["A"]),
            "conversationId": f"former-{w.patients['A']}",
            "to": pointer("_User", w.users[recipient]),
            "body": f"{key} text",
        }
        made = w.call(sender, "POST", "/classes/Message", json=body)
        assert made.status_code == 201, made.text
        w.former[key] = made.json()["objectId"]
    assert _outcome(w.call("admin", "POST", "/functions/unassignProvider", json=args)) == "ok"


def _owner_labels(w: World, cls: str, results: list[dict[str, Any]]) -> set[str]:
    ids = {r["objectId"] for r in results}
    return {label for label in ("A", "B") if w.records[(cls, label)] in ids}


def _outcome(response: Any) -> str:
    if response.status_code in (200, 201):
        return "ok"
    code = response.json().get("code")
    return {101: "nf", 119: "deny", 142: "bad", 209: "deny"}.get(code, f"code {code}")


@pytest.mark.parametrize("cls", PHI_CLASSES)
@pytest.mark.parametrize("caller", CALLERS)
def test_find_count_get(world: World, cls: str, caller: str) -> None:
    expected = VISIBLE[cls][caller]
    found = world.call(caller, "GET", f"/classes/{cls}", params={"count": "1", "limit": "1000"})
    if expected is None:
        assert _outcome(found) == "deny", found.text
        return
    assert found.status_code == 200, found.text
    seen = _owner_labels(world, cls, found.json()["results"])
    assert seen == expected
    # The count counts only what the caller may see (other tests' rows may add to it).
    assert found.json()["count"] >= len(expected)
    if expected == set() and cls != "PatientProfile":
        own = FORMER_OWN.get(caller, set()) if cls == "Message" else set()
        assert found.json()["count"] == len(own)
    for label in ("A", "B"):
        got = world.call(caller, "GET", f"/classes/{cls}/{world.records[(cls, label)]}")
        assert _outcome(got) == ("ok" if label in expected else "nf"), (label, got.text)


@pytest.mark.parametrize("cls", PHI_CLASSES)
@pytest.mark.parametrize("caller", CALLERS)
def test_update(world: World, cls: str, caller: str) -> None:
    body = {
        "PatientProfile": {"preferences": {"k": caller}},
        "IntakeAssessment": {"recommendations": caller},
        "CrisisInterventionLog": {"outcome": caller},
        "Message": {"isRead": True},
        "Appointment": {"reason": caller},
    }[cls]
    response = world.call(caller, "PUT", f"/classes/{cls}/{world.records[(cls, 'A')]}", json=body)
    assert _outcome(response) == UPDATE_A[cls][caller], response.text


@pytest.mark.parametrize("cls", PHI_CLASSES)
@pytest.mark.parametrize("caller", CALLERS)
def test_create_about_patient_a(world: World, cls: str, caller: str) -> None:
    w = world
    if cls == "PatientProfile":
        newcomer = _user(w.api, f"new_{uuid.uuid4().hex[:8]}", "patient")
        body: dict[str, Any] = {
            "user": pointer("_User", newcomer),
            "isActive": True,
            "medicalRecordNumber": uuid.uuid4().hex,
            "displayName": "N",
        }
    else:
        sender = w.users.get(caller, w.users["providerOn"])
        recipient = w.users["patientA"] if caller != "patientA" else w.users["providerOn"]
        body = _record_body(cls, w.patients["A"], w.users["providerOn"], w.users["patientA"])
        if cls == "Message":
            body.pop("from")
            body["to"] = pointer("_User", recipient)
            if caller == "master":
                body["from"] = pointer("_User", sender)
        if cls == "IntakeAssessment" and caller != "master":
            del body["assessor"], body["status"]  # server-set: the session's user, a draft
    response = w.call(caller, "POST", f"/classes/{cls}", json=body)
    assert _outcome(response) == CREATE_FOR_A[cls][caller], response.text


@pytest.mark.parametrize("cls", PHI_CLASSES)
@pytest.mark.parametrize("caller", CALLERS)
def test_delete(world: World, cls: str, caller: str) -> None:
    w = world
    if cls == "PatientProfile":
        owner = _user(w.api, f"del_{uuid.uuid4().hex[:8]}", "patient")
        target = w.api.create(
            cls,
            {
                "user": pointer("_User", owner),
                "isActive": True,
                "medicalRecordNumber": uuid.uuid4().hex,
                "displayName": "D",
            },
        )
    else:
        target = w.api.create(
            cls, _record_body(cls, w.patients["A"], w.users["providerOn"], w.users["patientA"])
        )
    expected = DELETE[cls][caller]
    response = w.call(caller, "DELETE", f"/classes/{cls}/{target}")
    assert _outcome(response) == expected, response.text
    still_there = w.api.get(f"/classes/{cls}/{target}", master=True).status_code == 200
    assert still_there == (expected != "ok")


@pytest.mark.parametrize("caller", CALLERS)
def test_include_never_reveals_an_unreadable_object(world: World, caller: str) -> None:
    if VISIBLE["Message"][caller] is None:
        return
    found = world.call(
        caller, "GET", "/classes/Message", params={"include": "patient,to,from", "limit": "1000"}
    )
    for message in found.json()["results"]:
        patient = message["patient"]
        if patient.get("__type") == "Object":
            label = "A" if patient["objectId"] == world.patients["A"] else "B"
            assert label in (VISIBLE["PatientProfile"][caller] or set())
        for party in ("to", "from"):
            user = message[party]
            if user.get("__type") == "Object":
                # _User rows are private to their owner (and admins).
                assert caller in ("master", "admin") or user["objectId"] == world.users[caller]
                if caller not in ("master",) and user["objectId"] != world.users.get(caller):
                    assert "email" not in user


@pytest.mark.parametrize("caller", CALLERS)
def test_subqueries_run_with_the_callers_rights(world: World, caller: str) -> None:
    w = world
    if VISIBLE["Message"][caller] is None:
        return
    a_mrn = {"medicalRecordNumber": {"$regex": "^A-"}}
    queries = {
        "inQuery": {"patient": {"$inQuery": {"className": "PatientProfile", "where": a_mrn}}},
        "select": {
            "conversationId": {
                "$select": {"query": {"className": "Message", "where": {}}, "key": "conversationId"}
            }
        },
    }
    can_see_a = "A" in (VISIBLE["PatientProfile"][caller] or set()) and "A" in (
        VISIBLE["Message"][caller] or set()
    )
    got = w.call(
        caller, "GET", "/classes/Message", params={"where": queries["inQuery"], "limit": "1000"}
    )
    assert got.status_code == 200, got.text
    assert ("A" in _owner_labels(w, "Message", got.json()["results"])) == can_see_a
    assert "B" not in _owner_labels(w, "Message", got.json()["results"])
    got = w.call(
        caller, "GET", "/classes/Message", params={"where": queries["select"], "limit": "1000"}
    )
    assert _owner_labels(w, "Message", got.json()["results"]) == VISIBLE["Message"][caller]
    # $relatedTo through A's care-team role: only readers of that role see its members.
    role = w.api.get(f"/classes/PatientProfile/{w.patients['A']}", master=True).json()["careTeam"]
    related = w.call(
        caller,
        "GET",
        "/classes/_User",
        params={"where": {"$relatedTo": {"object": role, "key": "users"}}},
    )
    if caller == "anon":
        assert _outcome(related) == "deny"
        return
    members = {u["objectId"] for u in related.json()["results"]}
    expected = {w.users["providerOn"]} if caller in ("admin", "master", "adminCrafted") else set()
    assert members == expected


@pytest.mark.parametrize("caller", CALLERS)
def test_audit_log_is_for_compliance_and_admin_and_append_only(world: World, caller: str) -> None:
    found = world.call(caller, "GET", "/classes/AuditLog", params={"limit": "5"})
    if AUDIT_READ[caller] is None:
        assert _outcome(found) == "deny", found.text
    else:
        assert found.status_code == 200 and found.json()["results"], found.text
    forged = world.call(
        caller,
        "POST",
        "/classes/AuditLog",
        json={"entityType": "X", "entityId": "y", "action": "forged", "summary": "nope"},
    )
    assert _outcome(forged) == "deny", forged.text
    entry = world.api.get("/classes/AuditLog", params={"limit": "1"}, master=True).json()[
        "results"
    ][0]["objectId"]
    edit = world.call(caller, "PUT", f"/classes/AuditLog/{entry}", json={"summary": "x"})
    remove = world.call(caller, "DELETE", f"/classes/AuditLog/{entry}")
    assert _outcome(edit) in ("deny", "nf") and _outcome(remove) in ("deny", "nf")
    assert world.api.get(f"/classes/AuditLog/{entry}", master=True).status_code == 200


def test_batch_entries_are_checked_one_by_one(world: World) -> None:
    w = world
    reply = w.call(
        "patientB",
        "POST",
        "/batch",
        json={
            "requests": [
                {"method": "GET", "path": f"/parse/classes/Message/{w.records[('Message', 'A')]}"},
                {"method": "GET", "path": f"/parse/classes/Message/{w.records[('Message', 'B')]}"},
                {
                    "method": "PUT",
                    "path": f"/parse/classes/PatientProfile/{w.patients['A']}",
                    "body": {"preferences": {"stolen": True}},
                },
            ]
        },
    )
    assert reply.status_code == 200, reply.text
    first, second, third = reply.json()
    assert first == {"error": {"code": 101, "error": "Object not found."}}
    assert second["success"]["objectId"] == w.records[("Message", "B")]
    assert third["error"]["code"] == 101


def test_protected_and_internal_fields_cannot_be_probed(world: World) -> None:
    w = world
    for where in (
        {"email": {"$regex": "^a"}},
        {"email": {"$gt": "m"}},
        {"$or": [{"email": "x@y.z"}, {"username": "x"}]},
        {"authData.oidc.id": "x"},
        {"emailVerified": True},
    ):
        got = w.call("providerOn", "GET", "/classes/_User", params={"where": where})
        assert _outcome(got) == "deny", (where, got.text)
    got = w.call("providerOn", "GET", "/classes/_User", params={"order": "email"})
    assert _outcome(got) == "deny"
    for where in (
        {"_rperm": "*"},
        {"_hashed_password": {"$exists": True}},
        {"_session_token_hash": "x"},
    ):
        got = w.call("providerOn", "GET", "/classes/_User", params={"where": where})
        assert got.json()["code"] == 105, got.text
    assert (
        w.call(
            "providerOn", "GET", "/classes/Message", params={"where": {"ACL": {"$exists": True}}}
        ).json()["code"]
        == 102
    )


def test_server_owned_fields_cannot_be_set(world: World) -> None:
    w = world
    me = w.users["patientA"]
    for body in (
        {"emailVerified": True},
        {"authData": {"oidc": {"id": "x"}}},
        {"_rperm": ["*"]},
        {"_hashed_password": "x"},
    ):
        got = w.call("patientA", "PUT", f"/classes/_User/{me}", json=body)
        assert _outcome(got) in ("deny", "code 105"), (body, got.text)
    session = w.call("patientA", "GET", "/sessions/me").json()
    for body in (
        {"expiresAt": {"__type": "Date", "iso": "2099-01-01T00:00:00.000Z"}},
        {"user": pointer("_User", w.users["admin"])},
    ):
        got = w.call("patientA", "PUT", f"/classes/_Session/{session['objectId']}", json=body)
        assert _outcome(got) == "deny", got.text
    forged_from = w.call(
        "patientA",
        "POST",
        "/classes/Message",
        json={
            **_record_body(
                "Message", w.patients["A"], w.users["providerOn"], w.users["providerOn"]
            ),
            "from": pointer("_User", w.users["providerOn"]),
        },
    )
    assert _outcome(forged_from) == "deny"
    careteam = w.call(
        "providerOn",
        "PUT",
        f"/classes/PatientProfile/{w.patients['A']}",
        json={"careTeam": pointer("_Role", "whatever")},
    )
    assert _outcome(careteam) == "deny"


def test_wider_acl_and_moving_records_between_patients_are_refused(world: World) -> None:
    w = world
    body = _record_body(
        "CrisisInterventionLog", w.patients["A"], w.users["providerOn"], w.users["patientA"]
    )
    public = w.call(
        "providerOn",
        "POST",
        "/classes/CrisisInterventionLog",
        json={**body, "ACL": {"*": {"read": True}}},
    )
    assert _outcome(public) == "deny"
    narrower = w.call(
        "providerOn",
        "POST",
        "/classes/CrisisInterventionLog",
        json={**body, "ACL": {f"role:careTeam_{w.patients['A']}": {"read": True, "write": True}}},
    )
    assert _outcome(narrower) == "ok", narrower.text
    moved = w.call(
        "providerOn",
        "PUT",
        f"/classes/IntakeAssessment/{w.records[('IntakeAssessment', 'A')]}",
        json={"patient": pointer("PatientProfile", w.patients["B"])},
    )
    assert _outcome(moved) == "nf", moved.text  # B does not exist for A's provider
    record = w.api.get(
        f"/classes/IntakeAssessment/{w.records[('IntakeAssessment', 'A')]}", master=True
    ).json()
    assert record["patient"]["objectId"] == w.patients["A"]


def test_care_team_functions_are_admin_only_and_take_effect_at_once(world: World) -> None:
    w = world
    args = {"patientId": w.patients["B"], "providerId": w.users["providerOff"]}
    for caller in ("patientA", "providerOn", "compliance"):
        refused = w.call(caller, "POST", "/functions/assignProvider", json=args)
        assert _outcome(refused) == "deny", refused.text
    b_message = f"/classes/Message/{w.records[('Message', 'B')]}"
    assert _outcome(w.call("providerOff", "GET", b_message)) == "nf"
    assert _outcome(w.call("admin", "POST", "/functions/assignProvider", json=args)) == "ok"
    assert _outcome(w.call("providerOff", "GET", b_message)) == "ok"
    assert _outcome(w.call("admin", "POST", "/functions/unassignProvider", json=args)) == "ok"
    assert _outcome(w.call("providerOff", "GET", b_message)) == "nf"
    actions = {
        e["action"]
        for e in w.api.get(
            "/classes/AuditLog", master=True, params={"where": {"entityId": w.patients["B"]}}
        ).json()["results"]
    }
    assert {"careteam.assign", "careteam.unassign"} <= actions


def test_sessions_me_and_user_rows_are_private(world: World) -> None:
    w = world
    mine = w.call("patientA", "GET", "/sessions/me").json()
    assert mine["user"]["objectId"] == w.users["patientA"]
    sessions = w.call("patientA", "GET", "/sessions").json()["results"]
    assert {s["user"]["objectId"] for s in sessions} == {w.users["patientA"]}
    assert all("sessionToken" not in s for s in sessions)
    assert _outcome(w.call("patientA", "GET", f"/users/{w.users['patientB']}")) == "nf"
    own = w.call("patientA", "GET", f"/users/{w.users['patientA']}").json()
    assert "password" not in own and "_hashed_password" not in own
    seen_by_admin = w.call("admin", "GET", f"/users/{w.users['patientA']}").json()
    assert "authData" not in seen_by_admin


@pytest.mark.anyio
@pytest.mark.parametrize("caller", ["adminCrafted", "providerFormer"])
async def test_issue_19_personas_see_nothing_extra_on_any_face(world: World, caller: str) -> None:
    """The crafted-role admin and the former care-team provider, through /batch, GraphQL and
    LiveQuery: exactly what the tables say, plus the former provider's own sent text."""
    w = world
    own = {w.former[k] for k in FORMER_OWN[caller]}
    paths = [f"/parse/classes/{cls}/{w.records[(cls, 'A')]}" for cls in PHI_CLASSES]
    paths.append(f"/parse/classes/Message/{w.former['received']}")
    reply = w.call(
        caller, "POST", "/batch", json={"requests": [{"method": "GET", "path": p} for p in paths]}
    )
    assert reply.status_code == 200, reply.text
    for path, answer in zip(paths, reply.json(), strict=True):
        cls = path.split("/")[3]
        visible = "A" in (VISIBLE[cls][caller] or set()) and not path.endswith(w.former["received"])
        assert ("success" in answer) == visible, (path, answer)
        if not visible:
            assert answer["error"]["code"] == 101, (path, answer)
    gql = GraphQLClient(w.live)
    token = w.tokens[caller]
    for cls in PHI_CLASSES:
        found = gql.post(
            f"{{ find{cls}(where: {{}}) {{ results {{ objectId }} }} }}", token=token
        ).json()
        assert "errors" not in found, found
        ids = {r["objectId"] for r in found["data"][f"find{cls}"]["results"]}
        labels = {label for label in ("A", "B") if w.records[(cls, label)] in ids}
        assert labels == VISIBLE[cls][caller], (cls, labels)
        if cls == "Message":
            assert w.former["received"] not in ids
            assert own <= ids
        if "A" not in (VISIBLE[cls][caller] or set()):
            got = gql.post(
                f'{{ get{cls}(objectId: "{w.records[(cls, "A")]}") {{ objectId }} }}', token=token
            )
            assert error_code(got) == 101, got.text
    if own:
        sent = w.call(caller, "GET", f"/classes/Message/{w.former['sent']}").json()
        assert sent["body"] == "sent text" and "attachments" not in sent
    live = await session_client(w.live.url, w.live.app_id, token=token)
    try:
        for n, cls in enumerate(CLINICAL, start=1):
            assert (await live.subscribe(n, cls))["op"] == "subscribed"
        for cls in CLINICAL:
            w.api.create(
                cls, _record_body(cls, w.patients["A"], w.users["providerOn"], w.users["patientA"])
            )
        await live.silent(1.0)  # nothing of A's chart is pushed
    finally:
        await live.close()
