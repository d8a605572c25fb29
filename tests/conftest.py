"""Fixtures shared by every test: each backend for real (SQLite file, PostgreSQL database).

Tests that take ``backend_url``, ``server`` or ``client`` run once per backend. PostgreSQL is
skipped with a stated reason on a machine without it, and is a hard failure when
``MINDHARBOR_REQUIRE_SERVICES=1`` (which ``.ci/run`` sets).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    REQUIRE_SERVICES,
    LiveServer,
    ParseClient,
    live_server,
    make_settings,
    postgres_available,
    postgres_database,
)

_pg_checked: dict[str, bool] = {}


def _need_postgres() -> None:
    if "ok" not in _pg_checked:
        _pg_checked["ok"] = postgres_available()
    if not _pg_checked["ok"]:
        if REQUIRE_SERVICES:
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is required (MINDHARBOR_REQUIRE_SERVICES=1)")
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432: PostgreSQL variant skipped")


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def backend_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database URL for a fresh database, per backend, shared by the session."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'mindharbor.db'}"
        return
    _need_postgres()
    with postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own for one test (for tests that tamper with shared state)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    _need_postgres()
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def backend(backend_url: str) -> str:
    return "postgres" if backend_url.startswith("postgres") else "sqlite"


@pytest.fixture(scope="session")
def server(
    backend_url: str, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A live server per backend with the default settings (client class creation off), except
    that staff need no second factor here and logins are not rate limited: tests that exercise
    MFA or rate limits start their own server."""
    settings = make_settings(
        backend_url,
        tmp_path_factory.mktemp("data"),
        mfa_required_roles="",
        login_rate_per_ip=100_000,
    )
    with live_server(settings, backend) as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[ParseClient]:
    api = server.client()
    yield api
    api.http.close()
    server.clients.remove(api)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
