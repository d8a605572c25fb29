"""Second-factor gaps (issue 19, items 5 and 6), on SQLite and PostgreSQL.

5. Whether a session is restricted to MFA enrolment is decided at every use: a session made
   before MFA was required (for the account's new role, or by the server's setting) is
   restricted from then on.
6. A right password without its code is counted toward lockout and audited like a wrong one,
   and codes are rate limited per account.
"""

from __future__ import annotations

from pathlib import Path

import pyotp

from tests.api.identity_helpers import (
    PASSWORD,
    admin_session,
    audit_entries,
    create_user,
    enroll_mfa,
    identity_server,
    login,
    login_token,
    next_code,
    run_sql,
    session,
    sign_up,
)
from tests.support import ParseClient

RESTRICTED = "Multi-factor enrolment is required"


def _restricted(api: ParseClient, token: str) -> bool:
    answer = api.get("/classes/Appointment", headers=session(token))
    if answer.status_code == 200:
        return False
    assert answer.json()["code"] == 119 and RESTRICTED in answer.json()["error"], answer.text
    return True


def test_a_new_role_that_requires_mfa_restricts_existing_sessions(
    backend_url: str, backend: str, tmp_path: Path
) -> None:
    with identity_server(backend_url, backend, tmp_path, mfa_required_roles="provider") as live:
        api = live.client()
        _, admin_token = admin_session(api)
        person = sign_up(api)
        token = person["sessionToken"]
        assert not _restricted(api, token)
        granted = api.post(
            "/functions/grantRole",
            {"userId": person["objectId"], "role": "provider"},
            headers=session(admin_token),
        )
        assert granted.status_code == 200, granted.text
        assert _restricted(api, token)  # the same session, from its next use
        assert api.get("/users/me", headers=session(token)).status_code == 200
        enroll_mfa(api, token)  # enrolling in this session lifts it
        assert not _restricted(api, token)


def test_requiring_mfa_by_setting_restricts_sessions_made_before(
    backend_url: str, backend: str, tmp_path: Path
) -> None:
    with identity_server(backend_url, backend, tmp_path / "a", mfa_required_roles="") as live:
        api = live.client()
        provider = create_user(api, "provider")
        token = login_token(api, provider["username"])
        assert not _restricted(api, token)
    with identity_server(
        backend_url, backend, tmp_path / "b", mfa_required_roles="provider"
    ) as live:
        assert _restricted(live.client(), token)


def test_a_missing_code_is_counted_audited_and_locks_out(
    backend_url: str, backend: str, tmp_path: Path
) -> None:
    with identity_server(backend_url, backend, tmp_path, lockout_threshold=3) as live:
        api = live.client()
        provider = create_user(api, "provider")
        totp, _ = enroll_mfa(api, login_token(api, provider["username"]))
        for attempt in range(1, 3):
            answer = login(api, provider["username"])
            assert answer.json() == {"code": -1, "error": "Missing additional authData mfa"}
            (row,) = run_sql(
                live,
                'SELECT "_failed_login_count" FROM "_User" WHERE "objectId" = :id',
                id=provider["objectId"],
            )
            assert row[0] == attempt
        reasons = [
            e["metadata"].get("reason")
            for e in audit_entries(api, provider["objectId"])
            if e["action"] == "login.failure"
        ]
        assert reasons == ["mfa_missing", "mfa_missing"]
        login(api, provider["username"])  # the third: locked
        locked = login(api, provider["username"], authData={"mfa": {"token": next_code(totp)}})
        assert locked.json() == {"code": 101, "error": "Invalid username/password."}


def test_second_factor_codes_are_rate_limited_per_account(
    backend_url: str, backend: str, tmp_path: Path
) -> None:
    with identity_server(
        backend_url, backend, tmp_path, mfa_attempts_per_minute=2, lockout_threshold=100
    ) as live:
        api = live.client()
        provider = create_user(api, "provider")
        totp: pyotp.TOTP
        totp, _ = enroll_mfa(api, login_token(api, provider["username"]))
        for _ in range(2):
            wrong = login(
                api, provider["username"], PASSWORD, authData={"mfa": {"token": "000000"}}
            )
            assert wrong.json()["code"] == 101, wrong.text
        limited = login(api, provider["username"], authData={"mfa": {"token": next_code(totp)}})
        assert limited.status_code == 429 and limited.json()["code"] == 155, limited.text
