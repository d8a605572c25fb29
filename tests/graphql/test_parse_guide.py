"""Every example of Parse's GraphQL guide, run unchanged against MindHarbor (SQLite and
PostgreSQL), its answer compared with the one the guide prints.

The examples are in ``parse_guide.py`` and ``parse_guide_more.py`` verbatim; their fixed ids
(``GameScore:6mtiMrkW6v``, ``_User:CYLybX21cs``...) are given to the objects they name by
``doc_hooks`` (a hook module the server loads, as a deployer's cloud code), so even the ids in
the answers compare exactly. Only times and session tokens differ, and are checked for shape.
Each example is sent with the headers the guide shows (master key, session token or the
application id alone).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import RSAKey

from tests.auth.test_oidc import AUDIENCE, ISSUER, JwksServer, serve_jwks, sign
from tests.graphql import doc_hooks
from tests.graphql import parse_guide as guide
from tests.graphql import parse_guide_more as more
from tests.graphql.support import GraphQLClient, error_code, live_app
from tests.support import LiveServer, ParseClient, make_settings, pointer

ISO_LEN = len("2019-12-02T10:14:28.786Z")
PUBLIC = {op: {"*": True} for op in ("find", "count", "get", "create", "update", "delete")}


def same(actual: Any, expected: Any, path: str = "") -> None:
    """Equal, except times and session tokens, which the guide shows from its own run."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), (path, actual)
        for key, value in expected.items():
            if key in ("createdAt", "updatedAt"):
                assert isinstance(actual[key], str) and len(actual[key]) == ISO_LEN, actual[key]
                assert actual[key].endswith("Z"), actual[key]
            elif key == "sessionToken":
                assert isinstance(actual[key], str) and actual[key].startswith("r:"), actual[key]
            else:
                same(actual[key], value, f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), (path, actual)
        for n, (a, e) in enumerate(zip(actual, expected, strict=True)):
            same(a, e, f"{path}[{n}]")
    else:
        assert actual == expected, (path, actual, expected)


@dataclass
class Guide:
    live: LiveServer
    api: ParseClient
    gql: GraphQLClient
    answers: dict[str, Any] = field(default_factory=dict)

    def run(self, query: str, *, master: bool = True, token: str | None = None) -> Any:
        """The example's data, sent as the guide sends it; no errors allowed."""
        return self.gql.data(query, master=master and token is None, token=token)


def _seed_places(api: ParseClient) -> None:
    """The guide's Country → City → Street → House data (and a country that does not match)."""
    for country, city, people, street, house in (
        ("France", "Toulouse", 400_000, "rue jean jaures", "Parse Members"),
        ("Spain", "Teruel", 35_000, "calle mayor", "Casa Azul"),
    ):
        country_id = api.create("Country", {"name": country})
        city_id = api.create(
            "City",
            {"name": city, "peoplesNumber": people, "country": pointer("Country", country_id)},
        )
        street_id = api.create("Street", {"name": street, "city": pointer("City", city_id)})
        house_id = api.create("House", {"name": house, "street": pointer("Street", street_id)})
        for owner, owner_id, key, target, target_id in (
            ("Country", country_id, "cities", "City", city_id),
            ("City", city_id, "streets", "Street", street_id),
            ("Street", street_id, "houses", "House", house_id),
        ):
            add = {key: {"__op": "AddRelation", "objects": [pointer(target, target_id)]}}
            response = api.put(f"/classes/{owner}/{owner_id}", add, master=True)
            assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def signing_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "guide-key", "use": "sig", "alg": "RS256"})


@pytest.fixture(scope="module")
def jwks(signing_key: RSAKey) -> Iterator[JwksServer]:
    with serve_jwks() as state:
        state.publish(signing_key)
        yield state


@pytest.fixture(scope="module")
def g(
    backend_url: str,
    backend: str,
    tmp_path_factory: pytest.TempPathFactory,
    jwks: JwksServer,
) -> Iterator[Guide]:
    data_dir = Path(tmp_path_factory.mktemp("guide"))
    schema_file = data_dir / "schema.graphql"
    schema_file.write_text(more.CUSTOM_SCHEMA)
    settings = make_settings(
        backend_url,
        data_dir,
        mfa_required_roles="",
        login_rate_per_ip=10_000,
        job_schedule="",
        hook_modules="tests.graphql.doc_hooks",
        graphql_schema=schema_file,
        oidc_issuer=ISSUER,
        oidc_audience=AUDIENCE,
        oidc_jwks_url=jwks.url,
    )
    with live_app(settings, backend) as (live, _app):
        api = live.client()
        state = Guide(live, api, GraphQLClient(live))
        doc_hooks.PINNED.clear()
        # "Classes": the guide's first step creates GameScore through GraphQL.
        state.answers["createClass"] = state.run(guide.CREATE_CLASS)
        api.create_class("Company", {"name": {"type": "String"}}, PUBLIC)
        api.create_class("House", {"name": {"type": "String"}}, PUBLIC)
        api.create_class("Street", {"name": {"type": "String"}}, PUBLIC)
        api.create_class("City", {"name": {"type": "String"}}, PUBLIC)
        api.create_class("Country", {"name": {"type": "String"}}, PUBLIC)
        relations = {
            "House": {"street": {"type": "Pointer", "targetClass": "Street"}},
            "Street": {
                "houses": {"type": "Relation", "targetClass": "House"},
                "city": {"type": "Pointer", "targetClass": "City"},
            },
            "City": {
                "peoplesNumber": {"type": "Number"},
                "streets": {"type": "Relation", "targetClass": "Street"},
                "companies": {"type": "Relation", "targetClass": "Company"},
                "country": {"type": "Pointer", "targetClass": "Country"},
            },
            "Country": {"cities": {"type": "Relation", "targetClass": "City"}},
        }
        for name, fields in relations.items():
            response = api.put(f"/schemas/{name}", {"fields": fields}, master=True)
            assert response.status_code == 200, response.text
        api.create_class("Item", {"name": {"type": "String"}}, PUBLIC)
        api.create_class(
            "CartItem",
            {
                "quantity": {"type": "Number"},
                "item": {"type": "Pointer", "targetClass": "Item"},
                "user": {"type": "Pointer", "targetClass": "_User"},
            },
            PUBLIC,
        )
        # "Objects" → Create, then the two other scores the "Queries" examples find.
        doc_hooks.pin("GameScore", "6mtiMrkW6v")
        state.answers["create"] = state.run(guide.CREATE)
        for object_id, name, score, cheat in (
            ("zvpwSayfbp", "John Doe", 13, True),
            ("3fZ0hARCUM", "Steve Jordan", 134, False),
        ):
            doc_hooks.pin("GameScore", object_id)
            api.create("GameScore", {"playerName": name, "score": score, "cheatMode": cheat})
        state.answers["nestedMutation"] = state.run(guide.NESTED_MUTATION)
        _seed_places(api)
        # "Users" → Signing Up names the account the "Get with Relay" example reads.
        doc_hooks.pin("_User", "CYLybX21cs")
        state.answers["signUp"] = state.run(more.SIGN_UP)
        doc_hooks.pin("Item", "Dl5cfaVrTH")
        api.create("Item", {"name": "A Parse T-shirt"})
        assert not any(doc_hooks.PINNED.values())  # every pinned id was used
        yield state


def _login(g: Guide) -> str:
    response = g.api.post("/login", {"username": "johndoe", "password": "ASuperStrongPassword"})
    assert response.status_code == 200, response.text
    return str(response.json()["sessionToken"])


# -- Health check and Classes -------------------------------------------------------------------
def test_health(g: Guide) -> None:
    assert g.run(guide.HEALTH) == {"health": True}


def test_create_class(g: Guide) -> None:
    answer = g.answers["createClass"]["createClass"]
    assert answer["clientMutationId"] == "anFrontId"
    assert answer["class"]["name"] == "GameScore"
    fields = {(f["name"], f["__typename"]) for f in answer["class"]["schemaFields"]}
    assert fields == guide.CREATE_CLASS_FIELDS
    # The class is real: REST sees the three fields with their types.
    schema = g.api.get("/schemas/GameScore", master=True).json()["fields"]
    assert {k: schema[k]["type"] for k in ("playerName", "score", "cheatMode")} == {
        "playerName": "String",
        "score": "Number",
        "cheatMode": "Boolean",
    }


# -- Objects ------------------------------------------------------------------------------------
def test_create(g: Guide) -> None:
    same(g.answers["create"], guide.CREATE_RESPONSE)
    stored = g.api.get("/classes/GameScore/6mtiMrkW6v", master=True).json()
    assert (stored["playerName"], stored["score"], stored["cheatMode"]) == (
        "Sean Plott",
        1337,
        False,
    )


def test_update(g: Guide) -> None:
    doc_hooks.pin("GameScore", "c7MZCdHPcl")
    g.api.create("GameScore", {"playerName": "Charles", "score": 1, "cheatMode": False})
    try:
        same(g.run(guide.UPDATE), guide.UPDATE_RESPONSE)
        stored = g.api.get("/classes/GameScore/c7MZCdHPcl", master=True).json()
        assert stored["playerName"] == "Charles Francois"
    finally:
        g.api.delete("/classes/GameScore/c7MZCdHPcl", master=True)


def test_delete(g: Guide) -> None:
    doc_hooks.pin("GameScore", "c7MZCdHPcl")
    g.api.create("GameScore", {"playerName": "Charles Francois", "score": 1, "cheatMode": False})
    same(g.run(guide.DELETE), guide.DELETE_RESPONSE)
    assert g.api.get("/classes/GameScore/c7MZCdHPcl", master=True).status_code == 404


def test_nested_mutation(g: Guide) -> None:
    same(g.answers["nestedMutation"], guide.NESTED_MUTATION_RESPONSE)
    mars = g.api.find("Country", where={"name": "Mars"})["results"][0]
    cities = g.api.find(
        "City",
        where={"$relatedTo": {"object": pointer("Country", mars["objectId"]), "key": "cities"}},
    )["results"]
    assert [c["name"] for c in cities] == ["Alpha"]


# -- Queries ------------------------------------------------------------------------------------
def test_get(g: Guide) -> None:
    same(g.run(guide.GET), guide.GET_RESPONSE)


def test_get_with_relay_node(g: Guide) -> None:
    same(g.run(guide.GET_NODE), guide.GET_NODE_RESPONSE)


def test_generic_get_by_node(g: Guide) -> None:
    same(g.run(guide.GENERIC_GET), guide.GENERIC_GET_RESPONSE)


def test_find(g: Guide) -> None:
    same(g.run(guide.FIND), guide.FIND_RESPONSE)


def test_find_where(g: Guide) -> None:
    same(g.run(guide.FIND_WHERE), guide.FIND_WHERE_RESPONSE)


def test_find_order(g: Guide) -> None:
    same(g.run(guide.FIND_ORDER), guide.FIND_ORDER_RESPONSE)


def test_find_pagination_after(g: Guide) -> None:
    same(g.run(guide.FIND_AFTER), guide.FIND_AFTER_RESPONSE)


def test_nested_query(g: Guide) -> None:
    same(g.run(more.NESTED_QUERY), more.NESTED_QUERY_RESPONSE)


def test_parent_relation_style(g: Guide) -> None:
    data = g.run(more.PARENT_RELATION)
    [country] = [e["node"] for e in data["countries"]["edges"]]
    [city] = [e["node"] for e in country["cities"]["edges"]]
    [street] = [e["node"] for e in city["streets"]["edges"]]
    [house] = [e["node"] for e in street["houses"]["edges"]]
    path = (country["name"], city["name"], city["peoplesNumber"], street["name"], house["name"])
    assert path == more.PARENT_RELATION_RESPONSE_PATH


def test_child_relation_style(g: Guide) -> None:
    same(g.run(more.CHILD_RELATION), more.CHILD_RELATION_RESPONSE)


# -- Users --------------------------------------------------------------------------------------
def test_sign_up(g: Guide) -> None:
    same(g.answers["signUp"], {"signUp": {"viewer": {"sessionToken": "", "user": more.JOHNDOE}}})
    token = g.answers["signUp"]["signUp"]["viewer"]["sessionToken"]
    me = g.api.get("/users/me", headers={"X-Parse-Session-Token": token})
    assert me.json()["objectId"] == "CYLybX21cs", me.text


def test_log_in(g: Guide) -> None:
    data = g.run(more.LOG_IN, master=False)
    same(data, {"logIn": {"viewer": {"sessionToken": "", "user": more.JOHNDOE}}})
    token = data["logIn"]["viewer"]["sessionToken"]
    assert g.api.get("/users/me", headers={"X-Parse-Session-Token": token}).status_code == 200


def test_log_in_with_a_wrong_password_commits_the_failure_and_answers_101(g: Guide) -> None:
    wrong = more.LOG_IN.replace("ASuperStrongPassword", "NotThePassword1")
    response = g.gql.post(wrong)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] == {"logIn": None}
    assert body["errors"][0]["extensions"]["code"] == 101
    assert body["errors"][0]["path"] == ["logIn"]
    failures = g.api.find("AuditLog", where={"action": "login.failure", "entityId": "CYLybX21cs"})
    assert failures["results"], "the failed attempt is audited (committed) like a REST login"


def test_viewer(g: Guide) -> None:
    token = _login(g)
    same(
        g.run(more.VIEWER, token=token),
        {"viewer": {"sessionToken": token, "user": more.JOHNDOE}},
    )


def test_log_out(g: Guide) -> None:
    token = _login(g)
    same(g.run(more.LOG_OUT, token=token), more.LOG_OUT_RESPONSE)
    after = g.gql.post(more.VIEWER, token=token)
    assert error_code(after) == 209, after.text


def test_reset_password(g: Guide) -> None:
    assert g.run(more.RESET_PASSWORD, master=False) == {"resetPassword": {"ok": True}}


def test_log_in_with_a_provider_this_server_does_not_use(g: Guide) -> None:
    # The guide's example names Facebook; like Parse without that adapter: 252.
    response = g.gql.post(more.LOG_IN_WITH, master=True)
    assert error_code(response) == 252, response.text
    assert response.json()["data"] is None  # a failed mutation answers no data (rolled back)


def test_log_in_with_the_configured_provider(g: Guide, signing_key: RSAKey) -> None:
    token = sign(signing_key, sub="guide-sso-user", email="sso@example.org", email_verified=True)
    data = g.gql.data(
        "mutation($auth: Object!) { logInWith(input: {authData: $auth}) "
        "{ viewer { sessionToken user { id email } } } }",
        {"auth": {"oidc": {"id_token": token}}},
    )
    viewer = data["logInWith"]["viewer"]
    assert viewer["user"]["email"] == "sso@example.org"
    assert viewer["sessionToken"].startswith("r:")


# -- Cloud code ---------------------------------------------------------------------------------
def test_query_resolver(g: Guide) -> None:
    assert g.run(more.HELLO) == {"hello": "Hello, world!"}


def test_mutation_resolver(g: Guide) -> None:
    token = _login(g)
    doc_hooks.pin("CartItem", "jEULyFfuiC")
    same(g.run(more.ADD_TO_CART, token=token), more.ADD_TO_CART_RESPONSE)
    again = g.run(more.ADD_TO_CART, token=token)
    assert again["addToCart"] == {"id": "Q2FydEl0ZW06akVVTHlGZnVpQw==", "quantity": 2}


def test_call_cloud_code(g: Guide) -> None:
    data = g.gql.data(
        'mutation { callCloudCode(input: {functionName: hello, clientMutationId: "c1"}) '
        "{ result clientMutationId } }"
    )
    assert data == {"callCloudCode": {"result": "Hello, world!", "clientMutationId": "c1"}}
