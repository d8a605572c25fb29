"""A staff login that must still enrol a second factor, over GraphQL: ``logIn`` says so, and the
session may read ``viewer``, enrol (``enrollMfa``/``confirmMfa``) and ``logOut``, nothing else,
exactly as REST restricts it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.graphql.support import GraphQLClient, error_code
from tests.support import LiveServer, live_server, make_settings

PASSWORD = "a long enough passphrase"


@pytest.fixture(scope="module")
def mfa_server(
    backend_url: str, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    settings = make_settings(
        backend_url,
        Path(tmp_path_factory.mktemp("graphql-mfa")),
        mfa_required_roles="provider",
        login_rate_per_ip=10_000,
        job_schedule="",
    )
    with live_server(settings, backend) as live:
        yield live


def test_a_restricted_session_may_only_enrol(mfa_server: LiveServer) -> None:
    api, client = mfa_server.client(), GraphQLClient(mfa_server)
    name = f"prov{uuid.uuid4().hex[:8]}"
    made = api.post(
        "/users", {"username": name, "password": PASSWORD, "role": "provider"}, master=True
    )
    assert made.status_code == 201, made.text
    login = client.data(
        "mutation($u: String!, $p: String!) { logIn(input: {username: $u, password: $p}) "
        "{ viewer { sessionToken mfaEnrollmentRequired user { username } } } }",
        {"u": name, "p": PASSWORD},
    )["logIn"]["viewer"]
    assert login["mfaEnrollmentRequired"] is True and login["user"] == {"username": name}
    token = login["sessionToken"]
    viewer = client.data("{ viewer { user { username } } }", token=token)
    assert viewer == {"viewer": {"user": {"username": name}}}
    for query in ("{ patientProfiles { count } }", "{ viewer { user { id } } health }"):
        refused = client.post(query, token=token)
        assert refused.status_code == 400 and error_code(refused) == 119, refused.text
    enrolled = client.data("mutation { enrollMfa }", token=token)
    assert enrolled["enrollMfa"]["secret"]
    assert client.data("mutation { logOut(input: {}) { ok } }", token=token) == {
        "logOut": {"ok": True}
    }
