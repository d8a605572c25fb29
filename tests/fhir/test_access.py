"""The access matrix again, through FHIR: the same callers, records and expectations as
tests/security/test_access_matrix.py, and for each search the same rows as the REST face returns
to that caller. Every FHIR read of PHI leaves its audit entry."""

from __future__ import annotations

import pytest

from tests.fhir.conftest import FhirWorld
from tests.security.test_access_matrix import AUDIT_READ, CALLERS, PHI_CLASSES, VISIBLE
from tests.support import pointer

FHIR_TYPE = {
    "PatientProfile": "Patient",
    "IntakeAssessment": "QuestionnaireResponse",
    "CrisisInterventionLog": "Flag",
    "Message": "Communication",
    "Appointment": "Appointment",
}


@pytest.mark.parametrize("cls", PHI_CLASSES)
@pytest.mark.parametrize("caller", CALLERS)
def test_same_caller_same_answer_as_rest(fw: FhirWorld, cls: str, caller: str) -> None:
    w, kind = fw.w, FHIR_TYPE[cls]
    expected = VISIBLE[cls][caller]
    found = fw.get(caller, f"/{kind}", params={"_count": "1000"})
    if expected is None:  # anonymous: REST refuses (119), FHIR asks for credentials
        assert found.status_code == 401, found.text
        assert w.call(caller, "GET", f"/classes/{cls}").json()["code"] == 119
        return
    assert found.status_code == 200, found.text
    ids = {e["resource"]["id"] for e in found.json().get("entry", [])}
    labels = {label for label in ("A", "B") if w.records[(cls, label)] in ids}
    assert labels == expected
    rest = w.call(caller, "GET", f"/classes/{cls}", params={"limit": "1000"}).json()["results"]
    assert ids == {r["objectId"] for r in rest}
    for label in ("A", "B"):
        record = w.records[(cls, label)]
        got = fw.get(caller, f"/{kind}/{record}")
        rest_got = w.call(caller, "GET", f"/classes/{cls}/{record}")
        assert got.status_code == (200 if label in expected else 404), (label, got.text)
        assert rest_got.status_code == got.status_code
        if got.status_code == 200 and caller != "master":
            # The read is in the audit log: who, what, and that it came through FHIR.
            entries = w.api.get(
                "/classes/AuditLog",
                master=True,
                params={
                    "where": {
                        "action": "phi.read",
                        "actor": pointer("_User", w.users[caller]),
                        "metadata.face": "fhir",
                        "metadata.interaction": "read",
                    },
                    "order": "-createdAt",
                    "limit": "20",
                },
            ).json()["results"]
            assert any(record in e["metadata"]["ids"].get(cls, []) for e in entries), entries


@pytest.mark.parametrize("caller", CALLERS)
def test_audit_events_are_for_compliance_and_admin(fw: FhirWorld, caller: str) -> None:
    got = fw.get(caller, "/AuditEvent", params={"_count": "5"})
    if caller == "anon":
        assert got.status_code == 401
    elif AUDIT_READ[caller]:
        assert got.status_code == 200 and got.json()["entry"], got.text
    else:
        assert got.status_code == 403, got.text
        assert got.json()["issue"][0]["code"] == "forbidden"


@pytest.mark.parametrize("caller", ("patientA", "providerOn", "compliance", "admin"))
def test_searches_are_audited_with_the_ids_returned(fw: FhirWorld, caller: str) -> None:
    w = fw.w
    found = fw.get(caller, "/Observation", params={"_count": "1000"})
    assert found.status_code == 200
    assessments = {e["resource"]["id"].split("-")[0] for e in found.json().get("entry", [])}
    entries = w.api.get(
        "/classes/AuditLog",
        master=True,
        params={
            "where": {
                "actor": pointer("_User", w.users[caller]),
                "metadata.face": "fhir",
                "metadata.interaction": "search-type",
            },
            "order": "-createdAt",
            "limit": "1",
        },
    ).json()["results"]
    if not assessments:
        return  # nothing read, nothing disclosed (an empty search writes no PHI entry)
    assert entries and set(entries[0]["metadata"]["ids"]["IntakeAssessment"]) >= assessments


def test_patient_never_sees_a_draft_and_writes_are_refused(fw: FhirWorld) -> None:
    assert fw.get("patientA", f"/QuestionnaireResponse/{fw.draft}").status_code == 404
    assert fw.get("providerOn", f"/QuestionnaireResponse/{fw.draft}").status_code == 200
    for method, path in (
        ("POST", "/Patient"),
        ("PUT", f"/Patient/{fw.w.patients['A']}"),
        ("DELETE", f"/Patient/{fw.w.patients['A']}"),
    ):
        got = fw.request("master", method, path, json={"resourceType": "Patient"})
        assert got.status_code == 405, got.text
        assert got.json()["resourceType"] == "OperationOutcome"
    bad = fw.http.get("/Patient", headers={"Authorization": "Bearer not-a-session"})
    assert bad.status_code == 401 and "WWW-Authenticate" in bad.headers
