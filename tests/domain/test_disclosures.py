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
from mindharbor.domain.audit.writer import entry_digest, entry_row, insert_rows
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
    assert entry["what"] == "viewed your record"
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
        assert [(e["roles"], e["what"]) for e in entries] == [(["provider"], "viewed your record")]


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
async def test_sealing_indexes_sittings_on_each_chart(
    fresh_backend_url: str, tmp_path: Path
) -> None:
    """Reads name records; the index records who began a sitting on whose chart: one read of a
    Message and an assessment of two charts, a second read of the same chart within ten
    minutes (same sitting), one eleven minutes after the first (a new one), and an emergency
    grant (its own). Writes, reads of no chart, the patient's own reads, reads without an actor
    and records that no longer exist add nothing."""
    settings = make_settings(fresh_backend_url, tmp_path, audit_seal_lag_seconds=0)
    async with open_store(settings) as store:
        first, second, message, assessment = (new_object_id() for _ in range(4))
        first_user, second_user, staff = (new_object_id() for _ in range(3))
        async with store.unit_of_work(Auth.system()) as repo:
            system, now = repo.system(), utcnow()
            for profile, user in ((first, first_user), (second, second_user)):
                body = {
                    "user": pointer("_User", user),
                    "medicalRecordNumber": profile,
                    "displayName": "P",
                }
                await system.restore(
                    "PatientProfile", profile, body, created_at=now, updated_at=now
                )
            staff_pointer = pointer("_User", staff)
            parties = {"from": staff_pointer, "to": staff_pointer}
            records = (
                ("Message", message, first, {"conversationId": "c", "body": "b", **parties}),
                (
                    "IntakeAssessment",
                    assessment,
                    second,
                    {"assessmentDate": _date(now), "assessor": staff_pointer},
                ),
            )
            for cls, object_id, patient, body in records:
                body = {**body, "patient": pointer("PatientProfile", patient)}
                await system.restore(cls, object_id, body, created_at=now, updated_at=now)
            base = now - timedelta(hours=1)
            both = {"Message": [message, new_object_id()], "IntakeAssessment": [assessment]}
            rows = [
                _entry(base, staff, "phi.read", "multiple", "*", {"ids": both}),
                _entry(base + timedelta(minutes=5), staff, "phi.read", "Message", message, {}),
                _entry(base + timedelta(minutes=11), staff, "phi.read", "Message", message, {}),
                _entry(
                    base + timedelta(minutes=12),
                    staff,
                    "emergency.access",
                    "PatientProfile",
                    second,
                    {},
                ),
                _entry(base, staff, "phi.update", "Message", message, {"fields": ["body"]}),
                _entry(base, staff, "phi.read", "_User", staff, {"ids": {"_User": [staff]}}),
                _entry(base, first_user, "phi.read", "Message", message, {}),
                _entry(base, None, "phi.read", "IntakeAssessment", assessment, {}),
            ]
            # Later entries get smaller ids, so a reader that does not keep the sealing order
            # (ids looked up with IN come back in id order) sees the sitting's end first.
            for n, row in enumerate(rows[:4]):
                row["objectId"] = f"{'ZYXW'[n]}{n:09d}"
                row["_hash"] = entry_digest(row)
            await insert_rows(repo, rows)
        async with store.unit_of_work(Auth.system()) as repo:
            assert await seal_pending(repo) == len(rows)
        expected = {
            first: [(rows[2]["objectId"], False), (rows[0]["objectId"], False)],
            second: [(rows[3]["objectId"], True), (rows[0]["objectId"], False)],
        }
        await _assert_sittings(store, base, staff, expected)
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
        await _assert_sittings(store, base, staff, expected)


async def _assert_sittings(
    store: Store, base: datetime, staff: str, expected: dict[str, list[tuple[str, bool]]]
) -> None:
    async with store.unit_of_work(Auth.system()) as repo:
        for patient, sittings in expected.items():
            found = await audit_index.sittings(repo, patient, base - timedelta(days=1), 10)
            assert [(s.entry_id, s.emergency) for s in found] == sittings
            assert {s.actor_id for s in found} == {staff}
            later = await audit_index.sittings(repo, patient, base + timedelta(minutes=13), 10)
            assert later == []


def _date(at: datetime) -> dict[str, str]:
    return {"__type": "Date", "iso": iso(at)}


def _entry(
    at: datetime,
    actor: str | None,
    action: str,
    kind: str,
    entity: str,
    metadata: dict[str, Any],
) -> dict[str, Any]:
    row = entry_row(
        action, entity_type=kind, entity_id=entity, summary="s", actor=actor, metadata=metadata
    )
    row["createdAt"] = row["updatedAt"] = at
    row["_hash"] = entry_digest(row)
    return row
