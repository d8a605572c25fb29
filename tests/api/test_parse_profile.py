"""The deliberate deviations from Parse (issue 15), each a setting, tested both ways over REST.

Two servers per backend: ``strict`` has the safe defaults, ``compat`` has
``MINDHARBOR_PARSE_COMPAT=true`` (and public uploads, which Parse also keeps off by default).
Single sign-on is the simulated OIDC provider of tests/api/test_sso_login.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from joserfc.jwk import RSAKey

from tests.api.identity_helpers import (
    PASSWORD,
    audit_actions,
    identity_server,
    login,
    session,
    sign_up,
    unique_name,
)
from tests.api.test_sso_login import jwks, oidc_settings, roles_of, signing_key, sso, subject
from tests.auth.test_oidc import JwksServer, sign
from tests.support import LiveServer, ParseClient

__all__ = ["jwks", "signing_key"]  # module fixtures shared with test_sso_login


@pytest.fixture(scope="module")
def strict(
    backend_url: str, backend: str, tmp_path_factory: pytest.TempPathFactory, jwks: JwksServer
) -> Iterator[ParseClient]:
    data = tmp_path_factory.mktemp("strict")
    with identity_server(backend_url, backend, data, **oidc_settings(jwks)) as srv:
        yield srv.client()


@pytest.fixture(scope="module")
def compat_server(
    backend_url: str, backend: str, tmp_path_factory: pytest.TempPathFactory, jwks: JwksServer
) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("compat")
    settings = oidc_settings(jwks, parse_compat=True, file_upload_public=True)
    with identity_server(backend_url, backend, data, **settings) as srv:
        yield srv


@pytest.fixture(scope="module")
def compat(compat_server: LiveServer) -> ParseClient:
    return compat_server.client()


def put_user(api: ParseClient, user: dict[str, Any], body: dict[str, Any]) -> httpx.Response:
    return api.put(f"/users/{user['objectId']}", body, headers=session(user["sessionToken"]))


def me(api: ParseClient, token: str) -> dict[str, Any]:
    response = api.get("/users/me", headers=session(token))
    assert response.status_code == 200, response.text
    return dict(response.json())


def error(response: httpx.Response) -> tuple[int, int]:
    return response.status_code, response.json().get("code")


# -- password policy ---------------------------------------------------------------------------
def attempt(api: ParseClient, password: str, username: str | None = None) -> httpx.Response:
    name = username or unique_name("pw")
    return api.post("/users", {"username": name, "password": password})


def test_password_policy_strict_by_default(strict: ParseClient) -> None:
    assert error(attempt(strict, "short")) == (400, 142)
    too_common = attempt(strict, "password123")
    assert error(too_common) == (400, 142)
    assert too_common.json()["error"] == "Password is too common."
    name = unique_name("pw")
    with_name = attempt(strict, f"{name}-and-more", name)
    assert with_name.json()["error"] == "Password must not contain the username."


def test_password_policy_parse_compat(compat: ParseClient) -> None:
    assert attempt(compat, "short").status_code == 201
    assert attempt(compat, "password123").status_code == 201
    name = unique_name("pw")
    assert attempt(compat, f"{name}-and-more", name).status_code == 201
    assert error(attempt(compat, "")) == (400, 142)  # a password is still required


# -- custom fields on _User --------------------------------------------------------------------
def test_user_custom_fields_refused_by_default(strict: ParseClient) -> None:
    user, field = sign_up(strict), f"nick{uuid.uuid4().hex[:8]}"  # the servers share a database
    response = put_user(strict, user, {field: "Sam"})
    assert error(response) == (400, 119)
    assert field not in me(strict, user["sessionToken"])


def test_user_custom_fields_written_by_their_owner(compat: ParseClient) -> None:
    user, other = sign_up(compat), sign_up(compat)
    assert put_user(compat, user, {"nickname": "Sam", "shoeSize": 42}).status_code == 200
    mine = me(compat, user["sessionToken"])
    assert (mine["nickname"], mine["shoeSize"]) == ("Sam", 42)
    # Someone else's account stays unwritable, and protected fields stay the server's.
    other_session = session(other["sessionToken"])
    response = compat.put(f"/users/{user['objectId']}", {"nickname": "X"}, headers=other_session)
    assert response.status_code in (400, 404) and response.json()["code"] in (101, 206)
    assert me(compat, user["sessionToken"])["nickname"] == "Sam"
    assert error(put_user(compat, user, {"emailVerified": True})) == (400, 119)
    assert error(put_user(compat, user, {"authData.oidc": {"id": "x"}})) == (400, 119)
    # A sign-up may carry custom fields too (Parse's signUp with extra attributes).
    assert sign_up(compat, favouriteColour="teal")["objectId"]


# -- linkWith / unlink -------------------------------------------------------------------------
def test_linking_refused_by_default(strict: ParseClient, signing_key: RSAKey) -> None:
    user = sign_up(strict)
    token = sign(signing_key, sub=subject(), email=None, email_verified=None)
    response = put_user(strict, user, {"authData": {"oidc": {"id_token": token}}})
    assert error(response) == (400, 119)
    assert error(strict.post("/users", {"authData": {"anonymous": {"id": str(uuid.uuid4())}}})) == (
        400,
        252,
    )


def test_link_log_in_and_unlink(compat: ParseClient, signing_key: RSAKey) -> None:
    user, sub = sign_up(compat), subject()
    token = sign(signing_key, sub=sub, email=None, email_verified=None)
    response = put_user(compat, user, {"authData": {"oidc": {"id_token": token}}})
    assert response.status_code == 200, response.text
    assert me(compat, user["sessionToken"])["authData"] == {"oidc": {"id": sub}}
    # The linked provider now logs in to the same account.
    again = sso(compat, sign(signing_key, sub=sub, email=None, email_verified=None))
    assert again.status_code == 200 and again.json()["objectId"] == user["objectId"]
    # The SDK sends all of authData back: an unchanged entry is accepted as it is.
    same = put_user(compat, user, {"authData": {"oidc": {"id": sub}}})
    assert same.status_code == 200, same.text
    # Another account cannot take the same identity (208, as Parse).
    other = sign_up(compat)
    taken = put_user(
        compat,
        other,
        {"authData": {"oidc": {"id_token": sign(signing_key, sub=sub, email=None)}}},
    )
    assert error(taken) == (400, 208)
    assert "account.link_failure" in audit_actions(compat, other["objectId"])
    assert put_user(compat, user, {"authData": {"oidc": None}}).status_code == 200
    assert me(compat, user["sessionToken"]).get("authData") in (None, {})
    actions = audit_actions(compat, user["objectId"])
    assert "account.link" in actions and "account.unlink" in actions


def test_last_way_in_cannot_be_unlinked(compat: ParseClient, signing_key: RSAKey) -> None:
    created = sso(compat, sign(signing_key, sub=subject(), email=None, email_verified=None))
    assert created.status_code == 201, created.text
    user = created.json()
    assert error(put_user(compat, user, {"authData": {"oidc": None}})) == (400, 119)


# -- anonymous users ---------------------------------------------------------------------------
def test_anonymous_user_and_upgrade(compat: ParseClient) -> None:
    anon_id = str(uuid.uuid4())
    first = compat.post("/users", {"authData": {"anonymous": {"id": anon_id}}})
    assert first.status_code == 201, first.text
    user = first.json()
    assert roles_of(compat, user["objectId"]) == set()  # reads nothing clinical
    again = compat.post("/users", {"authData": {"anonymous": {"id": anon_id}}})
    assert again.status_code == 200 and again.json()["objectId"] == user["objectId"]
    # Clearing anonymity without a password or a provider would lose the account.
    bare = put_user(compat, user, {"authData": {"anonymous": None}})
    assert error(bare) == (400, 119)
    name = unique_name("upgraded")
    body = {"username": name, "password": PASSWORD, "authData": {"anonymous": None}}
    assert put_user(compat, user, body).status_code == 200
    assert roles_of(compat, user["objectId"]) == {"patient"}
    assert login(compat, name).status_code == 200
    assert "anonymous" not in (me(compat, user["sessionToken"]).get("authData") or {})
    # The old anonymous id is now nobody's: it makes a new anonymous account.
    fresh = compat.post("/users", {"authData": {"anonymous": {"id": anon_id}}})
    assert fresh.status_code == 201 and fresh.json()["objectId"] != user["objectId"]
    actions = audit_actions(compat, user["objectId"])
    assert "user.upgrade" in actions and "login.success" in actions


def test_anonymous_users_upload_no_files_until_upgraded(compat: ParseClient) -> None:
    """Parse's ``fileUpload.enableForAnonymousUser`` is off by default: so here."""
    first = compat.post("/users", {"authData": {"anonymous": {"id": str(uuid.uuid4())}}})
    user = first.json()
    headers = {"Content-Type": "text/plain", **session(user["sessionToken"])}
    refused = compat.request("POST", "/files/a.txt", content=b"hi", headers=headers)
    assert error(refused) == (400, 130)
    assert refused.json()["error"] == "File upload by anonymous user is disabled."
    body = {"username": unique_name("up"), "password": PASSWORD, "authData": {"anonymous": None}}
    assert put_user(compat, user, body).status_code == 200
    allowed = compat.request("POST", "/files/a.txt", content=b"hi", headers=headers)
    assert allowed.status_code == 201, allowed.text


def test_anonymous_cannot_be_linked(compat: ParseClient) -> None:
    user = sign_up(compat)
    response = put_user(compat, user, {"authData": {"anonymous": {"id": str(uuid.uuid4())}}})
    assert error(response) == (400, 119)


# -- public file upload ------------------------------------------------------------------------
def upload(api: ParseClient) -> httpx.Response:
    return api.request(
        "POST", "/files/note.txt", content=b"hello", headers={"Content-Type": "text/plain"}
    )


def test_public_upload_refused_by_default(strict: ParseClient) -> None:
    assert error(upload(strict)) == (400, 130)


def test_public_upload_when_enabled_downloads_stay_signed(compat: ParseClient) -> None:
    response = upload(compat)
    assert response.status_code == 201, response.text
    url = response.json()["url"]
    assert "sig=" in url
    assert httpx.get(url).content == b"hello"
    assert httpx.get(url.split("?", 1)[0]).status_code == 403


# -- /schemas keeps listing the built-in clinical classes --------------------------------------
def test_schemas_list_clinical_classes(strict: ParseClient, compat: ParseClient) -> None:
    """A regression guard (issue 15: hiding them is not wanted), whatever the profile."""
    for api in (strict, compat):
        response = api.get("/schemas", master=True)
        assert response.status_code == 200, response.text
        names = {item["className"] for item in response.json()["results"]}
        assert {"PatientProfile", "IntakeAssessment", "CrisisInterventionLog", "Message"} <= names
        one = api.get("/schemas/CrisisInterventionLog", master=True)
        assert one.status_code == 200 and "fields" in one.json()
