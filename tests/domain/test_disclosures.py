"""What the web views ask of the server beyond the plain classes: a patient's own access
history (``myAccessHistory``), the audit check for compliance (``verifyAudit``), the caller's
built-in roles (``myRoles``), and record numbers for self-registered patients."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from mindharbor.domain.audit.seal import seal_pending
from mindharbor.domain.audit.writer import entry_row, insert_rows
from mindharbor.security.auth import Auth
from mindharbor.storage import audit_index
from mindharbor.storage.codec import iso, new_object_id, utcnow
from mindharbor.storage.db import Store
from tests.domain.clinic import Clinic, clinic
from tests.support import make_settings, open_store, pointer


@pytest.fixture
def team(backend_url: str, backend: str, tmp_path: Path) -> Iterator[Clinic]:
    with clinic(backend_url, backend, tmp_path) as c:
        yield c


def test_patient_sees_staff_reads_of_their_chart_and_nothing_else(team: Clinic) -> None:
    chart = team.api.get(f"/classes/PatientProfile/{team.patient}", headers=team.as_("provider"))
    assert chart.status_code == 200
    # The patient's own reads and another patient's chart are not part of the answer.
    team.api.get(f"/classes/PatientProfile/{team.patient}", headers=team.as_("patient"))
    answer = team.call("patient", "myAccessHistory")
    assert answer.status_code == 200, answer.text
    entries = answer.json()["result"]["entries"]
    assert len(entries) == 1, entries
    (entry,) = entries
    assert entry["roles"] == ["provider"] and entry["purpose"] == "care team"
    assert entry["what"] == "viewed 1 record(s)"
    assert set(entry) == {"at", "from", "roles", "name", "what", "purpose"}  # no ids, no metadata
    # Asking is itself recorded.
    assert team.entries(action="disclosures.view", entityId=team.patient)


def test_a_read_behind_a_busy_clinics_newer_activity_is_still_listed(
    backend_url: str, backend: str, tmp_path: Path
) -> None:
    """The history used to look only at the newest 1,000 chart-related entries of the whole
    clinic: in a busy clinic, a read of this chart an hour ago had already fallen out. Sealing
    indexes each disclosure by patient, so it is found however much happened since."""
    with clinic(backend_url, backend, tmp_path, audit_seal_lag_seconds=0) as c:
        read = c.api.get(f"/classes/PatientProfile/{c.patient}", headers=c.as_("provider"))
        assert read.status_code == 200
        other = c.api.create(
            "PatientProfile",
            {
                "user": pointer("_User", c.users["other"]),
                "medicalRecordNumber": uuid.uuid4().hex,
                "displayName": "Another patient",
            },
        )
        reads = [{"method": "GET", "path": f"/classes/PatientProfile/{other}"}] * 50
        for _ in range(21):  # 1,050 newer reads of another chart, one audit entry each
            batch = c.api.post("/batch", {"requests": reads}, headers=c.as_("admin"))
            assert batch.status_code == 200 and "error" not in batch.text, batch.text[:300]
        sealed = c.api.post("/jobs/sealAuditLog", {}, master=True)
        assert sealed.status_code == 200, sealed.text
        deadline = time.monotonic() + 30
        while True:
            entries = c.call("patient", "myAccessHistory").json()["result"]["entries"]
            if entries or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert [(e["roles"], e["what"]) for e in entries] == [(["provider"], "viewed 1 record(s)")]


def test_emergency_access_is_listed_with_its_purpose(team: Clinic) -> None:
    granted = team.call(
        "outsider", "requestEmergencyAccess", patientId=team.patient, reason="Found unresponsive"
    )
    assert granted.status_code == 200, granted.text
    entries = team.call("patient", "myAccessHistory").json()["result"]["entries"]
    assert [(e["what"], e["purpose"]) for e in entries] == [
        ("emergency access granted", "emergency access")
    ]


def test_only_a_patient_with_a_chart_has_an_access_history(team: Clinic) -> None:
    for who in ("provider", "other"):  # "other" is a patient without a profile
        refused = team.call(who, "myAccessHistory")
        assert refused.status_code == 400 and refused.json()["code"] == 119, refused.text
    anonymous = team.api.post("/functions/myAccessHistory", {})
    assert anonymous.json()["code"] == 141


def test_verify_audit_is_for_compliance_and_admins(team: Clinic) -> None:
    for who in ("compliance", "admin"):
        report = team.call(who, "verifyAudit")
        assert report.status_code == 200, report.text
        result = report.json()["result"]
        assert result["ok"] is True and result["checked"] > 0 and result["problems"] == []
    for who in ("patient", "provider"):
        assert team.call(who, "verifyAudit").json()["code"] == 119


def test_my_roles_names_the_built_in_roles_held(team: Clinic) -> None:
    assert team.call("provider", "myRoles").json()["result"] == {"roles": ["provider"]}
    assert team.call("patient", "myRoles").json()["result"] == {"roles": ["patient"]}
    assert team.api.post("/functions/myRoles", {}).json()["code"] == 141


def test_a_self_registered_profile_gets_a_record_number(team: Clinic) -> None:
    made = team.api.post(
        "/classes/PatientProfile",
        {"user": pointer("_User", team.users["other"]), "displayName": "Blair"},
        headers=team.as_("other"),
    )
    assert made.status_code == 201, made.text
    profile = team.api.get(
        f"/classes/PatientProfile/{made.json()['objectId']}", headers=team.as_("other")
    ).json()
    assert profile["medicalRecordNumber"].startswith("MH-")
    assert len(profile["medicalRecordNumber"]) == 13  # MH- and ten random characters


@pytest.mark.anyio
async def test_sealing_indexes_each_disclosure_by_the_patients_it_concerns(
    fresh_backend_url: str, tmp_path: Path
) -> None:
    """Reads name records; the index names their patients: a Message and an assessment of two
    charts in one read, an emergency grant by its profile. Writes, reads of no chart and records
    that no longer exist add nothing."""
    settings = make_settings(fresh_backend_url, tmp_path, audit_seal_lag_seconds=0)
    async with open_store(settings) as store:
        async with store.unit_of_work(Auth.system()) as repo:
            system, now = repo.system(), utcnow()
            first, second, message, assessment = (new_object_id() for _ in range(4))
            user = pointer("_User", new_object_id())
            for profile in (first, second):
                body = {"user": user, "medicalRecordNumber": profile, "displayName": "P"}
                await system.restore(
                    "PatientProfile", profile, body, created_at=now, updated_at=now
                )
            records = (
                (
                    "Message",
                    message,
                    first,
                    {"conversationId": "c", "body": "b", "from": user, "to": user},
                ),
                (
                    "IntakeAssessment",
                    assessment,
                    second,
                    {"assessor": user, "assessmentDate": {"__type": "Date", "iso": iso(now)}},
                ),
            )
            for cls, object_id, patient, body in records:
                body = {**body, "patient": pointer("PatientProfile", patient)}
                await system.restore(cls, object_id, body, created_at=now, updated_at=now)
            ids = {"Message": [message, new_object_id()], "IntakeAssessment": [assessment]}
            rows = [
                _entry("phi.read", "multiple", "*", {"ids": ids}),
                _entry("emergency.access", "PatientProfile", second, {}),
                _entry("phi.update", "Message", message, {"fields": ["body"]}),
                _entry(
                    "phi.read", "_User", user["objectId"], {"ids": {"_User": [user["objectId"]]}}
                ),
            ]
            await insert_rows(repo, rows)
        async with store.unit_of_work(Auth.system()) as repo:
            assert await seal_pending(repo) == len(rows)
        await _assert_indexed(store, now, first, second, rows)
        # As if those blocks had been sealed by a version without the index: later sealing runs
        # index them from the blocks' entry lists.
        async with store.unit_of_work(Auth.system()) as repo:
            await repo.conn.execute(sa.text('DELETE FROM "_AuditPatient"'))
            await repo.conn.execute(
                sa.text(
                    'UPDATE "_AuditIndexBackfill" SET "throughBlock" = 0, '
                    '"untilBlock" = (SELECT MAX(block) FROM "_AuditSeal")'
                )
            )
        async with store.unit_of_work(Auth.system()) as repo:
            assert await seal_pending(repo) == 0
        await _assert_indexed(store, now, first, second, rows)


async def _assert_indexed(
    store: Store, now: datetime, first: str, second: str, rows: list[dict[str, Any]]
) -> None:
    async with store.unit_of_work(Auth.system()) as repo:
        since = now - timedelta(days=1)
        read, grant = rows[0]["objectId"], rows[1]["objectId"]
        # The read named one record of each chart (and one that is gone); the grant the profile.
        assert await audit_index.entries(repo, first, since, 10) == [(read, 1)]
        assert set(await audit_index.entries(repo, second, since, 10)) == {(read, 1), (grant, 1)}
        assert await audit_index.entries(repo, second, now + timedelta(days=1), 10) == []


def _entry(action: str, kind: str, entity: str, metadata: dict[str, Any]) -> dict[str, Any]:
    return entry_row(
        action, entity_type=kind, entity_id=entity, summary="s", actor="u1", metadata=metadata
    )
