"""FHIR Bulk Data export: kick-off, polling, manifest, signed NDJSON files, who may export."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson

from tests.fhir.conftest import FhirWorld
from tests.fhir.validate import validate


def kick_off(fw: FhirWorld, caller: str, path: str = "/$export", **params: str) -> httpx.Response:
    return fw.get(
        caller,
        path,
        params=params,
        headers={"Prefer": "respond-async", "Accept": "application/fhir+json"},
    )


def wait_for_manifest(fw: FhirWorld, caller: str, location: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        polled = fw.http.get(location, headers=fw.headers(caller))
        if polled.status_code == 200:
            return dict(polled.json())
        assert polled.status_code == 202, polled.text
        assert "X-Progress" in polled.headers
        time.sleep(0.2)
    raise AssertionError("export did not finish")


def download(manifest: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    files: dict[str, list[dict[str, Any]]] = {}
    for entry in manifest["output"]:
        got = httpx.get(entry["url"], timeout=60)  # a signed URL: no credentials needed
        assert got.status_code == 200, got.text
        lines = [orjson.loads(line) for line in got.content.splitlines() if line.strip()]
        assert len(lines) == entry["count"]
        files[entry["type"]] = lines
    return files


def test_master_key_exports_everything_as_valid_ndjson(fw: FhirWorld) -> None:
    started = kick_off(fw, "master")
    assert started.status_code == 202, started.text
    manifest = wait_for_manifest(fw, "master", started.headers["Content-Location"])
    assert manifest["requiresAccessToken"] is False
    files = download(manifest)
    assert {
        "Patient",
        "QuestionnaireResponse",
        "Observation",
        "Communication",
        "Appointment",
        "Flag",
        "Provenance",
        "Practitioner",
        "AuditEvent",
    } <= set(files)
    for kind, resources in files.items():
        for resource in resources:
            assert resource["resourceType"] == kind
            validate(resource)
    codes = {c["code"] for o in files["Observation"] for c in o["code"]["coding"]}
    assert {"44249-1", "44261-6", "69737-5", "70274-6", "44260-8"} <= codes
    # The bare file URL, without its signature, is refused.
    bare = manifest["output"][0]["url"].split("?")[0]
    assert httpx.get(bare).status_code == 403


def test_admin_exports_only_what_an_admin_may_read(fw: FhirWorld) -> None:
    started = kick_off(fw, "admin", _type="Patient,QuestionnaireResponse,Communication")
    assert started.status_code == 202, started.text
    location = started.headers["Content-Location"]
    manifest = wait_for_manifest(fw, "admin", location)
    files = download(manifest)
    assert set(files) == {"Patient"}  # an admin is no party to the clinical record
    # Nobody else can see the job, not even another caller with a session.
    assert fw.http.get(location, headers=fw.headers("compliance")).status_code == 404
    assert fw.http.delete(location, headers=fw.headers("admin")).status_code == 202
    assert fw.http.get(location, headers=fw.headers("admin")).status_code == 404


def test_who_may_kick_off_and_how(fw: FhirWorld) -> None:
    for caller, status in (
        ("providerOn", 403),
        ("patientA", 403),
        ("compliance", 403),
        ("anon", 401),
    ):
        got = kick_off(fw, caller)
        assert got.status_code == status, (caller, got.text)
    assert fw.get("master", "/$export").status_code == 400  # no Prefer: respond-async
    assert kick_off(fw, "master", _type="Nonsense").status_code == 400
    assert kick_off(fw, "master", _outputFormat="text/csv").status_code == 400
    patient_level = kick_off(fw, "master", "/Patient/$export", _since="2020-01-01")
    assert patient_level.status_code == 202
    manifest = wait_for_manifest(fw, "master", patient_level.headers["Content-Location"])
    assert "Practitioner" not in {o["type"] for o in manifest["output"]}
    assert "Patient" in {o["type"] for o in manifest["output"]}
