"""Accounts over the REST API: sign-up, staff creation, invitations, log-in, lockout, users, audit.

Runs on SQLite and PostgreSQL against a real server on a socket.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from tests.api.identity_helpers import (
    INVALID_LOGIN,
    NEW_PASSWORD,
    PASSWORD,
    admin_session,
    assert_invalid_login,
    audit_actions,
    audit_entries,
    create_user,
    identity_server,
    login,
    login_token,
    naive_utc,
    run_sql,
    session,
    sign_up,
    unique_name,
)
from tests.support import LiveServer, ParseClient, free_port, live_server, make_settings

SECRET_MARKERS = ("$argon2", "$2b$", "_hashed_password", "hashedPassword", "_mfa", "_reset_token")


@pytest.fixture(scope="module")
def live(
    backend_url: str, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with identity_server(backend_url, backend, tmp_path_factory.mktemp("accounts")) as srv:
        yield srv


def assert_no_secrets(text: str) -> None:
    for marker in SECRET_MARKERS:
        assert marker not in text, f"{marker!r} leaked in {text}"
    assert PASSWORD not in text
    assert '"password"' not in text


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


# -- sign-up -----------------------------------------------------------------------------------
def test_sign_up_returns_201_with_session_and_location(api: ParseClient) -> None:
    username = unique_name("pat")
    response = api.post(
        "/users", {"username": username, "password": PASSWORD, "email": f"{username}@example.org"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) >= {"objectId", "createdAt", "sessionToken"}
    assert body["sessionToken"].startswith("r:")
    assert "mfaEnrollmentRequired" not in body
    assert response.headers["Location"].endswith(f"/users/{body['objectId']}")
    assert_no_secrets(response.text)
    me = api.get("/users/me", headers=session(body["sessionToken"]))
    assert me.status_code == 200, me.text
    assert me.json()["objectId"] == body["objectId"]
    assert me.json()["username"] == username


def test_self_sign_up_becomes_patient(api: ParseClient) -> None:
    user = sign_up(api)
    assert roles_of(api, user["objectId"]) == {"patient"}
    entries = [e for e in audit_entries(api, user["objectId"]) if e["action"] == "user.signup"]
    assert len(entries) == 1
    assert entries[0]["metadata"]["role"] == "patient"


def test_self_sign_up_with_explicit_patient_role_allowed(api: ParseClient) -> None:
    username = unique_name("pat")
    response = api.post("/users", {"username": username, "password": PASSWORD, "role": "patient"})
    assert response.status_code == 201, response.text
    assert roles_of(api, response.json()["objectId"]) == {"patient"}


@pytest.mark.parametrize("role", ["provider", "admin", "compliance"])
def test_self_sign_up_cannot_choose_staff_role(api: ParseClient, role: str) -> None:
    username = unique_name("evil")
    response = api.post("/users", {"username": username, "password": PASSWORD, "role": role})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 119
    assert login(api, username).status_code == 404  # nothing was created


def test_patient_session_cannot_create_staff(api: ParseClient) -> None:
    patient = sign_up(api)
    response = api.post(
        "/users",
        {"username": unique_name("p"), "password": PASSWORD, "role": "provider"},
        headers=session(patient["sessionToken"]),
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 119


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"password": PASSWORD}, 200),
        ({"username": "", "password": PASSWORD}, 200),
        ({"username": "__NAME__"}, 201),
        ({"username": "__NAME__", "password": "short"}, 142),
        ({"username": "__NAME__", "password": "password123"}, 142),
        ({"username": "__NAME__", "password": "x-__NAME__-y-long"}, 142),
        ({"username": "__NAME__", "password": PASSWORD, "email": "not-an-email"}, 125),
    ],
)
def test_sign_up_validation(api: ParseClient, body: dict[str, Any], code: int) -> None:
    name = unique_name("v")
    body = {k: v.replace("__NAME__", name) if isinstance(v, str) else v for k, v in body.items()}
    response = api.post("/users", body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code


def test_duplicate_username_and_email(api: ParseClient) -> None:
    user = sign_up(api)
    again = api.post("/users", {"username": user["username"], "password": PASSWORD})
    assert again.status_code == 400, again.text
    assert again.json() == {"code": 202, "error": "Account already exists for this username."}
    same_email = api.post(
        "/users",
        {"username": unique_name("x"), "password": PASSWORD, "email": user["email"].upper()},
    )
    assert same_email.status_code == 400, same_email.text
    assert same_email.json() == {
        "code": 203,
        "error": "Account already exists for this email address.",
    }


def test_sign_up_disabled(backend_url: str, backend: str, tmp_path: Path) -> None:
    settings = make_settings(backend_url, tmp_path, allow_patient_signup=False)
    with live_server(settings, backend) as srv:
        api = srv.client()
        response = api.post("/users", {"username": unique_name("p"), "password": PASSWORD})
        assert response.status_code == 400, response.text
        assert response.json()["code"] == 119
        # The master key can still create a patient.
        created = api.post(
            "/users",
            {"username": unique_name("p"), "password": PASSWORD, "role": "patient"},
            master=True,
        )
        assert created.status_code == 201, created.text


@pytest.mark.parametrize("field", ["emailVerified", "authData"])
def test_sign_up_cannot_set_server_fields(api: ParseClient, field: str) -> None:
    value: Any = True if field == "emailVerified" else {"oidc": {"id": "x"}}
    username = unique_name("p")
    response = api.post("/users", {"username": username, "password": PASSWORD, field: value})
    if field == "authData":
        # authData in a sign-up is an SSO login attempt; oidc is not configured here.
        assert response.status_code == 400, response.text
        assert response.json()["code"] == 252
    else:
        assert response.status_code == 400, response.text
        assert response.json()["code"] == 119


# -- staff accounts ----------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["provider", "admin", "compliance", "patient"])
def test_master_key_creates_any_role_without_session(api: ParseClient, role: str) -> None:
    user = create_user(api, role)
    assert roles_of(api, user["objectId"]) == {role}


def test_admin_session_creates_staff(api: ParseClient) -> None:
    _, token = admin_session(api)
    username = unique_name("prov")
    response = api.post(
        "/users",
        {"username": username, "password": PASSWORD, "role": "provider"},
        headers=session(token),
    )
    assert response.status_code == 201, response.text
    assert set(response.json()) >= {"objectId", "createdAt"}
    assert "sessionToken" not in response.json()
    assert roles_of(api, response.json()["objectId"]) == {"provider"}
    reply = login(api, username)
    assert reply.status_code == 200, reply.text
    assert reply.json()["mfaEnrollmentRequired"] is True


def test_unknown_role_refused(api: ParseClient) -> None:
    response = api.post(
        "/users",
        {"username": unique_name("x"), "password": PASSWORD, "role": "superuser"},
        master=True,
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 142


def test_invitation_flow(api: ParseClient) -> None:
    _, token = admin_session(api)
    username = unique_name("prov")
    email = f"{username}@example.org"
    invite = api.post(
        "/functions/createInvitation",
        {"role": "provider", "email": email},
        headers=session(token),
    )
    assert invite.status_code == 200, invite.text
    result = invite.json()["result"]
    assert result["role"] == "provider"
    invitation = result["invitationToken"]

    wrong_email = api.post(
        "/users",
        {
            "username": username,
            "password": PASSWORD,
            "email": "someone-else@example.org",
            "invitationToken": invitation,
        },
    )
    assert wrong_email.status_code == 400, wrong_email.text
    assert wrong_email.json()["code"] == 142

    created = api.post(
        "/users",
        {"username": username, "password": PASSWORD, "email": email, "invitationToken": invitation},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["sessionToken"].startswith("r:")
    assert body["mfaEnrollmentRequired"] is True
    assert roles_of(api, body["objectId"]) == {"provider"}

    reused = api.post(
        "/users",
        {
            "username": unique_name("prov"),
            "password": PASSWORD,
            "email": email.replace("@", "+2@"),
            "invitationToken": invitation,
        },
    )
    assert reused.status_code == 400, reused.text
    assert reused.json()["code"] == 142


def test_invitation_master_key_without_email(api: ParseClient) -> None:
    invite = api.post("/functions/createInvitation", {"role": "compliance"}, master=True)
    assert invite.status_code == 200, invite.text
    created = api.post(
        "/users",
        {
            "username": unique_name("comp"),
            "password": PASSWORD,
            "invitationToken": invite.json()["result"]["invitationToken"],
        },
    )
    assert created.status_code == 201, created.text
    assert roles_of(api, created.json()["objectId"]) == {"compliance"}


def test_bogus_invitation_refused(api: ParseClient) -> None:
    response = api.post(
        "/users",
        {"username": unique_name("x"), "password": PASSWORD, "invitationToken": "nope"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 142


def test_only_admin_creates_invitations(api: ParseClient) -> None:
    patient = sign_up(api)
    response = api.post(
        "/functions/createInvitation",
        {"role": "provider"},
        headers=session(patient["sessionToken"]),
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 119
    anonymous = api.post("/functions/createInvitation", {"role": "provider"})
    assert anonymous.status_code == 400, anonymous.text
    assert anonymous.json()["code"] == 119


# -- log-in ------------------------------------------------------------------------------------
def test_login_post_returns_user_and_session(api: ParseClient) -> None:
    user = sign_up(api)
    response = login(api, user["username"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["objectId"] == user["objectId"]
    assert body["username"] == user["username"]
    assert body["email"] == user["email"]
    assert body["sessionToken"].startswith("r:")
    assert body["sessionToken"] != user["sessionToken"]
    assert "mfaEnrollmentRequired" not in body
    assert_no_secrets(response.text)


def test_login_get_with_query_and_by_email(api: ParseClient) -> None:
    user = sign_up(api)
    by_get = api.get("/login", params={"username": user["username"], "password": PASSWORD})
    assert by_get.status_code == 200, by_get.text
    assert by_get.json()["objectId"] == user["objectId"]
    by_email = api.post("/login", {"email": user["email"].upper(), "password": PASSWORD})
    assert by_email.status_code == 200, by_email.text
    assert by_email.json()["objectId"] == user["objectId"]


def test_login_missing_fields(api: ParseClient) -> None:
    no_name = api.post("/login", {"password": PASSWORD})
    assert no_name.status_code == 400, no_name.text
    assert no_name.json()["code"] == 200
    no_password = api.post("/login", {"username": "someone"})
    assert no_password.status_code == 400, no_password.text
    assert no_password.json()["code"] == 201


def test_login_errors_identical_for_unknown_and_wrong_password(api: ParseClient) -> None:
    user = sign_up(api)
    unknown = login(api, unique_name("ghost"))
    wrong = login(api, user["username"], "wrong-password-123")
    unknown_email = api.post("/login", {"email": "ghost@example.org", "password": PASSWORD})
    for response in (unknown, wrong, unknown_email):
        assert_invalid_login(response)
    assert unknown.content == wrong.content == unknown_email.content
    assert unknown.headers["content-type"] == wrong.headers["content-type"]


def test_staff_login_requires_mfa_enrollment(api: ParseClient) -> None:
    provider = create_user(api, "provider")
    response = login(api, provider["username"])
    assert response.status_code == 200, response.text
    assert response.json()["mfaEnrollmentRequired"] is True
    token = response.json()["sessionToken"]
    me = api.get("/users/me", headers=session(token))
    assert me.status_code == 200, me.text
    denied = api.get("/users", headers=session(token))
    assert denied.status_code == 400, denied.text
    assert denied.json()["code"] == 119


def test_lockout_after_threshold_and_audited(api: ParseClient) -> None:
    user = sign_up(api)
    for _ in range(5):  # lockout_threshold default
        assert_invalid_login(login(api, user["username"], "wrong-password-123"))
    locked = login(api, user["username"])  # the right password is refused while locked
    assert_invalid_login(locked)
    assert locked.content == login(api, unique_name("ghost")).content
    actions = audit_actions(api, user["objectId"])
    assert actions.count("login.failure") == 5
    assert actions.count("account.locked") == 1
    assert "login.locked" in actions
    locked_entry = next(
        e for e in audit_entries(api, user["objectId"]) if e["action"] == "account.locked"
    )
    assert locked_entry["metadata"]["minutes"] == 15


def test_lockout_expires(api: ParseClient, live: LiveServer) -> None:
    user = sign_up(api)
    for _ in range(5):
        login(api, user["username"], "wrong-password-123")
    assert_invalid_login(login(api, user["username"]))
    run_sql(
        live,
        'UPDATE "_User" SET "_lockout_until" = :t WHERE "objectId" = :id',
        t=naive_utc(-timedelta(minutes=1)),
        id=user["objectId"],
    )
    assert login(api, user["username"]).status_code == 200


def test_success_resets_failure_count(api: ParseClient) -> None:
    user = sign_up(api)
    for _ in range(4):
        assert_invalid_login(login(api, user["username"], "wrong-password-123"))
    assert login(api, user["username"]).status_code == 200
    for _ in range(4):
        assert_invalid_login(login(api, user["username"], "wrong-password-123"))
    assert login(api, user["username"]).status_code == 200


def test_lockout_settings(backend_url: str, backend: str, tmp_path: Path) -> None:
    with identity_server(backend_url, backend, tmp_path, lockout_threshold=2) as srv:
        api = srv.client()
        user = sign_up(api)
        assert_invalid_login(login(api, user["username"], "wrong-password-123"))
        assert login(api, user["username"]).status_code == 200
        assert_invalid_login(login(api, user["username"], "wrong-password-123"))
        assert_invalid_login(login(api, user["username"], "wrong-password-123"))
        assert_invalid_login(login(api, user["username"]))


def test_login_rate_limit_per_ip(backend_url: str, backend: str, tmp_path: Path) -> None:
    with identity_server(backend_url, backend, tmp_path, login_rate_per_ip=3) as srv:
        api = srv.client()
        user = sign_up(api)
        assert login(api, user["username"]).status_code == 200
        assert_invalid_login(login(api, user["username"], "wrong-password-123"))
        assert_invalid_login(login(api, unique_name("ghost")))
        limited = login(api, user["username"])
        assert limited.status_code == 429, limited.text
        assert limited.json()["code"] == 155
        # Only log-in is limited: the session from sign-up still works.
        assert api.get("/users/me", headers=session(user["sessionToken"])).status_code == 200


def test_bcrypt_hash_imported_and_upgraded(api: ParseClient, live: LiveServer) -> None:
    user = sign_up(api)
    imported = "imported-bcrypt-pass-1"
    hashed = bcrypt.hashpw(imported.encode(), bcrypt.gensalt(rounds=4)).decode()
    run_sql(
        live,
        'UPDATE "_User" SET "_hashed_password" = :h WHERE "objectId" = :id',
        h=hashed,
        id=user["objectId"],
    )
    assert_invalid_login(login(api, user["username"], PASSWORD))
    response = login(api, user["username"], imported)
    assert response.status_code == 200, response.text
    (stored,) = run_sql(
        live, 'SELECT "_hashed_password" FROM "_User" WHERE "objectId" = :id', id=user["objectId"]
    )
    assert stored[0].startswith("$argon2id$")
    assert login(api, user["username"], imported).status_code == 200


# -- users -------------------------------------------------------------------------------------
def test_other_users_are_invisible(api: ParseClient) -> None:
    alice, bob = sign_up(api), sign_up(api)
    response = api.get(f"/users/{bob['objectId']}", headers=session(alice["sessionToken"]))
    assert response.status_code == 404, response.text
    assert response.json()["code"] == 101
    listed = api.get("/users", headers=session(alice["sessionToken"]))
    assert listed.status_code == 200, listed.text
    assert [u["objectId"] for u in listed.json()["results"]] == [alice["objectId"]]
    anonymous = api.get(f"/users/{bob['objectId']}")
    assert anonymous.status_code in (400, 404), anonymous.text
    assert anonymous.json()["code"] in (101, 119, 209)
    update = api.put(
        f"/users/{bob['objectId']}",
        {"username": unique_name("hijack")},
        headers=session(alice["sessionToken"]),
    )
    # Parse answers 206 for another user's row (rest.js handleSessionMissingError), never 101.
    assert update.status_code == 400, update.text
    assert update.json()["code"] == 206


def test_own_row_shows_email_never_secrets(api: ParseClient) -> None:
    user = sign_up(api)
    for path in ("/users/me", f"/users/{user['objectId']}"):
        response = api.get(path, headers=session(user["sessionToken"]))
        assert response.status_code == 200, response.text
        assert response.json()["email"] == user["email"]
        assert_no_secrets(response.text)
    master = api.get(f"/users/{user['objectId']}", master=True)
    assert master.status_code == 200, master.text
    assert_no_secrets(master.text)


@pytest.mark.parametrize(
    "body", [{"emailVerified": True}, {"authData": {"oidc": {"id": "someone-else"}}}]
)
def test_client_cannot_set_server_fields(api: ParseClient, body: dict[str, Any]) -> None:
    user = sign_up(api)
    response = api.put(f"/users/{user['objectId']}", body, headers=session(user["sessionToken"]))
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 119


def test_changing_email_resets_verification(api: ParseClient) -> None:
    user = sign_up(api)
    new_email = f"{unique_name('new')}@example.org"
    response = api.put(
        f"/users/{user['objectId']}",
        {"email": new_email.upper()},
        headers=session(user["sessionToken"]),
    )
    assert response.status_code == 200, response.text
    me = api.get("/users/me", headers=session(user["sessionToken"])).json()
    assert me["email"] == new_email
    assert me.get("emailVerified") is not True


def test_password_change_audited_and_effective(api: ParseClient) -> None:
    user = sign_up(api)
    response = api.put(
        f"/users/{user['objectId']}",
        {"password": NEW_PASSWORD},
        headers=session(user["sessionToken"]),
    )
    assert response.status_code == 200, response.text
    assert_no_secrets(response.text)
    assert_invalid_login(login(api, user["username"], PASSWORD))
    assert login(api, user["username"], NEW_PASSWORD).status_code == 200
    assert "user.password_change" in audit_actions(api, user["objectId"])


def test_password_change_checks_policy(api: ParseClient) -> None:
    user = sign_up(api)
    response = api.put(
        f"/users/{user['objectId']}", {"password": "short"}, headers=session(user["sessionToken"])
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 142
    assert login(api, user["username"]).status_code == 200


def test_verify_password(api: ParseClient) -> None:
    user = sign_up(api)
    ok = api.post("/verifyPassword", {"username": user["username"], "password": PASSWORD})
    assert ok.status_code == 200, ok.text
    assert ok.json()["objectId"] == user["objectId"]
    assert "sessionToken" not in ok.json()
    assert_no_secrets(ok.text)
    wrong = api.post("/verifyPassword", {"username": user["username"], "password": "nope-nope-1"})
    assert wrong.status_code == 404, wrong.text
    assert wrong.json() == INVALID_LOGIN


# -- audit -------------------------------------------------------------------------------------
def test_account_lifecycle_audited(api: ParseClient) -> None:
    user = sign_up(api)
    assert_invalid_login(login(api, user["username"], "wrong-password-123"))
    token = login_token(api, user["username"])
    assert api.post("/logout", {}, headers=session(token)).status_code == 200
    actions = audit_actions(api, user["objectId"])
    assert actions[0] == "user.signup"
    assert "login.failure" in actions
    assert "login.success" in actions
    logouts = api.find("AuditLog", where={"action": "logout"}, order="-createdAt", limit=1000)
    assert any(
        (e.get("actor") or {}).get("objectId") == user["objectId"] for e in logouts["results"]
    )
    unknown = api.find("AuditLog", where={"action": "login.failure", "entityId": "unknown"})
    assert unknown["results"]


def test_audit_log_not_readable_by_patient(api: ParseClient) -> None:
    user = sign_up(api)
    response = api.get("/classes/AuditLog", headers=session(user["sessionToken"]))
    if response.status_code == 200:
        assert response.json()["results"] == []
    else:
        assert response.json()["code"] in (101, 119)


def test_user_class_via_classes_route_same_rules(api: ParseClient) -> None:
    alice, bob = sign_up(api), sign_up(api)
    response = api.get(f"/classes/_User/{bob['objectId']}", headers=session(alice["sessionToken"]))
    assert response.status_code == 404, response.text
    assert response.json()["code"] == 101


def test_login_tunnelled_get_as_the_js_sdk_sends_it(api: ParseClient) -> None:
    user = sign_up(api)
    response = api.post(
        "/login", {"_method": "GET", "username": user["username"], "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    assert response.json()["objectId"] == user["objectId"]


def test_login_survives_rate_limiter_outage(backend_url: str, backend: str, tmp_path: Path) -> None:
    """With Redis unreachable the per-IP limit is skipped (account lockout still applies)."""
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    settings = make_settings(backend_url, tmp_path, redis_url=dead_redis)
    with live_server(settings, backend) as srv:
        api = srv.client()
        user = sign_up(api)
        response = login(api, user["username"])
        assert response.status_code == 200, response.text


# -- /verifyPassword obeys the same guessing limits as /login ---------------------------------
def test_verify_password_refused_while_locked(api: ParseClient) -> None:
    user = sign_up(api)
    for _ in range(5):
        assert_invalid_login(login(api, user["username"], "wrong-password-123"))
    assert_invalid_login(login(api, user["username"]))
    response = api.post("/verifyPassword", {"username": user["username"], "password": PASSWORD})
    assert response.status_code == 404, response.text
    assert response.json() == INVALID_LOGIN


def test_verify_password_failures_count_toward_lockout(api: ParseClient) -> None:
    user = sign_up(api)
    for _ in range(5):
        wrong = api.post(
            "/verifyPassword", {"username": user["username"], "password": "wrong-password-123"}
        )
        assert wrong.status_code == 404, wrong.text
    assert_invalid_login(login(api, user["username"]))


def test_verify_password_is_rate_limited(backend_url: str, backend: str, tmp_path: Path) -> None:
    with identity_server(backend_url, backend, tmp_path, login_rate_per_ip=3) as srv:
        api = srv.client()
        user = sign_up(api)
        body = {"username": user["username"], "password": "wrong-password-123"}
        for _ in range(3):
            assert api.post("/verifyPassword", body).status_code == 404
        limited = api.post("/verifyPassword", body)
        assert limited.status_code == 429, limited.text
        assert limited.json()["code"] == 155


# -- roles -------------------------------------------------------------------------------------
def test_patient_cannot_join_a_staff_role(api: ParseClient) -> None:
    patient = sign_up(api)
    admin_role = api.get("/roles", params={"where": {"name": "admin"}}, master=True).json()
    (role,) = admin_role["results"]
    response = api.put(
        f"/roles/{role['objectId']}",
        {
            "users": {
                "__op": "AddRelation",
                "objects": [
                    {"__type": "Pointer", "className": "_User", "objectId": patient["objectId"]}
                ],
            }
        },
        headers=session(patient["sessionToken"]),
    )
    assert response.status_code in (400, 404), response.text
    assert response.json()["code"] in (101, 119)
    assert roles_of(api, patient["objectId"]) == {"patient"}
    create = api.post(
        "/roles",
        {"name": "admin", "ACL": {"*": {"read": True}}},
        headers=session(patient["sessionToken"]),
    )
    assert create.status_code == 400, create.text
    assert create.json()["code"] in (119, 137)
