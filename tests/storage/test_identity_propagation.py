"""Cached identities and their change events, across two servers on one database (issue 13).

Each server here is a worker with its own identity cache. A revocation, a role change, a
care-team removal or a break-glass expiry made through one must be honoured by the other within
the documented bound (docs/identity-cache.md: ``PROPAGATION_BOUND`` below, far above the
measured p99, so a loaded CI machine does not flake), and at once by the server that made it.
With the PostgreSQL change feed cut, the other server reads every session from the database:
it never serves a stale identity. On SQLite the epoch row does the same job.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.api.identity_helpers import run_sql
from tests.domain.clinic import PASSWORD
from tests.support import LiveServer, ParseClient, live_server, make_settings, pointer

PROPAGATION_BOUND = 2.0  # seconds; measured p99 is in bench/RESULTS.md (identity propagation)


@pytest.fixture
def pair(fresh_backend_url: str, tmp_path: Path) -> Iterator[tuple[LiveServer, LiveServer]]:
    backend = "postgres" if fresh_backend_url.startswith("postgres") else "sqlite"
    with ExitStack() as stack:
        servers = [
            stack.enter_context(
                live_server(
                    make_settings(
                        fresh_backend_url,
                        tmp_path / name,
                        mfa_required_roles="",
                        login_rate_per_ip=100_000,
                    ),
                    backend,
                )
            )
            for name in ("a", "b")
        ]
        yield servers[0], servers[1]


def _user(api: ParseClient, role: str) -> tuple[str, str]:
    name = f"{role}_{uuid.uuid4().hex[:8]}"
    made = api.post("/users", {"username": name, "password": PASSWORD, "role": role}, master=True)
    assert made.status_code == 201, made.text
    token = api.post("/login", {"username": name, "password": PASSWORD}).json()["sessionToken"]
    return str(made.json()["objectId"]), str(token)


def _within(check: Callable[[], bool], bound: float = PROPAGATION_BOUND) -> float:
    """Seconds until ``check()`` holds; fails past ``bound``."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < bound, "not honoured within the bound"
        time.sleep(0.005)
    return time.monotonic() - start


def _as(token: str) -> dict[str, str]:
    return {"X-Parse-Session-Token": token}


def _profile(api: ParseClient, user: str) -> str:
    return api.create(
        "PatientProfile",
        {
            "user": pointer("_User", user),
            "medicalRecordNumber": uuid.uuid4().hex,
            "displayName": "P",
            "isActive": True,
        },
    )


def test_a_revoked_session_is_refused_everywhere(pair: tuple[LiveServer, LiveServer]) -> None:
    a, b = (s.client() for s in pair)
    _, token = _user(a, "patient")
    for api in (a, b):  # both cache it
        assert api.get("/users/me", headers=_as(token)).status_code == 200
    assert b.get("/users/me", headers=_as(token)).status_code == 200
    assert a.post("/logout", {}, headers=_as(token)).status_code == 200
    assert a.get("/users/me", headers=_as(token)).status_code == 400  # the revoker: at once
    _within(lambda: b.get("/users/me", headers=_as(token)).status_code == 400)
    # Revoking every session of an account (a password change) too.
    user, first = _user(a, "patient")
    second = a.post(
        "/login",
        {
            "username": a.get("/users/me", headers=_as(first)).json()["username"],
            "password": PASSWORD,
        },
    ).json()["sessionToken"]
    assert b.get("/users/me", headers=_as(first)).status_code == 200
    changed = a.put(
        f"/users/{user}", {"password": "another long passphrase 2"}, headers=_as(second)
    )
    assert changed.status_code == 200, changed.text
    _within(lambda: b.get("/users/me", headers=_as(first)).status_code == 400)


def test_care_team_changes_reach_the_other_server(pair: tuple[LiveServer, LiveServer]) -> None:
    a, b = (s.client() for s in pair)
    patient, _ = _user(a, "patient")
    provider, token = _user(a, "provider")
    profile = _profile(a, patient)
    path = f"/classes/PatientProfile/{profile}"
    assert b.get(path, headers=_as(token)).status_code == 404  # cached: not on the team
    args = {"patientId": profile, "providerId": provider}
    assert a.post("/functions/assignProvider", args, master=True).status_code == 200
    assert a.get(path, headers=_as(token)).status_code == 200
    _within(lambda: b.get(path, headers=_as(token)).status_code == 200)
    assert a.post("/functions/unassignProvider", args, master=True).status_code == 200
    assert a.get(path, headers=_as(token)).status_code == 404
    _within(lambda: b.get(path, headers=_as(token)).status_code == 404)


def test_a_role_change_reaches_the_other_server(pair: tuple[LiveServer, LiveServer]) -> None:
    a, b = (s.client() for s in pair)
    user, token = _user(a, "patient")
    assert b.get("/classes/AuditLog", headers=_as(token)).status_code == 400  # 119
    granted = a.post("/functions/grantRole", {"userId": user, "role": "compliance"}, master=True)
    assert granted.status_code == 200, granted.text
    _within(lambda: b.get("/classes/AuditLog", headers=_as(token)).status_code == 200)
    revoked = a.post("/functions/revokeRole", {"userId": user, "role": "compliance"}, master=True)
    assert revoked.status_code == 200, revoked.text
    _within(lambda: b.get("/classes/AuditLog", headers=_as(token)).status_code == 400)


def test_break_glass_ends_at_its_expiry_everywhere(pair: tuple[LiveServer, LiveServer]) -> None:
    a, b = (s.client() for s in pair)
    patient, _ = _user(a, "patient")
    _, token = _user(a, "provider")
    profile = _profile(a, patient)
    path = f"/classes/PatientProfile/{profile}"
    granted = a.post(
        "/functions/requestEmergencyAccess",
        {"patientId": profile, "reason": "unresponsive in the ER"},
        headers=_as(token),
    )
    assert granted.status_code == 200, granted.text
    ends = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=2)
    run_sql(
        pair[0],
        'UPDATE "_EmergencyGrant" SET "expiresAt" = :t WHERE "objectId" = :id',
        t=ends,
        id=granted.json()["result"]["grantId"],
    )
    for api in (a, b):
        assert api.get(path, headers=_as(token)).status_code == 200
    time.sleep(max(0.0, (ends - datetime.now(UTC).replace(tzinfo=None)).total_seconds()))
    for api in (a, b):  # no event needed: a cached identity is never used past a grant's end
        assert api.get(path, headers=_as(token)).status_code == 404


def test_without_the_change_feed_sessions_are_read_from_the_database(
    pair: tuple[LiveServer, LiveServer],
) -> None:
    if pair[0].backend != "postgres":
        pytest.skip("the change feed is PostgreSQL's LISTEN connection")
    a, b = (s.client() for s in pair)
    _, token = _user(a, "patient")
    assert b.get("/users/me", headers=_as(token)).status_code == 200  # cached in b
    cache = pair[1].store.identities
    assert cache.trusted and len(cache) >= 1
    feed = pair[1].store.identity_feed
    pid = feed.connection.get_server_pid()
    run_sql(pair[0], "SELECT pg_terminate_backend(:pid)", pid=pid)
    # No waiting: the revocation's NOTIFY may be lost with the connection, and b must not
    # answer from its cache meanwhile.
    assert a.post("/logout", {}, headers=_as(token)).status_code == 200
    assert b.get("/users/me", headers=_as(token)).status_code == 400
    # While it reconnects, b serves from the database; then it caches again.
    _, other = _user(a, "patient")
    assert b.get("/users/me", headers=_as(other)).status_code == 200
    _within(lambda: cache.trusted and feed.connection is not None, bound=15)
    assert feed.connection.get_server_pid() != pid
    assert b.get("/users/me", headers=_as(other)).status_code == 200
    assert len(cache) >= 1
