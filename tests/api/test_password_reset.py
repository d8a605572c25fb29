"""Password reset over the REST API: the mailed link, the resetPassword function, expiry, reuse.

The default mailer writes ``.eml`` files to ``data_dir/outbox``; the tests read them back.
Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import email
import email.policy
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.identity_helpers import (
    NEW_PASSWORD,
    PASSWORD,
    assert_invalid_login,
    assert_invalid_session,
    audit_actions,
    identity_server,
    login,
    login_token,
    naive_utc,
    run_sql,
    session,
    sign_up,
    unique_name,
)
from tests.support import APP_ID, LiveServer, ParseClient

INVALID_RESET = {"code": 142, "error": "This password reset link is invalid or has expired."}


@pytest.fixture(scope="module")
def live(
    backend_url: str, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("reset")
    with identity_server(backend_url, backend, data, public_url="https://ehr.example.org") as srv:
        yield srv


def outbox(live: LiveServer) -> Path:
    return Path(live.settings.data_dir) / "outbox"


def mails_to(live: LiveServer, address: str) -> list[email.message.EmailMessage]:
    folder = outbox(live)
    if not folder.exists():
        return []
    found = []
    for path in sorted(folder.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        if message["To"] == address:
            found.append(message)
    return found


def wait_for_mails(live: LiveServer, address: str, count: int) -> list[email.message.EmailMessage]:
    deadline = time.monotonic() + 10
    while True:
        mails = mails_to(live, address)
        if len(mails) >= count or time.monotonic() > deadline:
            return mails
        time.sleep(0.05)


def body_of(message: email.message.EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def token_from(message: email.message.EmailMessage) -> str:
    match = re.search(r"token=([A-Za-z0-9_\-]+)", body_of(message))
    assert match, body_of(message)
    return match.group(1)


def request_reset(api: ParseClient, address: str) -> httpx.Response:
    return api.post("/requestPasswordReset", {"email": address})


def reset(api: ParseClient, token: Any, password: Any = NEW_PASSWORD) -> httpx.Response:
    return api.post("/functions/resetPassword", {"token": token, "password": password})


def mailed_token(api: ParseClient, live: LiveServer, address: str) -> str:
    before = len(mails_to(live, address))
    response = request_reset(api, address)
    assert response.status_code == 200, response.text
    assert response.json() == {}
    mails = wait_for_mails(live, address, before + 1)
    assert len(mails) == before + 1
    return token_from(mails[-1])


def assert_invalid_reset(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json() == INVALID_RESET


# -- requesting a reset ------------------------------------------------------------------------
def test_request_mails_a_link(api: ParseClient, live: LiveServer) -> None:
    user = sign_up(api)
    response = request_reset(api, user["email"])
    assert response.status_code == 200, response.text
    assert response.json() == {}
    (mail,) = wait_for_mails(live, user["email"], 1)
    assert "password" in mail["Subject"].lower()
    body = body_of(mail)
    assert f"https://ehr.example.org/parse/apps/{APP_ID}/choose_password?token=" in body
    assert len(token_from(mail)) >= 32
    assert "user.password_reset_request" in audit_actions(api, user["objectId"])


def test_request_matches_email_case_insensitively(api: ParseClient, live: LiveServer) -> None:
    user = sign_up(api)
    response = request_reset(api, user["email"].upper())
    assert response.status_code == 200, response.text
    assert len(wait_for_mails(live, user["email"], 1)) == 1


def test_unknown_email_same_answer_and_no_mail(api: ParseClient, live: LiveServer) -> None:
    user = sign_up(api)
    known = request_reset(api, user["email"])
    ghost = f"{unique_name('ghost')}@example.org"
    unknown = request_reset(api, ghost)
    assert unknown.status_code == known.status_code == 200
    assert unknown.content == known.content
    wait_for_mails(live, user["email"], 1)
    assert mails_to(live, ghost) == []


def test_request_without_email(api: ParseClient) -> None:
    response = api.post("/requestPasswordReset", {})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 204


# -- using the token ---------------------------------------------------------------------------
def test_reset_changes_password_and_ends_sessions(api: ParseClient, live: LiveServer) -> None:
    user = sign_up(api)
    other = login_token(api, user["username"])
    token = mailed_token(api, live, user["email"])
    response = reset(api, token)
    assert response.status_code == 200, response.text
    assert response.json() == {"result": {}}
    assert_invalid_session(api.get("/users/me", headers=session(user["sessionToken"])))
    assert_invalid_session(api.get("/users/me", headers=session(other)))
    assert_invalid_login(login(api, user["username"], PASSWORD))
    assert login(api, user["username"], NEW_PASSWORD).status_code == 200
    assert "user.password_reset" in audit_actions(api, user["objectId"])


def test_token_single_use(api: ParseClient, live: LiveServer) -> None:
    user = sign_up(api)
    token = mailed_token(api, live, user["email"])
    assert reset(api, token).status_code == 200
    assert_invalid_reset(reset(api, token, "yet-another-passphrase-3"))
    assert login(api, user["username"], NEW_PASSWORD).status_code == 200


def test_expired_token_refused(api: ParseClient, live: LiveServer) -> None:
    user = sign_up(api)
    token = mailed_token(api, live, user["email"])
    run_sql(
        live,
        'UPDATE "_User" SET "_reset_token_expires" = :t WHERE "objectId" = :id',
        t=naive_utc(-timedelta(seconds=5)),
        id=user["objectId"],
    )
    assert_invalid_reset(reset(api, token))
    assert login(api, user["username"], PASSWORD).status_code == 200


def test_token_expires_after_configured_minutes(api: ParseClient, live: LiveServer) -> None:
    user = sign_up(api)
    mailed_token(api, live, user["email"])
    (row,) = run_sql(
        live,
        'SELECT "_reset_token_expires" FROM "_User" WHERE "objectId" = :id',
        id=user["objectId"],
    )
    expires = row[0]
    if isinstance(expires, str):
        expires = datetime.fromisoformat(expires)
    remaining = expires - naive_utc()
    assert timedelta(minutes=29) < remaining <= timedelta(minutes=30)


@pytest.mark.parametrize("token", ["", "bogus", "x" * 5000, 42, None])
def test_bogus_token_refused(api: ParseClient, token: Any) -> None:
    assert_invalid_reset(reset(api, token))


def test_newer_request_replaces_older_token(api: ParseClient, live: LiveServer) -> None:
    user = sign_up(api)
    first = mailed_token(api, live, user["email"])
    second = mailed_token(api, live, user["email"])
    assert first != second
    assert_invalid_reset(reset(api, first))
    assert reset(api, second).status_code == 200


def test_weak_password_refused_and_token_kept(api: ParseClient, live: LiveServer) -> None:
    user = sign_up(api)
    token = mailed_token(api, live, user["email"])
    weak = reset(api, token, "short")
    assert weak.status_code == 400, weak.text
    assert weak.json()["code"] == 142
    assert weak.json() != INVALID_RESET
    assert login(api, user["username"], PASSWORD).status_code == 200
    assert reset(api, token).status_code == 200


def test_reset_clears_lockout(api: ParseClient, live: LiveServer) -> None:
    user = sign_up(api)
    for _ in range(5):
        login(api, user["username"], "wrong-password-123")
    assert_invalid_login(login(api, user["username"]))
    token = mailed_token(api, live, user["email"])
    assert reset(api, token).status_code == 200
    assert login(api, user["username"], NEW_PASSWORD).status_code == 200


def test_reset_token_stored_hashed(api: ParseClient, live: LiveServer) -> None:
    user = sign_up(api)
    token = mailed_token(api, live, user["email"])
    (row,) = run_sql(
        live,
        'SELECT "_reset_token_hash" FROM "_User" WHERE "objectId" = :id',
        id=user["objectId"],
    )
    assert row[0]
    assert token not in row[0]
    listed = api.get(f"/users/{user['objectId']}", master=True)
    assert token not in listed.text
    assert "_reset_token" not in listed.text


def test_reset_page_served(api: ParseClient, live: LiveServer) -> None:
    page = api.http.get(f"/apps/{APP_ID}/choose_password", params={"token": "abc"})
    assert page.status_code == 200, page.text
    assert "text/html" in page.headers["content-type"]
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"
    other = api.http.get("/apps/another-app/choose_password")
    assert other.status_code == 404
