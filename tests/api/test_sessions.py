"""Sessions over the REST API: /users/me, /sessions, log-out, revocation, hashing and expiry.

Runs on SQLite and PostgreSQL. Expiry is tested by moving a session's clock with SQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.api.identity_helpers import (
    NEW_PASSWORD,
    PASSWORD,
    assert_invalid_login,
    assert_invalid_session,
    audit_actions,
    create_user,
    identity_server,
    login,
    login_token,
    naive_utc,
    run_sql,
    session,
    session_id,
    sign_up,
)
from tests.support import LiveServer, ParseClient


@pytest.fixture(scope="module")
def live(
    backend_url: str, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with identity_server(backend_url, backend, tmp_path_factory.mktemp("sessions")) as srv:
        yield srv


def alive(api: ParseClient, token: str) -> bool:
    response = api.get("/users/me", headers=session(token))
    if response.status_code == 200:
        return True
    assert_invalid_session(response)
    return False


def set_last_used(live: LiveServer, sid: str, minutes_ago: float) -> None:
    run_sql(
        live,
        'UPDATE "_Session" SET "_last_used_at" = :t WHERE "objectId" = :id',
        t=naive_utc(-timedelta(minutes=minutes_ago)),
        id=sid,
    )


# -- current session ---------------------------------------------------------------------------
def test_users_me(api: ParseClient) -> None:
    user = sign_up(api)
    response = api.get("/users/me", headers=session(user["sessionToken"]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["objectId"] == user["objectId"]
    assert body["username"] == user["username"]
    assert body["sessionToken"] == user["sessionToken"]


def test_users_me_without_session(api: ParseClient) -> None:
    response = api.get("/users/me")
    assert_invalid_session(response)


def test_sessions_me(api: ParseClient) -> None:
    user = sign_up(api)
    token = login_token(api, user["username"])
    response = api.get("/sessions/me", headers=session(token))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sessionToken"] == token
    assert body["user"] == {"__type": "Pointer", "className": "_User", "objectId": user["objectId"]}
    assert body["createdWith"] == {"action": "login", "authProvider": "password"}
    assert body["expiresAt"]["__type"] == "Date"
    assert body["restricted"] is False
    assert not any(key.startswith("_") for key in body)
    signup = api.get("/sessions/me", headers=session(user["sessionToken"])).json()
    assert signup["createdWith"] == {"action": "signup", "authProvider": "password"}


def test_session_expires_after_absolute_lifetime_default(api: ParseClient) -> None:
    user = sign_up(api)
    body = api.get("/sessions/me", headers=session(user["sessionToken"])).json()
    iso = body["expiresAt"]["iso"]
    expires = datetime.fromisoformat(iso.replace("Z", "+00:00")).replace(tzinfo=None)
    lifetime = expires - naive_utc()
    assert timedelta(hours=11, minutes=58) < lifetime <= timedelta(hours=12)


def test_installation_id_recorded(api: ParseClient) -> None:
    user = sign_up(api)
    response = api.post(
        "/login",
        {"username": user["username"], "password": PASSWORD},
        headers={"X-Parse-Installation-Id": "install-123"},
    )
    assert response.status_code == 200, response.text
    token = response.json()["sessionToken"]
    me = api.get("/sessions/me", headers=session(token))
    assert me.json()["installationId"] == "install-123"


@pytest.mark.parametrize("token", ["r:not-a-real-token", "garbage", "r:" + "0" * 48, "x" * 500])
def test_unknown_token_is_209_everywhere(api: ParseClient, token: str) -> None:
    for method, path in (
        ("GET", "/users/me"),
        ("GET", "/sessions/me"),
        ("GET", "/sessions"),
        ("POST", "/logout"),
        ("GET", "/classes/AuditLog"),
    ):
        response = api.request(
            method, path, headers=session(token), json={} if method == "POST" else None
        )
        assert_invalid_session(response)


# -- log-out -----------------------------------------------------------------------------------
def test_logout_kills_token(api: ParseClient) -> None:
    user = sign_up(api)
    token = login_token(api, user["username"])
    response = api.post("/logout", {}, headers=session(token))
    assert response.status_code == 200, response.text
    assert response.json() == {}
    for method, path in (
        ("GET", "/users/me"),
        ("GET", "/sessions/me"),
        ("GET", "/sessions"),
        ("POST", "/logout"),
        ("GET", f"/users/{user['objectId']}"),
        ("PUT", f"/users/{user['objectId']}"),
    ):
        body = {} if method in ("POST", "PUT") else None
        assert_invalid_session(api.request(method, path, headers=session(token), json=body))
    # The sign-up session is untouched.
    assert alive(api, user["sessionToken"])
    assert "logout" in [
        e["action"]
        for e in api.find("AuditLog", where={"action": "logout"}, limit=1000)["results"]
        if (e.get("actor") or {}).get("objectId") == user["objectId"]
    ]


def test_logout_without_session(api: ParseClient) -> None:
    assert_invalid_session(api.post("/logout", {}))


# -- listing and revoking ----------------------------------------------------------------------
def test_list_own_sessions_only(api: ParseClient) -> None:
    alice, bob = sign_up(api), sign_up(api)
    second = login_token(api, alice["username"])
    login_token(api, bob["username"])
    response = api.get("/sessions", headers=session(second))
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == 2
    assert {s["user"]["objectId"] for s in results} == {alice["objectId"]}
    for entry in results:
        assert "sessionToken" not in entry
        assert not any(key.startswith("_") for key in entry)


def test_delete_own_session_revokes_it(api: ParseClient) -> None:
    user = sign_up(api)
    other = login_token(api, user["username"])
    other_id = session_id(api, other)
    response = api.delete(f"/sessions/{other_id}", headers=session(user["sessionToken"]))
    assert response.status_code == 200, response.text
    assert not alive(api, other)
    assert alive(api, user["sessionToken"])


def test_cannot_read_or_delete_another_users_session(api: ParseClient) -> None:
    alice, bob = sign_up(api), sign_up(api)
    bob_sid = session_id(api, bob["sessionToken"])
    got = api.get(f"/sessions/{bob_sid}", headers=session(alice["sessionToken"]))
    assert got.status_code == 404, got.text
    assert got.json()["code"] == 101
    deleted = api.delete(f"/sessions/{bob_sid}", headers=session(alice["sessionToken"]))
    assert deleted.status_code == 404, deleted.text
    assert deleted.json()["code"] == 101
    assert alive(api, bob["sessionToken"])


def test_client_cannot_create_or_edit_sessions(api: ParseClient) -> None:
    user = sign_up(api)
    sid = session_id(api, user["sessionToken"])
    created = api.post(
        "/classes/_Session",
        {"user": {"__type": "Pointer", "className": "_User", "objectId": user["objectId"]}},
        headers=session(user["sessionToken"]),
    )
    assert created.status_code == 400, created.text
    assert created.json()["code"] == 119
    extended = api.put(
        f"/classes/_Session/{sid}",
        {"expiresAt": {"__type": "Date", "iso": "2999-01-01T00:00:00.000Z"}},
        headers=session(user["sessionToken"]),
    )
    assert extended.status_code == 400, extended.text
    assert extended.json()["code"] == 119


def test_password_change_revokes_other_sessions_only(api: ParseClient) -> None:
    user = sign_up(api)
    current = login_token(api, user["username"])
    other = login_token(api, user["username"])
    response = api.put(
        f"/users/{user['objectId']}", {"password": NEW_PASSWORD}, headers=session(current)
    )
    assert response.status_code == 200, response.text
    assert alive(api, current)
    assert not alive(api, other)
    assert not alive(api, user["sessionToken"])
    assert_invalid_login(login(api, user["username"]))
    assert login(api, user["username"], NEW_PASSWORD).status_code == 200
    assert "user.password_change" in audit_actions(api, user["objectId"])


def test_master_password_change_revokes_all_sessions(api: ParseClient) -> None:
    user = sign_up(api)
    other = login_token(api, user["username"])
    response = api.put(f"/users/{user['objectId']}", {"password": NEW_PASSWORD}, master=True)
    assert response.status_code == 200, response.text
    assert not alive(api, other)
    assert not alive(api, user["sessionToken"])


# -- storage -----------------------------------------------------------------------------------
def test_tokens_are_stored_hashed(api: ParseClient, live: LiveServer) -> None:
    user = sign_up(api)
    token = login_token(api, user["username"])
    cast = "TEXT" if live.backend == "sqlite" else "text"
    columns = [
        row[0]
        for row in run_sql(
            live,
            "SELECT name FROM pragma_table_info('_Session')"
            if live.backend == "sqlite"
            else "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = '_Session' AND table_schema = current_schema()",
        )
    ]
    assert "_session_token_hash" in columns
    selected = ", ".join(f'CAST("{c}" AS {cast})' for c in columns)
    rows = run_sql(live, f'SELECT {selected} FROM "_Session"')
    assert rows
    for plaintext in (token, user["sessionToken"], token[2:], user["sessionToken"][2:]):
        for row in rows:
            assert all(plaintext not in (value or "") for value in row)


# -- expiry ------------------------------------------------------------------------------------
def test_absolute_expiry(api: ParseClient, live: LiveServer) -> None:
    user = sign_up(api)
    sid = session_id(api, user["sessionToken"])
    run_sql(
        live,
        'UPDATE "_Session" SET "expiresAt" = :t WHERE "objectId" = :id',
        t=naive_utc(-timedelta(seconds=5)),
        id=sid,
    )
    assert not alive(api, user["sessionToken"])
    assert_invalid_session(api.get("/sessions/me", headers=session(user["sessionToken"])))


def test_idle_timeout_patient_vs_provider(api: ParseClient, live: LiveServer) -> None:
    patient = sign_up(api)
    provider = create_user(api, "provider")
    provider_token = login_token(api, provider["username"])
    patient_sid = session_id(api, patient["sessionToken"])
    provider_sid = session_id(api, provider_token)
    set_last_used(live, patient_sid, 20)
    set_last_used(live, provider_sid, 20)
    assert alive(api, patient["sessionToken"])  # patients: 30 idle minutes
    assert not alive(api, provider_token)  # staff: 15 idle minutes


def test_patient_idle_timeout_after_30_minutes(api: ParseClient, live: LiveServer) -> None:
    patient = sign_up(api)
    sid = session_id(api, patient["sessionToken"])
    set_last_used(live, sid, 31)
    assert not alive(api, patient["sessionToken"])


def test_staff_within_idle_window_and_use_refreshes(api: ParseClient, live: LiveServer) -> None:
    provider = create_user(api, "provider")
    token = login_token(api, provider["username"])
    sid = session_id(api, token)
    set_last_used(live, sid, 10)
    assert alive(api, token)  # this use moves the idle clock forward
    (row,) = run_sql(live, 'SELECT "_last_used_at" FROM "_Session" WHERE "objectId" = :id', id=sid)
    last = row[0]
    if isinstance(last, str):
        last = datetime.fromisoformat(last)
    assert naive_utc() - last < timedelta(minutes=1)


@pytest.mark.parametrize("role", ["admin", "compliance"])
def test_all_staff_roles_get_staff_idle_timeout(
    api: ParseClient, live: LiveServer, role: str
) -> None:
    staff = create_user(api, role)
    token = login_token(api, staff["username"])
    sid = session_id(api, token)
    set_last_used(live, sid, 16)
    assert not alive(api, token)


def test_idle_minutes_configurable(backend_url: str, backend: str, tmp_path: Path) -> None:
    with identity_server(
        backend_url,
        backend,
        tmp_path,
        session_idle_minutes_patient=5,
        session_idle_minutes_staff=60,
    ) as srv:
        api = srv.client()
        patient = sign_up(api)
        provider = create_user(api, "provider")
        provider_token = login_token(api, provider["username"])
        set_last_used(srv, session_id(api, patient["sessionToken"]), 6)
        set_last_used(srv, session_id(api, provider_token), 20)
        assert not alive(api, patient["sessionToken"])
        assert alive(api, provider_token)


def test_absolute_lifetime_configurable(backend_url: str, backend: str, tmp_path: Path) -> None:
    with identity_server(backend_url, backend, tmp_path, session_absolute_minutes=60) as srv:
        api = srv.client()
        patient = sign_up(api)
        body = api.get("/sessions/me", headers=session(patient["sessionToken"])).json()
        expires = datetime.fromisoformat(body["expiresAt"]["iso"].replace("Z", "+00:00"))
        lifetime = expires.replace(tzinfo=None) - naive_utc()
        assert timedelta(minutes=58) < lifetime <= timedelta(minutes=60)


def test_deleting_the_account_ends_its_sessions(api: ParseClient) -> None:
    user = sign_up(api)
    other = login_token(api, user["username"])
    response = api.delete(f"/users/{user['objectId']}", headers=session(user["sessionToken"]))
    assert response.status_code == 200, response.text
    assert_invalid_session(api.get("/users/me", headers=session(other)))
    assert_invalid_session(api.get("/sessions/me", headers=session(user["sessionToken"])))
    assert_invalid_session(api.get("/sessions", headers=session(other)))
