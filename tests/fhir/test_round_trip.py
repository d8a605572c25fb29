"""Round trip: a seeded clinic exported with ``$export`` (the Parse form,
``_outputFormat=application/vnd.mindharbor.parse+ndjson``) and restored into a fresh database
with ``import-parse`` loses nothing: every object of every class comes back with its objectId,
timestamps, fields and ACL, every role membership too, and a FHIR ``$export`` of the restored
clinic is identical to the original's. (The audit log stays in the export: it is not rewritten.)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from mindharbor.auth.roles import ensure_builtin_roles
from mindharbor.domain.demo import seed_demo
from mindharbor.domain.registry import build_hooks
from mindharbor.hooks import FunctionRequest
from mindharbor.interop.parse_export import read_export
from mindharbor.interop.parse_import import ParseImporter
from mindharbor.security.auth import Auth
from mindharbor.storage.repository import FindQuery
from tests.support import LiveServer, live_server, make_settings, open_store, postgres_database

SKIPPED = {"AuditLog", "_Session", "_JobStatus", "BulkExport"}


def _prepare(settings: Any, *, seed: bool) -> None:
    async def run() -> None:
        async with open_store(settings) as store:
            store.hooks = build_hooks(settings)
            async with store.unit_of_work(Auth.system()) as repo:
                await ensure_builtin_roles(repo)
                if not seed:
                    return
                await seed_demo(repo)
                found = await repo.find(
                    "IntakeAssessment", FindQuery(where={"instrument": "PHQ-9"}, limit=1)
                )
                await repo.store.hooks.call_function(
                    "amendAssessment",
                    FunctionRequest(
                        repo,
                        {
                            "assessmentId": found.results[0]["objectId"],
                            "reason": "Corrected after review",
                            "changes": {"recommendations": "Weekly therapy"},
                        },
                    ),
                )

    asyncio.run(run())


def _export(live: LiveServer, fmt: str | None) -> dict[str, list[dict[str, Any]]]:
    base = live.url.rsplit("/parse", 1)[0] + "/fhir/R4"
    master = {"X-Parse-Master-Key": live.master_key}
    params = {"_outputFormat": fmt} if fmt else {}
    started = httpx.get(
        f"{base}/$export", params=params, headers={**master, "Prefer": "respond-async"}
    )
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + 120
    while True:
        polled = httpx.get(started.headers["Content-Location"], headers=master)
        if polled.status_code == 200:
            break
        assert polled.status_code == 202 and time.monotonic() < deadline, polled.text
        time.sleep(0.2)
    files = {}
    for entry in polled.json()["output"]:
        body = httpx.get(entry["url"]).content
        files[entry["type"]] = [orjson.loads(line) for line in body.splitlines() if line]
    return files


@contextlib.contextmanager
def _second_database(first: str, tmp_path: Path) -> Iterator[str]:
    if first.startswith("postgres"):
        with postgres_database() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'restored.db'}"


def test_parse_export_restores_a_clinic_with_nothing_lost(
    fresh_backend_url: str, tmp_path: Path
) -> None:
    backend = "postgres" if fresh_backend_url.startswith("postgres") else "sqlite"
    source = make_settings(fresh_backend_url, tmp_path / "a", mfa_required_roles="")
    _prepare(source, seed=True)
    with live_server(source, backend) as live:
        parse_files = _export(live, "application/vnd.mindharbor.parse+ndjson")
        fhir_before = _export(live, None)
    assert {
        "_User",
        "_Role",
        "PatientProfile",
        "IntakeAssessment",
        "AssessmentVersion",
        "CrisisInterventionLog",
        "CrisisLogEvent",
        "Message",
        "Appointment",
        "_Join:users:_Role",
    } <= set(parse_files)
    dump = tmp_path / "dump"
    dump.mkdir()
    for kind, rows in parse_files.items():
        (dump / f"{kind}.ndjson").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    with _second_database(fresh_backend_url, tmp_path) as target_url:
        target = make_settings(target_url, tmp_path / "b", mfa_required_roles="")
        _prepare(target, seed=False)

        async def restore() -> Any:
            async with open_store(target) as store:
                store.hooks = build_hooks(target)
                return await ParseImporter(store, read_export(dump)).run()

        report = asyncio.run(restore())
        assert not report.failed, report.failed
        with live_server(target, backend) as live:
            api = live.client()
            for cls, rows in parse_files.items():
                if cls in SKIPPED or cls.startswith("_Join") or cls == "_Role":
                    continue
                restored = api.get(f"/classes/{cls}", master=True, params={"limit": "1000"})
                by_id = {o["objectId"]: o for o in restored.json()["results"]}
                assert set(by_id) == {o["objectId"] for o in rows}, cls
                for original in rows:
                    assert by_id[original["objectId"]] == original, (cls, original["objectId"])
            roles = api.get("/classes/_Role", master=True, params={"limit": "1000"}).json()[
                "results"
            ]
            assert {r["name"] for r in roles} == {r["name"] for r in parse_files["_Role"]}
            names = {r["objectId"]: r["name"] for r in parse_files["_Role"]}
            for role in roles:
                members = api.get(
                    "/classes/_User",
                    master=True,
                    params={
                        "where": {
                            "$relatedTo": {
                                "object": {
                                    "__type": "Pointer",
                                    "className": "_Role",
                                    "objectId": role["objectId"],
                                },
                                "key": "users",
                            }
                        }
                    },
                ).json()["results"]
                expected = {
                    j["relatedId"]
                    for j in parse_files["_Join:users:_Role"]
                    if names[j["owningId"]] == role["name"]
                }
                assert {m["objectId"] for m in members} == expected, role["name"]
            fhir_after = _export(live, None)
    fhir_before.pop("AuditEvent")
    fhir_after.pop("AuditEvent")
    assert {k: sorted(v, key=lambda r: r["id"]) for k, v in fhir_after.items()} == {
        k: sorted(v, key=lambda r: r["id"]) for k, v in fhir_before.items()
    }
