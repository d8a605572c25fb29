"""The OpenAPI 3.1 document: generated from the registry, valid, and truthful enough that
schemathesis, generating requests from it against a live server, provokes no 5xx."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate

from tests.support import LiveServer, live_server, make_settings

PASSWORD = "a long enough passphrase"
# A few operations, bounded and seeded: a fast, deterministic smoke fuzz, not a soak.
FUZZED = [
    ("/classes/ProviderProfile", "GET"),
    ("/classes/ProviderProfile", "POST"),
    ("/classes/ProviderProfile/{objectId}", "GET"),
    ("/classes/ProviderProfile/{objectId}", "PUT"),
    ("/classes/Appointment", "GET"),
    ("/classes/Appointment", "POST"),
    ("/login", "POST"),
    ("/batch", "POST"),
]


@pytest.fixture(scope="module")
def live(
    backend_url: str, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    settings_ = make_settings(
        backend_url,
        Path(tmp_path_factory.mktemp("openapi")),
        mfa_required_roles="",
        login_rate_per_ip=100_000,
        job_schedule="",
    )
    with live_server(settings_, backend) as server:
        yield server


def _document(live: LiveServer) -> dict[str, Any]:
    response = httpx.get(live.url + "/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    return dict(response.json())


def test_document_validates_and_covers_the_registry(live: LiveServer) -> None:
    doc = _document(live)
    validate(doc)  # raises on an invalid OpenAPI 3.1 document
    paths = doc["paths"]
    for path in (
        "/classes/PatientProfile",
        "/classes/PatientProfile/{objectId}",
        "/users",
        "/users/{objectId}",
        "/login",
        "/functions/{name}",
        "/batch",
    ):
        assert path in paths, path
    assert set(paths["/classes/Message"]) == {"get", "post"}
    assert set(paths["/classes/Message/{objectId}"]) >= {"get", "put", "delete"}
    schemas = doc["components"]["schemas"]
    assert schemas["Error"]["properties"].keys() == {"code", "error"}
    message = schemas["Message"]["properties"]
    assert message["patient"]["$ref"] == "#/components/schemas/Pointer"
    assert message["sentAt"]["$ref"] == "#/components/schemas/Date"
    assert message["isRead"] == {"type": "boolean"} or message["isRead"]["type"] == "boolean"
    functions = paths["/functions/{name}"]["post"]["parameters"][0]["schema"]["enum"]
    assert {"publishAssessment", "amendAssessment", "assignProvider"} <= set(functions)


def test_a_new_field_appears_without_code(live: LiveServer) -> None:
    api = live.client()
    name = f"Doc{uuid.uuid4().hex[:8]}"
    api.create_class(name, {"note": {"type": "String"}})
    response = api.put(f"/schemas/{name}", {"fields": {"score": {"type": "Number"}}}, master=True)
    assert response.status_code == 200, response.text
    doc = _document(live)
    validate(doc)
    assert doc["components"]["schemas"][name]["properties"]["score"] == {"type": "number"}
    assert f"/classes/{name}/{{objectId}}" in doc["paths"]


def _provider_token(live: LiveServer) -> str:
    api = live.client()
    username = f"fuzz_{uuid.uuid4().hex[:8]}"
    created = api.post(
        "/users", {"username": username, "password": PASSWORD, "role": "provider"}, master=True
    )
    assert created.status_code == 201, created.text
    login = api.post("/login", {"username": username, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return str(login.json()["sessionToken"])


@pytest.mark.parametrize(("path", "method"), FUZZED)
def test_schemathesis_finds_no_server_errors(live: LiveServer, path: str, method: str) -> None:
    schema = schemathesis.openapi.from_dict(_document(live))
    operation = schema[path][method]
    headers = {
        "X-Parse-Application-Id": live.app_id,
        "X-Parse-Session-Token": _provider_token(live),
    }
    failures: list[str] = []
    statuses: list[int] = []

    @settings(
        max_examples=12,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def fuzz(case: Any) -> None:
        response = case.call(base_url=live.url, headers=headers)
        statuses.append(response.status_code)
        if response.status_code >= 500:
            failures.append(f"{response.status_code} {case.as_curl_command()}")

    fuzz()
    assert failures == []
    assert len(statuses) >= 5, statuses  # the server was really exercised
