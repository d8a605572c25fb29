"""Shared helpers for the identity API tests (accounts, sessions, MFA, SSO, password reset).

Each identity test module runs its own live server per backend (module scope) with a high
per-IP login rate: every test client connects from 127.0.0.1, so the default 30 logins a
minute would be spent by the suite itself. Tests of the rate limit start their own server.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyotp
import sqlalchemy as sa

from mindharbor.settings import Settings
from mindharbor.storage.identity import announce_out_of_band
from tests.support import LiveServer, ParseClient, live_server, make_settings, open_store

PASSWORD = "correct-horse-battery-9"
NEW_PASSWORD = "another-long-passphrase-7"
INVALID_LOGIN = {"code": 101, "error": "Invalid username/password."}
INVALID_SESSION = {"code": 209, "error": "Invalid session token"}
GENEROUS_LOGIN_RATE = 100_000


@contextmanager
def identity_server(
    backend_url: str, backend: str, data_dir: Path, **overrides: Any
) -> Iterator[LiveServer]:
    overrides.setdefault("login_rate_per_ip", GENEROUS_LOGIN_RATE)
    with live_server(make_settings(backend_url, data_dir, **overrides), backend) as live:
        yield live


def unique_name(prefix: str = "user") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def session(token: str) -> dict[str, str]:
    return {"X-Parse-Session-Token": token}


def naive_utc(delta: timedelta = timedelta()) -> datetime:
    return datetime.now(UTC).replace(tzinfo=None) + delta


def sign_up(
    api: ParseClient, *, email: bool = True, password: str = PASSWORD, **extra: Any
) -> dict[str, Any]:
    """A self-signed-up patient: {objectId, createdAt, sessionToken, username, email?}."""
    username = unique_name("pat")
    body: dict[str, Any] = {"username": username, "password": password, **extra}
    if email:
        body.setdefault("email", f"{username}@example.org")
    response = api.post("/users", body)
    assert response.status_code == 201, response.text
    return {**response.json(), "username": username, "email": body.get("email")}


def create_user(api: ParseClient, role: str, *, password: str = PASSWORD) -> dict[str, Any]:
    """A user of ``role`` created with the master key (no session): {objectId, username, email}."""
    username = unique_name(role)
    email = f"{username}@example.org"
    response = api.post(
        "/users",
        {"username": username, "password": password, "email": email, "role": role},
        master=True,
    )
    assert response.status_code == 201, response.text
    assert "sessionToken" not in response.json()
    return {"objectId": response.json()["objectId"], "username": username, "email": email}


def login(
    api: ParseClient, username: str, password: str = PASSWORD, **extra: Any
) -> httpx.Response:
    return api.post("/login", {"username": username, "password": password, **extra})


def login_token(api: ParseClient, username: str, password: str = PASSWORD) -> str:
    response = login(api, username, password)
    assert response.status_code == 200, response.text
    return str(response.json()["sessionToken"])


def enroll_mfa(api: ParseClient, token: str) -> tuple[pyotp.TOTP, list[str]]:
    """Enrol and confirm TOTP with ``token``'s session; returns (totp, recovery codes).

    The confirming code's time step is spent; use ``next_code`` for the next login."""
    response = api.post("/functions/enrollMfa", {}, headers=session(token))
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert set(result) >= {"secret", "uri"}
    totp = pyotp.TOTP(result["secret"])
    response = api.post("/functions/confirmMfa", {"code": totp.now()}, headers=session(token))
    assert response.status_code == 200, response.text
    codes = response.json()["result"]["recoveryCodes"]
    assert isinstance(codes, list) and codes
    return totp, codes


def next_code(totp: pyotp.TOTP) -> str:
    """The code of the next 30-second step (accepted: the server allows one step of drift)."""
    return str(totp.at(time.time() + 30))


def admin_session(api: ParseClient) -> tuple[dict[str, Any], str]:
    """An admin created with the master key, logged in and MFA-enrolled (unrestricted)."""
    admin = create_user(api, "admin")
    response = login(api, admin["username"])
    assert response.status_code == 200, response.text
    token = response.json()["sessionToken"]
    enroll_mfa(api, token)
    return admin, token


def audit_entries(api: ParseClient, entity_id: str) -> list[dict[str, Any]]:
    found = api.find("AuditLog", where={"entityId": entity_id}, order="createdAt", limit=1000)
    return list(found["results"])


def audit_actions(api: ParseClient, entity_id: str) -> list[str]:
    return [entry["action"] for entry in audit_entries(api, entity_id)]


async def _execute(settings: Settings, sql: str, params: dict[str, Any]) -> list[Any]:
    statement = sa.text(sql)
    datetimes = [k for k, v in params.items() if isinstance(v, datetime)]
    if datetimes:
        statement = statement.bindparams(*(sa.bindparam(k, type_=sa.DateTime()) for k in datetimes))
    async with open_store(settings) as store:
        async with store.engine.begin() as conn:
            result = await conn.execute(statement, params)
            rows = list(result.fetchall()) if result.returns_rows else []
            if not sql.lstrip().upper().startswith("SELECT"):
                # As an operator must: changed outside the API, so tell every worker.
                await announce_out_of_band(conn, store.dialect)
        if store.dialect == "postgresql" and not sql.lstrip().upper().startswith("SELECT"):
            await asyncio.sleep(0.1)  # NOTIFY reaches the server's listener asynchronously
        return rows


def run_sql(live: LiveServer, sql: str, **params: Any) -> list[Any]:
    """Run one SQL statement against the server's database (outside the API); a change is
    announced to the server's identity caches, as ``storage.identity`` says it must be."""
    return asyncio.run(_execute(live.settings, sql, params))


def session_id(api: ParseClient, token: str) -> str:
    response = api.get("/sessions/me", headers=session(token))
    assert response.status_code == 200, response.text
    return str(response.json()["objectId"])


def assert_invalid_session(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json() == INVALID_SESSION


def assert_invalid_login(response: httpx.Response) -> None:
    assert response.status_code == 404, response.text
    assert response.json() == INVALID_LOGIN
