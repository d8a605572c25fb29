"""The access matrix through GraphQL: the same caller gets the same answer as through REST.

Reuses (through this package's conftest) the REST matrix's world (users, care team, records for
patients A and B) and tables, and asks each cell through ``/graphql`` and REST side by side.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.graphql.support import GraphQLClient, error_code
from tests.security.test_access_matrix import CALLERS, PHI_CLASSES, UPDATE_A, VISIBLE, World

OUTCOME = {None: "ok", 101: "nf", 119: "deny", 142: "bad", 209: "deny"}


def gql(w: World, caller: str, query: str, variables: dict[str, Any] | None = None) -> Any:
    client = GraphQLClient(w.live)
    return client.post(query, variables, token=w.tokens.get(caller), master=caller == "master")


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
        f"mutation($id: ID!, $f: {cls}Input!) {{ update{cls}(objectId: $id, fields: $f) "
        "{ objectId updatedAt } }",
        {"id": world.records[(cls, "A")], "f": fields},
    )
    assert answer.status_code == 200, answer.text
    assert OUTCOME.get(error_code(answer), "other") == UPDATE_A[cls][caller], answer.text
