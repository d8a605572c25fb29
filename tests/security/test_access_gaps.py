"""Gaps an adversarial review found at the edges of the access model (issue 19), each closed and
re-asserted through REST, /batch, GraphQL and LiveQuery, on SQLite and PostgreSQL.

1. Server-managed role names (``emergency_*``, ``careTeam_*``, the built-in roles) cannot be
   created, renamed, joined or deleted through the API, and a stored ``emergency_*`` role (made
   before the names were reserved) confers nothing: emergency access comes only from grants.
2. A draft marked entered-in-error never reaches the patient, nor does its version snapshot.
10. Listing accounts and refused attempts on PHI leave audit entries.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mindharbor.security.auth import Auth
from tests.domain.clinic import Clinic, clinic
from tests.graphql.support import GraphQLClient, error_code
from tests.live_query.wsclient import session_client
from tests.support import open_store, pointer

pytestmark = pytest.mark.anyio

NOW = {"__type": "Date", "iso": "2031-02-03T10:00:00.000Z"}


@pytest.fixture(scope="module")
def team(
    backend_url: str, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Clinic]:
    data: Path = tmp_path_factory.mktemp("gaps")
    with clinic(backend_url, backend, data, live_query_auth_seconds=60) as c:
        yield c


def _user_pointers(*ids: str) -> list[dict[str, str]]:
    return [pointer("_User", i) for i in ids]


def _assessment(c: Clinic, status: str = "final") -> str:
    return c.api.create(
        "IntakeAssessment",
        {
            "patient": pointer("PatientProfile", c.patient),
            "assessor": pointer("_User", c.users["provider"]),
            "assessmentDate": NOW,
            "details": "intake",
            "status": status,
        },
    )


def _role_id(c: Clinic, name: str) -> str:
    found = c.api.get("/roles", params={"where": {"name": name}}, master=True).json()["results"]
    return str(found[0]["objectId"])


# -- 1. server-managed roles -------------------------------------------------------------------
def test_crafted_emergency_role_is_refused_on_every_face(team: Clinic) -> None:
    c = team
    name = f"emergency_{c.patient}"
    body = {
        "name": name,
        "ACL": {"role:admin": {"read": True, "write": True}},
        "users": {"__op": "AddRelation", "objects": _user_pointers(c.users["admin"])},
    }
    for path in ("/roles", "/classes/_Role"):
        refused = c.api.post(path, body, headers=c.as_("admin"))
        assert refused.status_code == 400 and refused.json()["code"] == 119, refused.text
        # Not even the master key makes one: emergency access comes only from grants.
        refused = c.api.post(path, body, master=True)
        assert refused.json()["code"] == 119, refused.text
    batch = c.api.post(
        "/batch",
        {"requests": [{"method": "POST", "path": "/parse/roles", "body": body}]},
        headers=c.as_("admin"),
    )
    assert batch.json()[0]["error"]["code"] == 119, batch.text
    gql = GraphQLClient(c.api.server)
    answer = gql.post(  # Parse's GraphQL shape
        "mutation($name: String!, $admin: ID!) { createRole(input: {fields: {name: $name,"
        ' ACL: {roles: [{roleName: "admin", read: true, write: true}]},'
        " users: {add: [$admin]}}}) { role { objectId } } }",
        {"name": name, "admin": c.users["admin"]},
        token=c.tokens["admin"],
    )
    assert error_code(answer) == 119, answer.text
    assert c.api.get("/roles", params={"where": {"name": name}}, master=True).json() == {
        "results": []
    }


def test_server_managed_roles_cannot_be_joined_renamed_or_deleted(team: Clinic) -> None:
    c = team
    join_admin = {"users": {"__op": "AddRelation", "objects": _user_pointers(c.users["patient"])}}
    team_role = _role_id(c, f"careTeam_{c.patient}")
    join_team = {"users": {"__op": "AddRelation", "objects": _user_pointers(c.users["admin"])}}
    inherit = {"roles": {"__op": "AddRelation", "objects": [pointer("_Role", team_role)]}}
    cases = [
        (_role_id(c, "admin"), join_admin),
        (team_role, join_team),
        (team_role, inherit),
        (_role_id(c, "provider"), {"ACL": {"*": {"read": True, "write": True}}}),
    ]
    for role_id, change in cases:
        for headers, master in ((c.as_("admin"), False), ({}, True)):
            refused = c.api.put(f"/roles/{role_id}", change, headers=headers, master=master)
            assert refused.json().get("code") == 119, (change, refused.text)
        batch = c.api.post(
            "/batch",
            {"requests": [{"method": "PUT", "path": f"/parse/roles/{role_id}", "body": change}]},
            headers=c.as_("admin"),
        )
        assert batch.json()[0]["error"]["code"] == 119, batch.text
    gql = GraphQLClient(c.api.server)
    answer = gql.post(
        "mutation($id: ID!, $admin: ID!) { updateRole(input: {id: $id,"
        " fields: {users: {add: [$admin]}}}) { role { objectId } } }",
        {"id": team_role, "admin": c.users["admin"]},
        token=c.tokens["admin"],
    )
    assert error_code(answer) == 119, answer.text
    for role_id in (team_role, _role_id(c, "compliance")):
        removed = c.api.delete(f"/roles/{role_id}", headers=c.as_("admin"))
        assert removed.json().get("code") == 119, removed.text
    # A custom role's name cannot be changed to a managed one either.
    custom = c.api.post(
        "/roles",
        {
            "name": f"front_desk_{uuid.uuid4().hex[:6]}",
            "ACL": {"role:admin": {"read": True, "write": True}},
        },
        headers=c.as_("admin"),
    )
    assert custom.status_code == 201, custom.text
    renamed = c.api.put(
        f"/roles/{custom.json()['objectId']}", {"name": "admin"}, headers=c.as_("admin")
    )
    assert renamed.json()["code"] == 119, renamed.text
    # The admin still reads nothing of the patient's chart.
    record = _assessment(c)
    assert (
        c.api.get(f"/classes/IntakeAssessment/{record}", headers=c.as_("admin")).status_code == 404
    )


def test_built_in_roles_change_only_through_audited_functions(team: Clinic) -> None:
    c = team
    args = {"userId": c.users["other"], "role": "compliance"}
    for who in ("patient", "provider", "compliance"):
        refused = c.call(who, "grantRole", **args)
        assert refused.json()["code"] == 119, refused.text
    bad = c.call("admin", "grantRole", userId=c.users["other"], role=f"careTeam_{c.patient}")
    assert bad.json()["code"] == 141, bad.text
    granted = c.call("admin", "grantRole", **args)
    assert granted.status_code == 200 and granted.json()["result"]["changed"], granted.text
    members = c.api.get(
        "/users",
        params={
            "where": {
                "$relatedTo": {
                    "object": pointer("_Role", _role_id(c, "compliance")),
                    "key": "users",
                }
            }
        },
        master=True,
    ).json()["results"]
    assert c.users["other"] in {m["objectId"] for m in members}
    revoked = c.call("admin", "revokeRole", **args)
    assert revoked.status_code == 200 and revoked.json()["result"]["changed"], revoked.text
    own = c.call("admin", "revokeRole", userId=c.users["admin"], role="admin")
    assert own.json()["code"] == 119
    actions = [e["action"] for e in c.entries(entityId=c.users["other"])]
    assert "role.grant" in actions and "role.revoke" in actions


async def _store_crafted_role(c: Clinic, name: str, member: str) -> None:
    """A role as an older version let an admin make it: written by the server itself."""
    settings = c.api.server.settings
    async with open_store(settings) as store, store.unit_of_work(Auth.system()) as repo:
        await repo.create(
            "_Role",
            {
                "name": name,
                "ACL": {"role:admin": {"read": True, "write": True}},
                "users": {"__op": "AddRelation", "objects": _user_pointers(member)},
            },
        )


async def test_a_stored_emergency_role_confers_nothing(team: Clinic) -> None:
    c = team
    record = _assessment(c)
    await _store_crafted_role(c, f"emergency_{c.patient}", c.users["admin"])
    got = c.api.get(f"/classes/IntakeAssessment/{record}", headers=c.as_("admin"))
    assert got.status_code == 404, got.text
    found = c.api.get(
        "/classes/IntakeAssessment", params={"limit": "1000"}, headers=c.as_("admin")
    ).json()["results"]
    assert found == []
    batch = c.api.post(
        "/batch",
        {"requests": [{"method": "GET", "path": f"/parse/classes/IntakeAssessment/{record}"}]},
        headers=c.as_("admin"),
    )
    assert batch.json()[0]["error"]["code"] == 101
    gql = GraphQLClient(c.api.server)
    answer = gql.post(
        f'{{ getIntakeAssessment(objectId: "{record}") {{ objectId }} }}', token=c.tokens["admin"]
    )
    assert error_code(answer) == 101, answer.text
    live = await session_client(c.api.server.url, c.api.server.app_id, token=c.tokens["admin"])
    try:
        answer = await live.subscribe(1, "IntakeAssessment")
        assert answer["op"] == "subscribed", answer
        _assessment(c)
        await live.silent(1.0)
    finally:
        await live.close()


# -- 2. drafts entered in error ------------------------------------------------------------------
async def test_a_draft_marked_entered_in_error_never_reaches_the_patient(team: Clinic) -> None:
    c = team
    live = await session_client(c.api.server.url, c.api.server.app_id, token=c.tokens["patient"])
    try:
        assert (await live.subscribe(1, "IntakeAssessment"))["op"] == "subscribed"
        assert (await live.subscribe(2, "AssessmentVersion"))["op"] == "subscribed"
        draft = c.api.post(
            "/classes/IntakeAssessment",
            {
                "patient": pointer("PatientProfile", c.patient),
                "assessmentDate": NOW,
                "details": "filed in the wrong chart",
            },
            headers=c.as_("provider"),
        )
        assert draft.status_code == 201, draft.text
        draft_id = draft.json()["objectId"]
        marked = c.call(
            "provider", "markAssessmentEnteredInError", assessmentId=draft_id, reason="wrong chart"
        )
        assert marked.status_code == 200, marked.text
        await live.silent(1.0)  # neither the record nor its snapshot is pushed
    finally:
        await live.close()
    got = c.api.get(f"/classes/IntakeAssessment/{draft_id}", headers=c.as_("patient"))
    assert got.status_code == 404, got.text
    where = {"assessment": pointer("IntakeAssessment", draft_id)}
    versions = c.api.get(
        "/classes/AssessmentVersion", params={"where": where}, headers=c.as_("patient")
    ).json()["results"]
    assert versions == []
    batch = c.api.post(
        "/batch",
        {"requests": [{"method": "GET", "path": f"/parse/classes/IntakeAssessment/{draft_id}"}]},
        headers=c.as_("patient"),
    )
    assert batch.json()[0]["error"]["code"] == 101
    gql = GraphQLClient(c.api.server)
    answer = gql.post(
        f'{{ getIntakeAssessment(objectId: "{draft_id}") {{ objectId }} }}',
        token=c.tokens["patient"],
    )
    assert error_code(answer) == 101, answer.text
    # The care team still sees both, and the snapshot is history: nobody can edit it.
    team_view = c.api.get(
        "/classes/AssessmentVersion", params={"where": where}, headers=c.as_("provider")
    ).json()["results"]
    assert len(team_view) == 1 and team_view[0]["snapshot"]["status"] == "draft"
    edit = c.api.put(
        f"/classes/AssessmentVersion/{team_view[0]['objectId']}",
        {"reason": "rewritten"},
        headers=c.as_("provider"),
    )
    assert edit.json()["code"] in (101, 119), edit.text


def test_a_published_assessment_marked_entered_in_error_stays_visible(team: Clinic) -> None:
    c = team
    record = _assessment(c)
    marked = c.call("provider", "markAssessmentEnteredInError", assessmentId=record, reason="dup")
    assert marked.status_code == 200, marked.text
    got = c.api.get(f"/classes/IntakeAssessment/{record}", headers=c.as_("patient"))
    assert got.status_code == 200 and got.json()["status"] == "entered-in-error", got.text
    where = {"assessment": pointer("IntakeAssessment", record)}
    versions = c.api.get(
        "/classes/AssessmentVersion", params={"where": where}, headers=c.as_("patient")
    ).json()["results"]
    assert [v["snapshot"]["status"] for v in versions] == ["final"]


# -- 10. audit gaps ------------------------------------------------------------------------------
def test_listing_accounts_is_audited(team: Clinic) -> None:
    c = team
    listed = c.api.get("/users", params={"limit": "1000"}, headers=c.as_("admin"))
    assert listed.status_code == 200, listed.text
    ids = {u["objectId"] for u in listed.json()["results"]}
    assert c.users["patient"] in ids
    entries = [
        e
        for e in c.entries(actor=pointer("_User", c.users["admin"]), action="phi.read")
        if "_User" in e["metadata"]["ids"]
    ]
    assert entries, "an admin's listing of accounts left no entry"
    assert c.users["patient"] in entries[-1]["metadata"]["ids"]["_User"]
    # Reading one's own account is not a disclosure.
    before = len(c.entries(actor=pointer("_User", c.users["patient"]), action="phi.read"))
    assert c.api.get("/users/me", headers=c.as_("patient")).status_code == 200
    assert len(c.entries(actor=pointer("_User", c.users["patient"]), action="phi.read")) == before


async def test_refused_attempts_on_phi_are_audited(team: Clinic) -> None:
    c = team
    record = _assessment(c)
    assign = {"patientId": c.patient, "providerId": c.users["outsider"]}
    probes = [
        ("other", "GET", f"/classes/IntakeAssessment/{record}", None, 101),
        ("outsider", "PUT", f"/classes/IntakeAssessment/{record}", {"details": "x"}, 101),
        ("patient", "POST", "/functions/assignProvider", assign, 119),
    ]
    for who, method, path, body, code in probes:
        answer = c.api.request(method, path, json=body, headers=c.as_(who))
        assert answer.json()["code"] == code, answer.text
    batch = c.api.post(
        "/batch",
        {"requests": [{"method": "GET", "path": f"/parse/classes/IntakeAssessment/{record}"}]},
        headers=c.as_("outsider"),
    )
    assert batch.json()[0]["error"]["code"] == 101
    anonymous = c.api.get("/classes/CrisisInterventionLog")
    assert anonymous.json()["code"] == 119
    live = await session_client(c.api.server.url, c.api.server.app_id)
    try:
        refused = await live.subscribe(1, "CrisisInterventionLog")
        assert refused["op"] == "error" and refused["code"] == 119, refused
    finally:
        await live.close()
    await asyncio.sleep(0.2)
    denied = c.entries(action="access.denied")

    def actor(entry: dict[str, object]) -> object:
        return (entry.get("actor") or {}).get("objectId")  # type: ignore[union-attr]

    other = [e for e in denied if actor(e) == c.users["other"]]
    assert other and other[-1]["entityId"] == record
    assert other[-1]["entityType"] == "IntakeAssessment"
    assert other[-1]["metadata"]["code"] == 101
    outsider = [e for e in denied if actor(e) == c.users["outsider"]]
    assert len([e for e in outsider if e["entityId"] == record]) >= 2  # REST and batch
    functions = [e for e in denied if e["entityType"] == "function:assignProvider"]
    assert functions and actor(functions[-1]) == c.users["patient"]
    anon = [e for e in denied if actor(e) is None]
    faces = {e["metadata"]["face"] for e in anon if e["entityType"] == "CrisisInterventionLog"}
    assert faces == {"rest", "livequery"}
    for entry in denied:  # the request's context, never a query's values
        assert set(entry["metadata"]) <= {"code", "face", "requestId", "ip", "userAgent"}
