"""The access matrix through GraphQL: the same caller gets the same answer as through REST.

Reuses (through this package's conftest) the REST matrix's world (users, care team, records for
patients A and B) and tables, and asks each cell through ``/graphql`` and REST side by side:
through Parse Server's fields (``patientProfiles`` connection, ``patientProfile(id)``,
``updatePatientProfile(input:)``) and through the deprecated ``find<Class>``/``get<Class>``.
"""

from __future__ import annotations

from typing import Any

import pytest

from mindharbor.api.graphql.ids import to_global_id
from tests.graphql.support import GraphQLClient, error_code
from tests.security.test_access_matrix import CALLERS, PHI_CLASSES, UPDATE_A, VISIBLE, World

OUTCOME = {None: "ok", 101: "nf", 119: "deny", 142: "bad", 209: "deny"}


def gql(w: World, caller: str, query: str, variables: dict[str, Any] | None = None) -> Any:
    client = GraphQLClient(w.live)
    return client.post(query, variables, token=w.tokens.get(caller), master=caller == "master")


def lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def rest_outcome(response: Any) -> str:
    if response.status_code in (200, 201):
        return "ok"
    return OUTCOME.get(response.json().get("code"), "other")


@pytest.mark.parametrize("cls", PHI_CLASSES)
@pytest.mark.parametrize("caller", CALLERS)
def test_find_and_get_match_rest(world: World, cls: str, caller: str) -> None:
    rest = world.call(caller, "GET", f"/classes/{cls}", params={"count": "1", "limit": "1000"})
    answer = gql(world, caller, f"{{ find{cls}(limit: 1000) {{ count results {{ objectId }} }} }}")
    assert answer.status_code == 200, answer.text
    if VISIBLE[cls][caller] is None:
        assert rest_outcome(rest) == "deny"
        assert OUTCOME.get(error_code(answer)) == "deny", answer.text
        assert answer.json()["data"] == {f"find{cls}": None}
    else:
        found = answer.json()["data"][f"find{cls}"]
        assert {r["objectId"] for r in found["results"]} == {
            r["objectId"] for r in rest.json()["results"]
        }
        assert found["count"] == rest.json()["count"]
    for label in ("A", "B"):
        object_id = world.records[(cls, label)]
        by_rest = world.call(caller, "GET", f"/classes/{cls}/{object_id}")
        by_gql = gql(world, caller, f'{{ get{cls}(objectId: "{object_id}") {{ objectId }} }}')
        assert OUTCOME.get(error_code(by_gql), "other") == rest_outcome(by_rest), by_gql.text
        expected = VISIBLE[cls][caller]
        assert rest_outcome(by_rest) == (
            "ok" if expected and label in expected else ("deny" if expected is None else "nf")
        )


@pytest.mark.parametrize("cls", PHI_CLASSES)
@pytest.mark.parametrize("caller", CALLERS)
def test_parse_shaped_find_and_get_match_rest(world: World, cls: str, caller: str) -> None:
    single, plural = lower_first(cls), lower_first(cls) + "s"
    rest = world.call(caller, "GET", f"/classes/{cls}", params={"count": "1", "limit": "1000"})
    answer = gql(
        world, caller, f"{{ {plural}(first: 1000) {{ count edges {{ node {{ id objectId }} }} }} }}"
    )
    assert answer.status_code == 200, answer.text
    if VISIBLE[cls][caller] is None:
        assert OUTCOME.get(error_code(answer)) == "deny", answer.text
        assert answer.json()["data"] is None  # the connection is non-null, as in Parse
    else:
        found = answer.json()["data"][plural]
        nodes = [e["node"] for e in found["edges"]]
        assert {n["objectId"] for n in nodes} == {r["objectId"] for r in rest.json()["results"]}
        assert all(n["id"] == to_global_id(cls, n["objectId"]) for n in nodes)
        assert found["count"] == rest.json()["count"]
    for label in ("A", "B"):
        object_id = world.records[(cls, label)]
        by_rest = world.call(caller, "GET", f"/classes/{cls}/{object_id}")
        for given in (object_id, to_global_id(cls, object_id)):
            by_gql = gql(world, caller, f'{{ {single}(id: "{given}") {{ objectId }} }}')
            assert OUTCOME.get(error_code(by_gql), "other") == rest_outcome(by_rest), by_gql.text


def test_patient_cannot_read_another_patients_records(world: World) -> None:
    for cls in PHI_CLASSES:
        b_record = world.records[(cls, "B")]
        answer = gql(world, "patientA", f'{{ get{cls}(objectId: "{b_record}") {{ objectId }} }}')
        assert error_code(answer) == 101, answer.text
        assert answer.json()["data"] == {f"get{cls}": None}
        found = gql(world, "patientA", f"{{ find{cls}(limit: 1000) {{ results {{ objectId }} }} }}")
        ids = {r["objectId"] for r in found.json()["data"][f"find{cls}"]["results"]}
        assert b_record not in ids
    # Nor through a pointer: B's message's patient is never resolved for A (A cannot see it).
    found = gql(
        world,
        "patientA",
        "{ findMessage(limit: 1000) { results { objectId patient { objectId displayName } } } }",
    )
    patients = {
        (r["patient"] or {}).get("objectId") for r in found.json()["data"]["findMessage"]["results"]
    }
    assert world.patients["B"] not in patients


@pytest.mark.parametrize("cls", PHI_CLASSES)
@pytest.mark.parametrize("caller", CALLERS)
def test_update_matches_rest(world: World, cls: str, caller: str) -> None:
    fields = {
        "PatientProfile": {"preferences": {"gql": caller}},
        "IntakeAssessment": {"recommendations": f"gql {caller}"},
        "CrisisInterventionLog": {"outcome": f"gql {caller}"},
        "Message": {"isRead": True},
        "Appointment": {"reason": f"gql {caller}"},
    }[cls]
    answer = gql(
        world,
        caller,
        f"mutation($id: ID!, $f: Update{cls}FieldsInput) "
        f"{{ update{cls}(input: {{id: $id, fields: $f}}) {{ {lower_first(cls)} "
        "{ objectId updatedAt } } }",
        {"id": world.records[(cls, "A")], "f": fields},
    )
    assert answer.status_code == 200, answer.text
    assert OUTCOME.get(error_code(answer), "other") == UPDATE_A[cls][caller], answer.text


def test_relay_ids_and_sub_queries_do_not_cross_patients(world: World) -> None:
    """``node`` and ``have`` are reads like any other: patient A reaches nothing of B's."""
    for cls in PHI_CLASSES:
        b_record = to_global_id(cls, world.records[(cls, "B")])
        answer = gql(world, "patientA", f'{{ node(id: "{b_record}") {{ id }} }}')
        assert error_code(answer) == 101, answer.text
        assert answer.json()["data"] == {"node": None}
    b_user = world.api.get(f"/classes/PatientProfile/{world.patients['B']}", master=True).json()
    by_owner = gql(
        world,
        "patientA",
        "query($u: ID!) { intakeAssessments(where: {patient: {have: {user: {have: "
        "{objectId: {equalTo: $u}}}}}}) { count edges { node { objectId } } } }",
        {"u": b_user["user"]["objectId"]},
    )
    assert by_owner.json()["data"]["intakeAssessments"] == {"count": 0, "edges": []}


def test_parse_shaped_reads_are_audited_like_rest(world: World) -> None:
    provider = world.users["providerOn"]
    where = {"actor": {"__type": "Pointer", "className": "_User", "objectId": provider}}
    where["action"] = "phi.read"

    def reads() -> list[dict[str, Any]]:
        found = world.api.get(
            "/classes/AuditLog", params={"where": where, "order": "createdAt"}, master=True
        )
        return list(found.json()["results"])

    before = len(reads())
    answer = gql(
        world,
        "providerOn",
        "{ intakeAssessments(first: 1000) { count edges { node { objectId "
        "patient { objectId } } } } }",
    )
    found = answer.json()["data"]["intakeAssessments"]
    ids = sorted(e["node"]["objectId"] for e in found["edges"])
    assert ids, answer.text
    after = reads()
    assert len(after) == before + 1
    meta = after[-1]["metadata"]
    assert sorted(meta["ids"]["IntakeAssessment"]) == ids
    assert set(meta["ids"]["PatientProfile"]) == {
        e["node"]["patient"]["objectId"] for e in found["edges"]
    }
    assert meta["counts"] == {"IntakeAssessment": found["count"]}
