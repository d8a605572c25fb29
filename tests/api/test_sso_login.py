"""OIDC single sign-on over the REST API (``POST /users`` with ``authData.oidc``).

The identity provider is simulated: RSA keys from joserfc, id_tokens signed with them, and the
JWKS served by a real local HTTP server (the approach of tests/auth/test_oidc.py). Runs on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import time
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
from tests.auth.test_oidc import AUDIENCE, ISSUER, MESSAGE, JwksServer, serve_jwks, sign
from tests.support import LiveServer, ParseClient

INVALID_OIDC = {"code": 101, "error": MESSAGE}


@pytest.fixture(scope="module")
def signing_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "sso-key-1", "use": "sig", "alg": "RS256"})


@pytest.fixture(scope="module")
def jwks(signing_key: RSAKey) -> Iterator[JwksServer]:
    with serve_jwks() as state:
        state.publish(signing_key)
        yield state


def oidc_settings(jwks: JwksServer, **overrides: Any) -> dict[str, Any]:
    return {
        "oidc_issuer": ISSUER,
        "oidc_audience": AUDIENCE,
        "oidc_jwks_url": jwks.url,
        **overrides,
    }


@pytest.fixture(scope="module")
def live(
    backend_url: str,
    backend: str,
    tmp_path_factory: pytest.TempPathFactory,
    jwks: JwksServer,
) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("sso")
    with identity_server(backend_url, backend, data, **oidc_settings(jwks)) as srv:
        yield srv


@pytest.fixture(scope="module")
def linking(
    backend_url: str,
    backend: str,
    tmp_path_factory: pytest.TempPathFactory,
    jwks: JwksServer,
) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("sso_link")
    settings = oidc_settings(jwks, oidc_link_verified_email=True)
    with identity_server(backend_url, backend, data, **settings) as srv:
        yield srv


def subject() -> str:
    return f"sub-{uuid.uuid4().hex}"


def sso(api: ParseClient, token: str, **extra: Any) -> httpx.Response:
    return api.post("/users", {"authData": {"oidc": {"id_token": token, **extra}}})


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 404, response.text
    assert response.json() == INVALID_OIDC


def roles_of(api: ParseClient, user_id: str) -> set[str]:
    found = api.get(
        "/roles",
        params={
            "where": {"users": {"__type": "Pointer", "className": "_User", "objectId": user_id}}
        },
        master=True,
    )
    assert found.status_code == 200, found.text
    return {role["name"] for role in found.json()["results"]}


# -- new and returning users -------------------------------------------------------------------
def test_new_sso_user_created_as_patient(api: ParseClient, signing_key: RSAKey) -> None:
    sub, email = subject(), f"{unique_name('sso')}@example.org"
    response = sso(api, sign(signing_key, sub=sub, email=email))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["sessionToken"].startswith("r:")
    assert "objectId" in body
    assert roles_of(api, body["objectId"]) == {"patient"}
    me = api.get("/users/me", headers=session(body["sessionToken"]))
    assert me.status_code == 200, me.text
    assert me.json()["email"] == email
    assert me.json()["emailVerified"] is True
    created = api.get("/sessions/me", headers=session(body["sessionToken"])).json()
    assert created["createdWith"] == {"action": "login", "authProvider": "oidc"}
    assert "login.success" in audit_actions(api, body["objectId"])


def test_returning_sso_user_gets_200_same_account(api: ParseClient, signing_key: RSAKey) -> None:
    sub = subject()
    email = f"{unique_name('sso')}@example.org"
    first = sso(api, sign(signing_key, sub=sub, email=email))
    assert first.status_code == 201, first.text
    second = sso(api, sign(signing_key, sub=sub, email=email))
    assert second.status_code == 200, second.text
    assert second.json()["objectId"] == first.json()["objectId"]
    assert second.json()["sessionToken"] != first.json()["sessionToken"]
    assert "Location" not in second.headers


def test_sso_with_matching_nonce(api: ParseClient, signing_key: RSAKey) -> None:
    response = sso(
        api,
        sign(signing_key, sub=subject(), email=None, email_verified=None, nonce="n-123"),
        nonce="n-123",
    )
    assert response.status_code == 201, response.text


def test_unverified_email_not_stored_as_verified(api: ParseClient, signing_key: RSAKey) -> None:
    email = f"{unique_name('sso')}@example.org"
    response = sso(api, sign(signing_key, sub=subject(), email=email, email_verified=False))
    assert response.status_code == 201, response.text
    me = api.get("/users/me", headers=session(response.json()["sessionToken"])).json()
    assert me.get("emailVerified") is not True


# -- refused tokens ----------------------------------------------------------------------------
def test_expired_token_refused(api: ParseClient, signing_key: RSAKey) -> None:
    now = int(time.time())
    assert_refused(sso(api, sign(signing_key, sub=subject(), iat=now - 900, exp=now - 300)))


@pytest.mark.parametrize(
    "overrides",
    [{"aud": "another-client"}, {"iss": "https://evil.example.org"}],
    ids=["wrong-audience", "wrong-issuer"],
)
def test_wrong_audience_or_issuer_refused(
    api: ParseClient, signing_key: RSAKey, overrides: dict[str, Any]
) -> None:
    assert_refused(sso(api, sign(signing_key, sub=subject(), **overrides)))


def test_forged_signature_refused(api: ParseClient, signing_key: RSAKey) -> None:
    assert signing_key.kid is not None
    attacker = RSAKey.generate_key(2048, parameters={"kid": signing_key.kid})
    assert_refused(sso(api, sign(attacker, sub=subject())))


def test_nonce_mismatch_refused(api: ParseClient, signing_key: RSAKey) -> None:
    token = sign(signing_key, sub=subject(), nonce="n-expected")
    assert_refused(sso(api, token, nonce="n-other"))


@pytest.mark.parametrize("data", [{}, {"id_token": ""}, {"id_token": "not.a.jwt"}])
def test_malformed_auth_data_refused(api: ParseClient, data: dict[str, Any]) -> None:
    response = api.post("/users", {"authData": {"oidc": data}})
    assert_refused(response)


def test_refused_token_creates_no_user(api: ParseClient, signing_key: RSAKey) -> None:
    sub = subject()
    attacker = RSAKey.generate_key(2048, parameters={"kid": signing_key.kid})
    assert_refused(sso(api, sign(attacker, sub=sub)))
    found = api.find("_User", where={"authData.oidc.id": sub})
    assert found["results"] == []


def test_refused_sso_login_is_audited(api: ParseClient, signing_key: RSAKey) -> None:
    before = api.find("AuditLog", where={"action": "login.failure"}, count=1, limit=0)["count"]
    now = int(time.time())
    assert_refused(sso(api, sign(signing_key, sub=subject(), iat=now - 900, exp=now - 300)))
    found = api.find("AuditLog", where={"action": "login.failure"}, order="-createdAt", limit=1)
    assert found["results"][0]["summary"] == "Login with oidc failed"
    after = api.find("AuditLog", where={"action": "login.failure"}, count=1, limit=0)["count"]
    assert after == before + 1


# -- providers ---------------------------------------------------------------------------------
def test_unknown_provider_refused(api: ParseClient) -> None:
    response = api.post("/users", {"authData": {"facebook": {"id": "1", "access_token": "x"}}})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 252


def test_two_providers_at_once_refused(api: ParseClient, signing_key: RSAKey) -> None:
    response = api.post(
        "/users",
        {
            "authData": {
                "oidc": {"id_token": sign(signing_key, sub=subject())},
                "other": {"id": "x"},
            }
        },
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 252


# -- linking by verified email -----------------------------------------------------------------
def test_no_linking_by_email_by_default(api: ParseClient, signing_key: RSAKey) -> None:
    existing = sign_up(api)
    response = sso(api, sign(signing_key, sub=subject(), email=existing["email"]))
    # Never a session for the existing password account.
    if response.status_code in (200, 201):
        assert response.json()["objectId"] != existing["objectId"]
    else:
        assert response.status_code == 400, response.text
        assert response.json()["code"] == 203
    me = api.get("/users/me", headers=session(existing["sessionToken"])).json()
    assert "authData" not in me or not me["authData"]
    assert login(api, existing["username"]).status_code == 200


def test_links_verified_email_when_enabled(linking: LiveServer, signing_key: RSAKey) -> None:
    api = linking.client()
    existing = sign_up(api)
    sub = subject()
    response = sso(api, sign(signing_key, sub=sub, email=existing["email"].upper()))
    assert response.status_code == 200, response.text
    assert response.json()["objectId"] == existing["objectId"]
    again = sso(api, sign(signing_key, sub=sub, email=existing["email"]))
    assert again.status_code == 200, again.text
    assert again.json()["objectId"] == existing["objectId"]
    # The password still works too.
    assert login(api, existing["username"], PASSWORD).status_code == 200


def test_unverified_email_never_links(linking: LiveServer, signing_key: RSAKey) -> None:
    api = linking.client()
    existing = sign_up(api)
    response = sso(
        api, sign(signing_key, sub=subject(), email=existing["email"], email_verified=False)
    )
    if response.status_code in (200, 201):
        assert response.json()["objectId"] != existing["objectId"]
    else:
        assert response.status_code == 400, response.text


def test_sso_disabled_signup(
    backend_url: str,
    backend: str,
    tmp_path_factory: pytest.TempPathFactory,
    jwks: JwksServer,
    signing_key: RSAKey,
) -> None:
    settings = oidc_settings(jwks, allow_patient_signup=False)
    with identity_server(
        backend_url, backend, tmp_path_factory.mktemp("sso_closed"), **settings
    ) as srv:
        api = srv.client()
        response = sso(api, sign(signing_key, sub=subject()))
        assert response.status_code == 400, response.text
        assert response.json()["code"] == 119
