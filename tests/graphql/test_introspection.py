"""Issue 19, item 12: GraphQL introspection only for the master key, or when
``MINDHARBOR_GRAPHQL_PUBLIC_INTROSPECTION`` opens it (Parse Server 9's
``graphQLPublicIntrospection``).

Anyone else gets 403 (Parse's "Introspection is not allowed", code 119) for ``__schema`` or
``__type`` anywhere in the document, fragments included; ``__typename`` stays free. Error
messages do not suggest schema names to them either ("Did you mean ...?"). Parse Dashboard's
API console, which sends the master key from another origin, keeps its schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from graphql import get_introspection_query

from tests.api.identity_helpers import sign_up
from tests.graphql.support import GraphQLClient, origin
from tests.support import LiveServer, live_server, make_settings

SCHEMA = "{ __schema { queryType { name } } }"
TYPE = '{ __type(name: "Query") { name } }'
IN_FRAGMENT = "query { ...Peek } fragment Peek on Query { __schema { queryType { name } } }"


def refused(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    [error] = response.json()["errors"]
    assert error["message"].startswith("Introspection is not allowed"), error
    assert error["extensions"]["code"] == 119
    assert "data" not in response.json()


@pytest.mark.parametrize("query", [SCHEMA, TYPE, IN_FRAGMENT])
def test_introspection_is_refused_without_the_master_key(server: LiveServer, query: str) -> None:
    client = GraphQLClient(server)
    refused(client.post(query))
    user = sign_up(server.client())
    refused(client.post(query, token=user["sessionToken"]))


def test_introspection_with_the_master_key(server: LiveServer) -> None:
    data = GraphQLClient(server).data(SCHEMA, master=True)
    assert data == {"__schema": {"queryType": {"name": "Query"}}}


def test_typename_is_not_introspection(server: LiveServer) -> None:
    assert GraphQLClient(server).data("{ __typename }") == {"__typename": "Query"}


def test_errors_suggest_schema_names_only_to_those_who_may_introspect(
    server: LiveServer,
) -> None:
    client = GraphQLClient(server)
    anonymous = client.post("{ healt }")
    assert anonymous.status_code == 400
    assert "Did you mean" not in anonymous.text and "health" not in anonymous.text
    master = client.post("{ healt }", master=True)
    assert "Did you mean 'health'?" in master.text


@pytest.fixture(scope="module")
def open_server(
    backend_url: str, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    settings = make_settings(
        backend_url,
        Path(tmp_path_factory.mktemp("public-introspection")),
        graphql_public_introspection=True,
        job_schedule="",
    )
    with live_server(settings, backend) as live:
        yield live


def test_the_setting_opens_introspection_to_everyone(open_server: LiveServer) -> None:
    client = GraphQLClient(open_server)
    for query in (SCHEMA, TYPE, IN_FRAGMENT):
        response = client.post(query)
        assert response.status_code == 200, response.text
        assert "errors" not in response.json()


def test_parse_dashboard_api_console_loads_the_schema(server: LiveServer) -> None:
    """The Dashboard's GraphQL console is GraphiQL on the Dashboard's own origin: a CORS
    preflight, then graphql-js's full introspection query with the app id and master key."""
    url = origin(server) + "/graphql"
    dashboard = "http://localhost:4040"
    preflight = httpx.options(
        url,
        headers={
            "Origin": dashboard,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-parse-application-id,"
            "x-parse-master-key",
        },
    )
    assert preflight.status_code == 200, preflight.text
    assert "x-parse-master-key" in preflight.headers["access-control-allow-headers"].lower()
    query = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
    )
    response = httpx.post(
        url,
        json={"query": query, "operationName": "IntrospectionQuery"},
        headers={
            "Origin": dashboard,
            "X-Parse-Application-Id": server.app_id,
            "X-Parse-Master-Key": server.master_key,
        },
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == "*"
    types = {t["name"] for t in response.json()["data"]["__schema"]["types"]}
    assert {"Query", "Mutation", "PatientProfile", "PatientProfileConnection", "Viewer"} <= types
