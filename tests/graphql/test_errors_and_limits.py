"""The GraphQL error format (Parse code in ``extensions.code``), authentication through the
REST headers, depth/complexity refusals, and one transaction per request."""

from __future__ import annotations

import uuid

import httpx

from tests.graphql.conftest import MAX_COMPLEXITY, MAX_DEPTH, Gql
from tests.graphql.support import error_code, origin

PUBLIC = {op: {"*": True} for op in ("find", "count", "get", "create", "update", "delete")}


def _class(g: Gql) -> str:
    name = f"GqlNote{uuid.uuid4().hex[:8]}"
    g.api.create_class(
        name,
        {
            "title": {"type": "String", "required": True},
            "next": {"type": "Pointer", "targetClass": name},
        },
        PUBLIC,
    )
    return name


def test_wrong_application_id_is_refused_like_rest(gql: Gql) -> None:
    response = httpx.post(
        origin(gql.live) + "/graphql",
        json={"query": "{ __typename }"},
        headers={"X-Parse-Application-Id": "nope"},
    )
    assert response.status_code == 403
    assert response.json()["errors"][0]["message"] == "unauthorized"


def test_invalid_session_token_is_209(gql: Gql) -> None:
    response = gql.client.post("{ me { objectId } }", token="r:not-a-token")
    assert error_code(response) == 209, response.text


def test_parse_errors_carry_their_code_and_path(gql: Gql) -> None:
    cls = _class(gql)
    response = gql.client.post(f'{{ get{cls}(objectId: "doesNotExist") {{ objectId }} }}')
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {f"get{cls}": None}
    [error] = body["errors"]
    assert error["extensions"]["code"] == 101
    assert error["path"] == [f"get{cls}"]
    assert error["locations"]
    bad_where = gql.client.post(
        f"query($w: JSON) {{ find{cls}(where: $w) {{ count }} }}", {"w": {"title": {"$nope": 1}}}
    )
    rest = gql.api.get(f"/classes/{cls}", params={"where": {"title": {"$nope": 1}}})
    assert error_code(bad_where) == rest.json()["code"] == 102, bad_where.text


def test_syntax_and_validation_errors_are_400_with_code_102(gql: Gql) -> None:
    response = gql.client.post("{ nope ")
    assert response.status_code == 400
    assert error_code(response) == 102
    response = gql.client.post("{ noSuchField }")
    assert response.status_code == 400
    assert error_code(response) == 102
    assert "noSuchField" in response.json()["errors"][0]["message"]


def test_depth_limit_refuses_before_running(gql: Gql) -> None:
    cls = _class(gql)
    nested = "title"
    for _ in range(MAX_DEPTH):
        nested = f"next {{ {nested} }}"
    response = gql.client.post(f"{{ find{cls} {{ results {{ {nested} }} }} }}", master=True)
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == 102
    assert error["extensions"]["limit"] == "depth"
    assert f"exceeds the limit of {MAX_DEPTH}" in error["message"]
    # Introspection is exempt (GraphiQL's own schema query is deep); it needs the master key.
    ok = gql.client.post(
        "{ __schema { types { name fields { type { ofType { ofType { name } } } } } } }",
        master=True,
    )
    assert ok.status_code == 200, ok.text


def test_complexity_limit_counts_aliases(gql: Gql) -> None:
    cls = _class(gql)
    aliases = " ".join(f"a{n}: find{cls} {{ count }}" for n in range(MAX_COMPLEXITY))
    response = gql.client.post(f"{{ {aliases} }}", master=True)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["limit"] == "complexity"


def _field(cls: str) -> str:
    return cls[:1].lower() + cls[1:]


def test_a_failed_mutation_rolls_back_the_whole_request(gql: Gql) -> None:
    cls = _class(gql)
    out = f"{{ {_field(cls)} {{ objectId }} }}"
    response = gql.client.post(
        f'mutation {{ first: create{cls}(input: {{fields: {{title: "kept?"}}}}) {out} '
        f"second: create{cls}(input: {{fields: {{}}}}) {out} "
        f'third: create{cls}(input: {{fields: {{title: "never run"}}}}) {out} }}',
        master=True,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == [142]
    assert gql.api.find(cls, count="1", limit="0")["count"] == 0


def test_mutations_commit_and_answer_the_object(gql: Gql) -> None:
    cls = _class(gql)
    name = _field(cls)
    data = gql.client.data(
        f'mutation {{ a: create{cls}(input: {{fields: {{title: "one"}}}}) '
        f"{{ {name} {{ objectId title createdAt }} }} }}",
        master=True,
    )
    created = data["a"][name]
    assert created["title"] == "one" and created["createdAt"].endswith("Z")
    data = gql.client.data(
        f'mutation {{ update{cls}(input: {{id: "{created["objectId"]}", '
        f'fields: {{title: "two"}}}}) {{ {name} {{ title updatedAt }} }} }}',
        master=True,
    )
    assert data[f"update{cls}"][name]["title"] == "two"
    assert (
        gql.api.get(f"/classes/{cls}/{created['objectId']}", master=True).json()["title"] == "two"
    )
    data = gql.client.data(
        f'mutation {{ delete{cls}(input: {{id: "{created["objectId"]}"}}) '
        f"{{ {name} {{ objectId title }} }} }}",
        master=True,
    )
    assert data[f"delete{cls}"][name] == {"objectId": created["objectId"], "title": "two"}
    assert gql.api.get(f"/classes/{cls}/{created['objectId']}", master=True).status_code == 404


def test_mutations_over_get_are_refused(gql: Gql) -> None:
    response = httpx.get(
        origin(gql.live) + "/graphql",
        params={"query": 'mutation { callFunction(name: "x") }'},
        headers={"X-Parse-Application-Id": gql.live.app_id},
    )
    assert response.status_code == 405


def test_queries_over_get(gql: Gql) -> None:
    response = httpx.get(
        origin(gql.live) + "/graphql",
        params={"query": "query { __typename }"},
        headers={"X-Parse-Application-Id": gql.live.app_id, "Accept": "application/json"},
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


def test_cloud_functions_are_mutations(gql: Gql) -> None:
    # An unknown function is Parse's 141, through the generic entry point.
    response = gql.client.post('mutation { callFunction(name: "noSuchFunction") }', master=True)
    assert error_code(response) == 141
    names = {
        f["name"]
        for f in gql.client.data("{ __schema { mutationType { fields { name } } } }", master=True)[
            "__schema"
        ]["mutationType"]["fields"]
    }
    assert {"publishAssessment", "amendAssessment", "requestEmergencyAccess"} <= names
    # A clinical function refuses an anonymous caller exactly as REST does.
    rest = gql.api.post("/functions/requestEmergencyAccess", {"patientId": "x", "reason": "y"})
    answer = gql.client.post(
        'mutation { requestEmergencyAccess(params: {patientId: "x", reason: "y"}) }'
    )
    assert error_code(answer) == rest.json()["code"]
