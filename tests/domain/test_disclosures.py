"""What the web views ask of the server beyond the plain classes: a patient's own access
history (``myAccessHistory``), the audit check for compliance (``verifyAudit``), the caller's
built-in roles (``myRoles``), and record numbers for self-registered patients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.domain.clinic import Clinic, clinic
from tests.support import pointer


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
