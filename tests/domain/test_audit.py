"""The audit log: one entry per PHI read request, every write, same transaction, no PHI values,
append-only in the API and the database, and tamper evidence that verify-audit checks."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from mindharbor.domain.audit import seal_pending, verify
from mindharbor.security.auth import Auth
from mindharbor.storage import audit_chain
from tests.support import live_server, make_settings, open_store, pointer

PASSWORD = "a long enough passphrase"


def _user(api: Any, role: str) -> tuple[str, str]:
    name = f"{role}_{uuid.uuid4().hex[:8]}"
    made = api.post("/users", {"username": name, "password": PASSWORD, "role": role}, master=True)
    assert made.status_code == 201, made.text
    token = api.post("/login", {"username": name, "password": PASSWORD}).json()["sessionToken"]
    return str(made.json()["objectId"]), str(token)


def _entries(api: Any, **where: Any) -> list[dict[str, Any]]:
    found = api.get(
        "/classes/AuditLog",
        master=True,
        params={"where": where, "order": "createdAt", "limit": "1000"},
    )
    return list(found.json()["results"])


@pytest.fixture
def clinic(backend_url: str, backend: str, tmp_path: Path) -> Any:
    settings = make_settings(
        backend_url, tmp_path, mfa_required_roles="", login_rate_per_ip=100_000
    )
    with live_server(settings, backend) as live:
        api = live.client()
        patient_id, patient_token = _user(api, "patient")
        provider_id, provider_token = _user(api, "provider")
        secret_name = f"Zebulon Secretname {uuid.uuid4().hex[:6]}"
        profile = api.create(
            "PatientProfile",
            {
                "user": pointer("_User", patient_id),
                "medicalRecordNumber": uuid.uuid4().hex,
                "displayName": secret_name,
                "isActive": True,
            },
        )
        api.post(
            "/functions/assignProvider",
            {"patientId": profile, "providerId": provider_id},
            master=True,
        )
        yield {
            "api": api,
            "patient": (patient_id, patient_token),
            "profile": profile,
            "provider": (provider_id, provider_token),
            "secret": secret_name,
        }


def test_one_entry_per_reading_request_listing_the_ids(clinic: Any) -> None:
    api, (provider_id, token) = clinic["api"], clinic["provider"]
    headers = {"X-Parse-Session-Token": token, "X-Parse-Request-Id": uuid.uuid4().hex}
    body = {
        "patient": pointer("PatientProfile", clinic["profile"]),
        "details": "d",
        "assessmentDate": {"__type": "Date", "iso": "2026-02-01T00:00:00.000Z"},
    }
    created = api.post("/classes/IntakeAssessment", body, headers=headers)
    assert created.status_code == 201, created.text
    before = len(_entries(api, actor=pointer("_User", provider_id), action="phi.read"))
    found = api.get(
        "/classes/IntakeAssessment",
        headers={"X-Parse-Session-Token": token},
        params={"include": "patient", "where": {"details": "d"}, "count": "1"},
    )
    assert found.status_code == 200 and len(found.json()["results"]) == 1
    reads = _entries(api, actor=pointer("_User", provider_id), action="phi.read")
    assert len(reads) == before + 1
    meta = reads[-1]["metadata"]
    assert meta["ids"] == {
        "IntakeAssessment": [created.json()["objectId"]],
        "PatientProfile": [clinic["profile"]],
    }
    assert meta["counts"] == {"IntakeAssessment": 1}
    assert meta["queries"] == [{"IntakeAssessment": {"details": "?"}}]
    writes = _entries(api, entityId=created.json()["objectId"], action="phi.create")
    assert len(writes) == 1 and "details" in writes[0]["metadata"]["fields"]


def test_entries_never_carry_phi_values(clinic: Any) -> None:
    api, (_, token) = clinic["api"], clinic["patient"]
    headers = {"X-Parse-Session-Token": token}
    api.put(
        f"/classes/PatientProfile/{clinic['profile']}",
        {"preferences": {"note": clinic["secret"]}},
        headers=headers,
    )
    api.get(
        "/classes/PatientProfile",
        headers=headers,
        params={"where": {"displayName": clinic["secret"]}},
    )
    dump = orjson.dumps(_entries(api)).decode()
    assert "Secretname" not in dump and PASSWORD not in dump and token not in dump


def test_a_refused_write_leaves_no_audit_entry(clinic: Any) -> None:
    api, (_, token) = clinic["api"], clinic["patient"]
    creates = len(_entries(api, action="phi.create"))
    refused = api.post(
        "/classes/IntakeAssessment",
        {"patient": pointer("PatientProfile", clinic["profile"])},
        headers={"X-Parse-Session-Token": token},
    )
    assert refused.status_code == 400
    assert len(_entries(api, action="phi.create")) == creates


async def _break_audit_inserts(url: str, tmp: Path) -> None:
    async with open_store(make_settings(url, tmp)) as store, store.engine.begin() as conn:
        if store.dialect == "postgresql":
            await conn.execute(
                sa.text(
                    "CREATE OR REPLACE FUNCTION mh_test_fail() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'audit storage unavailable'; END $$ LANGUAGE plpgsql"
                )
            )
            await conn.execute(
                sa.text(
                    'CREATE TRIGGER mh_test_fail BEFORE INSERT ON "AuditLog" '
                    "FOR EACH ROW WHEN (NEW.action = 'phi.create') EXECUTE FUNCTION mh_test_fail()"
                )
            )
        else:
            await conn.execute(
                sa.text(
                    'CREATE TRIGGER mh_test_fail BEFORE INSERT ON "AuditLog" '
                    "WHEN NEW.action = 'phi.create' BEGIN SELECT RAISE(ABORT, 'unavailable'); END"
                )
            )


def test_a_write_whose_audit_insert_fails_leaves_nothing_behind(
    fresh_backend_url: str, tmp_path: Path
) -> None:
    backend = "postgres" if fresh_backend_url.startswith("postgres") else "sqlite"
    settings = make_settings(fresh_backend_url, tmp_path, mfa_required_roles="")
    with live_server(settings, backend) as live:
        api = live.client()
        patient_id, _ = _user(api, "patient")
        provider_id, token = _user(api, "provider")
        profile = api.create(
            "PatientProfile",
            {
                "user": pointer("_User", patient_id),
                "medicalRecordNumber": "M-1",
                "displayName": "P",
                "isActive": True,
            },
        )
        api.post(
            "/functions/assignProvider",
            {"patientId": profile, "providerId": provider_id},
            master=True,
        )
        asyncio.run(_break_audit_inserts(fresh_backend_url, tmp_path))
        failed = api.post(
            "/classes/CrisisInterventionLog",
            {
                "patient": pointer("PatientProfile", profile),
                "details": "x",
                "interventionDate": {"__type": "Date", "iso": "2026-02-01T00:00:00.000Z"},
            },
            headers={"X-Parse-Session-Token": token},
        )
        assert failed.status_code == 500
        assert failed.json() == {"code": 1, "error": "Internal server error."}
        assert api.get("/classes/CrisisInterventionLog", master=True).json()["results"] == []


async def _tamper(url: str, tmp: Path, statement: str) -> Any:
    settings = make_settings(url, tmp, audit_seal_lag_seconds=0)
    async with open_store(settings) as store:
        async with store.engine.begin() as conn:
            if store.dialect == "postgresql":
                await conn.execute(sa.text('ALTER TABLE "AuditLog" DISABLE TRIGGER USER'))
            else:
                for name in ("AuditLog_no_update", "AuditLog_no_delete"):
                    await conn.execute(sa.text(f'DROP TRIGGER IF EXISTS "{name}"'))
            await conn.execute(sa.text(statement))
        async with store.unit_of_work(Auth.system()) as repo:
            return await verify(repo)


async def _seal(url: str, tmp: Path) -> tuple[int, Any]:
    settings = make_settings(url, tmp, audit_seal_lag_seconds=0)
    async with open_store(settings) as store:
        async with store.unit_of_work(Auth.system()) as repo:
            sealed = await seal_pending(repo)
        async with store.unit_of_work(Auth.system()) as repo:
            return sealed, await verify(repo)


@pytest.mark.parametrize("tamper", ["alter", "remove", "insert", "alter-unsealed"])
def test_verify_audit_finds_tampering(
    fresh_backend_url: str, tmp_path: Path, tamper: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pages of two entries: verification streams the log, and tampering across page
    # boundaries must be found as surely as within one page.
    monkeypatch.setattr(audit_chain, "PAGE", 2)
    backend = "postgres" if fresh_backend_url.startswith("postgres") else "sqlite"
    settings = make_settings(fresh_backend_url, tmp_path)
    with live_server(settings, backend) as live:
        api = live.client()
        for _ in range(3):
            _user(api, "patient")
        entries = _entries(api)
    assert len(entries) >= 6
    sealed, report = asyncio.run(_seal(fresh_backend_url, tmp_path))
    assert sealed == len(entries) and report.ok, report.problems
    victim = entries[2]["objectId"]
    if tamper == "alter-unsealed":
        with live_server(settings, backend) as live:
            _user(live.client(), "patient")
        statement = (
            'UPDATE "AuditLog" SET summary = \'edited\' WHERE "objectId" = '
            '(SELECT "objectId" FROM "AuditLog" ORDER BY "createdAt" DESC LIMIT 1)'
        )
        expected = "altered entry"
    else:
        statement = {
            "alter": f"UPDATE \"AuditLog\" SET action = 'nothing' WHERE \"objectId\" = '{victim}'",
            "remove": f'DELETE FROM "AuditLog" WHERE "objectId" = \'{victim}\'',
            "insert": (
                'INSERT INTO "AuditLog" ("objectId", "createdAt", "updatedAt", "_rperm", '
                '"_wperm", "entityType", "entityId", action, summary, "_hash") SELECT '
                '\'forged0001\', "createdAt", "updatedAt", "_rperm", "_wperm", \'x\', \'y\', '
                f"'forged', 'forged', \"_hash\" FROM \"AuditLog\" WHERE \"objectId\" = '{victim}'"
            ),
        }[tamper]
        expected = {
            "alter": f"altered entry {victim}",
            "remove": f"removed entry {victim}",
            "insert": "forged0001",
        }[tamper]
    report = asyncio.run(_tamper(fresh_backend_url, tmp_path, statement))
    assert not report.ok
    assert expected in report.problems[0], report.problems
    cli = subprocess.run(
        [sys.executable, "-m", "mindharbor", "verify-audit"],
        env={
            "PATH": "/usr/bin:/bin",
            "MINDHARBOR_DATA_DIR": str(tmp_path),
            "MINDHARBOR_DATABASE_URL": fresh_backend_url,
            "MINDHARBOR_MASTER_KEY": settings.master_key or "",
            "MINDHARBOR_APP_ID": settings.app_id,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 1 and "FAILED VERIFICATION" in cli.stderr, cli.stderr


def test_database_refuses_updates_and_deletes_of_the_log(
    fresh_backend_url: str, tmp_path: Path
) -> None:
    """Even SQL that bypasses the API (a compromised app role) cannot rewrite the log."""
    columns = (
        '"objectId", "createdAt", "updatedAt", "_rperm", "_wperm", "entityType", '
        '"entityId", action, summary'
    )

    async def attempt(statement: str) -> str:
        async with open_store(make_settings(fresh_backend_url, tmp_path)) as store:
            empty = "'[]'" if store.dialect == "sqlite" else "'{}'"
            async with store.engine.begin() as conn:
                await conn.execute(
                    sa.text(
                        f"INSERT INTO \"AuditLog\" ({columns}) VALUES ('{uuid.uuid4().hex[:10]}', "
                        f"CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, {empty}, {empty}, "
                        "'x', 'y', 'z', 's')"
                    )
                )
            try:
                async with store.engine.begin() as conn:
                    await conn.execute(sa.text(statement))
            except sa.exc.DBAPIError as exc:
                return str(exc.orig)
            return "allowed"

    for statement in ("UPDATE \"AuditLog\" SET summary = 'x'", 'DELETE FROM "AuditLog"'):
        assert "append-only" in asyncio.run(attempt(statement))
