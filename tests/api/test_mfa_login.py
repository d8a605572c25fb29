"""TOTP multi-factor log-in over the REST API: enrolment, restricted sessions, codes, recovery.

Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest

from tests.api.identity_helpers import (
    PASSWORD,
    assert_invalid_login,
    audit_actions,
    create_user,
    enroll_mfa,
    identity_server,
    login,
    next_code,
    run_sql,
    session,
    session_id,
    sign_up,
)
from tests.support import LiveServer, ParseClient

MISSING_MFA = {"code": -1, "error": "Missing additional authData mfa"}


@pytest.fixture(scope="module")
def live(
    backend_url: str, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with identity_server(backend_url, backend, tmp_path_factory.mktemp("mfa")) as srv:
        yield srv


def mfa_login(api: ParseClient, username: str, code: str, password: str = PASSWORD) -> Any:
    return login(api, username, password, authData={"mfa": {"token": code}})


def failed_count(live: LiveServer, user_id: str) -> int:
    (row,) = run_sql(
        live, 'SELECT "_failed_login_count" FROM "_User" WHERE "objectId" = :id', id=user_id
    )
    return int(row[0] or 0)


def enrolled_patient(api: ParseClient) -> tuple[dict[str, Any], pyotp.TOTP, list[str]]:
    user = sign_up(api)
    totp, codes = enroll_mfa(api, user["sessionToken"])
    return user, totp, codes


# -- enrolment ---------------------------------------------------------------------------------
def test_enroll_returns_secret_and_uri(api: ParseClient) -> None:
    user = sign_up(api)
    response = api.post("/functions/enrollMfa", {}, headers=session(user["sessionToken"]))
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert len(result["secret"]) >= 16
    pyotp.TOTP(result["secret"]).now()  # valid base32
    assert result["uri"].startswith("otpauth://totp/")
    assert "issuer=MindHarbor" in result["uri"]
    assert result["secret"] in result["uri"]


def test_enroll_requires_session(api: ParseClient) -> None:
    response = api.post("/functions/enrollMfa", {})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 209


def test_confirm_with_wrong_code_refused(api: ParseClient) -> None:
    user = sign_up(api)
    enrolled = api.post("/functions/enrollMfa", {}, headers=session(user["sessionToken"]))
    secret = enrolled.json()["result"]["secret"]
    wrong = str((int(pyotp.TOTP(secret).now()) + 1) % 1_000_000).zfill(6)
    response = api.post(
        "/functions/confirmMfa", {"code": wrong}, headers=session(user["sessionToken"])
    )
    assert response.status_code == 400, response.text
    assert response.json() == {"code": 141, "error": "Invalid code."}
    # Not enabled: log-in still needs no second factor.
    assert login(api, user["username"]).status_code == 200


def test_confirm_without_enrolment_refused(api: ParseClient) -> None:
    user = sign_up(api)
    response = api.post(
        "/functions/confirmMfa", {"code": "123456"}, headers=session(user["sessionToken"])
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 141


def test_confirm_returns_recovery_codes_and_audits(api: ParseClient) -> None:
    user, _, codes = enrolled_patient(api)
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert "mfa.enable" in audit_actions(api, user["objectId"])


def test_enroll_again_when_enabled_refused(api: ParseClient) -> None:
    user, _, _ = enrolled_patient(api)
    response = api.post("/functions/enrollMfa", {}, headers=session(user["sessionToken"]))
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 141


def test_mfa_secret_never_exposed(api: ParseClient, live: LiveServer) -> None:
    user, totp, codes = enrolled_patient(api)
    for path in ("/users/me", f"/users/{user['objectId']}"):
        text = api.get(path, headers=session(user["sessionToken"])).text
        assert totp.secret not in text
        assert "_mfa" not in text
    assert totp.secret not in api.get(f"/users/{user['objectId']}", master=True).text
    (row,) = run_sql(live, 'SELECT "_mfa" FROM "_User" WHERE "objectId" = :id', id=user["objectId"])
    stored = row[0] if isinstance(row[0], str) else json.dumps(row[0])
    for code in codes:  # recovery codes are stored hashed only
        assert code not in stored
        assert code.replace("-", "") not in stored


# -- log-in with a second factor ---------------------------------------------------------------
def test_login_without_code_is_missing_mfa(api: ParseClient) -> None:
    user, _, _ = enrolled_patient(api)
    response = login(api, user["username"])
    assert response.status_code == 400, response.text
    assert response.json() == MISSING_MFA
    empty = login(api, user["username"], authData={"mfa": {}})
    assert empty.status_code == 400, empty.text
    assert empty.json() == MISSING_MFA


def test_wrong_password_with_mfa_user_is_plain_invalid_login(api: ParseClient) -> None:
    user, totp, _ = enrolled_patient(api)
    assert_invalid_login(login(api, user["username"], "wrong-password-123"))
    assert_invalid_login(mfa_login(api, user["username"], next_code(totp), "wrong-password-123"))


def test_login_with_next_code(api: ParseClient) -> None:
    user, totp, _ = enrolled_patient(api)
    response = mfa_login(api, user["username"], next_code(totp))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["objectId"] == user["objectId"]
    assert body["sessionToken"].startswith("r:")
    assert "mfaEnrollmentRequired" not in body


def test_wrong_code_counts_as_failed_login(api: ParseClient, live: LiveServer) -> None:
    user, totp, _ = enrolled_patient(api)
    wrong = str((int(next_code(totp)) + 500_000) % 1_000_000).zfill(6)
    before = len([a for a in audit_actions(api, user["objectId"]) if a == "login.failure"])
    assert_invalid_login(mfa_login(api, user["username"], wrong))
    assert failed_count(live, user["objectId"]) == 1
    after = len([a for a in audit_actions(api, user["objectId"]) if a == "login.failure"])
    assert after == before + 1


def test_wrong_codes_lock_the_account(api: ParseClient) -> None:
    user, totp, _ = enrolled_patient(api)
    for _ in range(5):
        assert_invalid_login(mfa_login(api, user["username"], "000000"))
    assert_invalid_login(mfa_login(api, user["username"], next_code(totp)))
    assert "account.locked" in audit_actions(api, user["objectId"])


def test_confirming_code_cannot_be_replayed_for_login(api: ParseClient) -> None:
    user = sign_up(api)
    token = user["sessionToken"]
    secret = api.post("/functions/enrollMfa", {}, headers=session(token)).json()["result"]["secret"]
    totp = pyotp.TOTP(secret)
    code = totp.now()
    confirmed = api.post("/functions/confirmMfa", {"code": code}, headers=session(token))
    assert confirmed.status_code == 200, confirmed.text
    # Refused whether or not the 30-second step has moved on: that step is spent.
    assert_invalid_login(mfa_login(api, user["username"], code))


def test_login_code_cannot_be_replayed(api: ParseClient) -> None:
    user, totp, _ = enrolled_patient(api)
    code = next_code(totp)
    first = mfa_login(api, user["username"], code)
    assert first.status_code == 200, first.text
    assert_invalid_login(mfa_login(api, user["username"], code))


def test_recovery_code_works_once(api: ParseClient) -> None:
    user, _, codes = enrolled_patient(api)
    first = mfa_login(api, user["username"], codes[0])
    assert first.status_code == 200, first.text
    assert first.json()["objectId"] == user["objectId"]
    assert_invalid_login(mfa_login(api, user["username"], codes[0]))
    other = mfa_login(api, user["username"], codes[1].upper().replace("-", ""))
    assert other.status_code == 200, other.text
    assert audit_actions(api, user["objectId"]).count("mfa.recovery_code_used") == 2


def test_disable_mfa_for_patient(api: ParseClient) -> None:
    user, totp, _ = enrolled_patient(api)
    wrong = api.post(
        "/functions/disableMfa", {"code": "000000"}, headers=session(user["sessionToken"])
    )
    assert wrong.status_code == 400, wrong.text
    assert wrong.json()["code"] == 141
    done = api.post(
        "/functions/disableMfa", {"code": next_code(totp)}, headers=session(user["sessionToken"])
    )
    assert done.status_code == 200, done.text
    assert login(api, user["username"]).status_code == 200
    assert "mfa.disable" in audit_actions(api, user["objectId"])


# -- staff: enrolment required -----------------------------------------------------------------
RESTRICTED_DENIED = [
    ("GET", "/users", None),
    ("GET", "/sessions", None),
    ("GET", "/classes/AuditLog", None),
    ("GET", "/roles", None),
    ("POST", "/functions/createInvitation", {"role": "provider"}),
    ("POST", "/functions/disableMfa", {"code": "000000"}),
    ("POST", "/batch", {"requests": [{"method": "GET", "path": "/parse/users"}]}),
]


@pytest.mark.parametrize("role", ["provider", "admin", "compliance"])
def test_staff_session_restricted_until_enrolled(api: ParseClient, role: str) -> None:
    staff = create_user(api, role)
    response = login(api, staff["username"])
    assert response.status_code == 200, response.text
    assert response.json()["mfaEnrollmentRequired"] is True
    token = response.json()["sessionToken"]
    sid = session_id(api, token)
    me = api.get("/sessions/me", headers=session(token))
    assert me.json()["restricted"] is True
    for method, path, body in [
        *RESTRICTED_DENIED,
        ("GET", f"/users/{staff['objectId']}", None),
        ("PUT", f"/users/{staff['objectId']}", {"username": staff["username"] + "x"}),
        ("DELETE", f"/sessions/{sid}", None),
    ]:
        denied = api.request(method, path, json=body, headers=session(token))
        if path == "/batch" and denied.status_code == 200:  # refused entry by entry
            assert denied.json()[0]["error"]["code"] == 119, denied.text
            continue
        assert denied.status_code == 400, (method, path, denied.text)
        assert denied.json()["code"] == 119, (method, path, denied.text)
    assert api.get("/users/me", headers=session(token)).status_code == 200

    enroll_mfa(api, token)
    assert api.get("/sessions/me", headers=session(token)).json()["restricted"] is False
    assert api.get("/users", headers=session(token)).status_code == 200
    assert "mfa.enable" in audit_actions(api, staff["objectId"])


def test_restricted_session_logout_allowed(api: ParseClient) -> None:
    provider = create_user(api, "provider")
    token = login(api, provider["username"]).json()["sessionToken"]
    assert api.post("/logout", {}, headers=session(token)).status_code == 200
    assert api.get("/users/me", headers=session(token)).json()["code"] == 209


def test_restricted_session_with_installation_id_still_restricted(api: ParseClient) -> None:
    provider = create_user(api, "provider")
    token = login(api, provider["username"]).json()["sessionToken"]
    response = api.get("/users", headers={**session(token), "X-Parse-Installation-Id": "device-1"})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 119


def test_restricted_session_cannot_escape_through_batch(api: ParseClient) -> None:
    provider = create_user(api, "provider")
    token = login(api, provider["username"]).json()["sessionToken"]
    response = api.post(
        "/batch",
        {"requests": [{"method": "GET", "path": "/parse/users"}]},
        headers=session(token),
    )
    if response.status_code == 200:
        assert response.json()[0]["error"]["code"] == 119, response.text
    else:
        assert response.json()["code"] == 119, response.text


def test_enrolled_staff_login_needs_code_and_is_unrestricted(api: ParseClient) -> None:
    provider = create_user(api, "provider")
    token = login(api, provider["username"]).json()["sessionToken"]
    totp, _ = enroll_mfa(api, token)
    assert login(api, provider["username"]).json() == MISSING_MFA
    response = mfa_login(api, provider["username"], next_code(totp))
    assert response.status_code == 200, response.text
    assert "mfaEnrollmentRequired" not in response.json()
    fresh = response.json()["sessionToken"]
    assert api.get("/sessions/me", headers=session(fresh)).json()["restricted"] is False
    assert api.get("/users", headers=session(fresh)).status_code == 200


def test_staff_cannot_disable_mfa(api: ParseClient) -> None:
    provider = create_user(api, "provider")
    token = login(api, provider["username"]).json()["sessionToken"]
    totp, _ = enroll_mfa(api, token)
    response = api.post("/functions/disableMfa", {"code": next_code(totp)}, headers=session(token))
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 119


def test_patient_not_required_to_enroll(api: ParseClient) -> None:
    user = sign_up(api)
    response = login(api, user["username"])
    assert "mfaEnrollmentRequired" not in response.json()
    assert (
        api.get("/sessions/me", headers=session(user["sessionToken"])).json()["restricted"] is False
    )


def test_mfa_required_roles_configurable(backend_url: str, backend: str, tmp_path: Path) -> None:
    with identity_server(backend_url, backend, tmp_path, mfa_required_roles="patient,admin") as srv:
        api = srv.client()
        provider = create_user(api, "provider")
        staff = login(api, provider["username"])
        assert staff.status_code == 200, staff.text
        assert "mfaEnrollmentRequired" not in staff.json()
        patient = api.post(
            "/users", {"username": f"{provider['username']}_p", "password": PASSWORD}
        )
        assert patient.status_code == 201, patient.text
        assert patient.json()["mfaEnrollmentRequired"] is True
        token = patient.json()["sessionToken"]
        assert api.get("/users", headers=session(token)).json()["code"] == 119
