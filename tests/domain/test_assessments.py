"""Versioned assessments over HTTP: drafts, publishing, scoring, amendments, escalation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.domain.clinic import Clinic, clinic
from tests.support import pointer


@pytest.fixture
def c(backend_url: str, backend: str, tmp_path: Path) -> Any:
    with clinic(backend_url, backend, tmp_path) as built:
        yield built


def _draft(c: Clinic, **fields: Any) -> str:
    body = {
        "patient": pointer("PatientProfile", c.patient),
        "details": "intake notes",
        "assessmentDate": {"__type": "Date", "iso": "2026-03-01T09:00:00.000Z"},
        **fields,
    }
    made = c.api.post("/classes/IntakeAssessment", body, headers=c.as_("provider"))
    assert made.status_code == 201, made.text
    return str(made.json()["objectId"])


def _get(c: Clinic, who: str, object_id: str) -> Any:
    return c.api.get(f"/classes/IntakeAssessment/{object_id}", headers=c.as_(who))


PHQ9_SEVERE = {f"item{i}": 3 for i in range(1, 10)} | {"item9": 0}


def test_drafts_belong_to_the_assessor_and_are_hidden_from_the_patient(c: Clinic) -> None:
    draft = _draft(c, instrument="PHQ-9", responses=PHQ9_SEVERE)
    stored = c.api.get(f"/classes/IntakeAssessment/{draft}", master=True).json()
    assert stored["assessor"]["objectId"] == c.users["provider"]
    assert (stored["status"], stored["version"], stored["score"]) == ("draft", 1, 24)
    assert stored["severity"] == "severe" and stored["scoringVersion"] == "phq9-2001.1"
    assert _get(c, "patient", draft).json()["code"] == 101
    assert c.api.get("/classes/IntakeAssessment", headers=c.as_("patient")).json()["results"] == []
    edit = c.api.put(
        f"/classes/IntakeAssessment/{draft}", {"details": "more"}, headers=c.as_("provider")
    )
    assert edit.status_code == 200, edit.text


@pytest.mark.parametrize(
    "field,value",
    [
        ("score", 3),
        ("severity", "minimal"),
        ("version", 9),
        ("status", "final"),
        ("assessor", {"__type": "Pointer", "className": "_User", "objectId": "x"}),
        ("riskFlags", []),
        ("scoringVersion", "x"),
    ],
)
def test_client_cannot_set_server_fields(c: Clinic, field: str, value: Any) -> None:
    body = {
        "patient": pointer("PatientProfile", c.patient),
        "assessmentDate": {"__type": "Date", "iso": "2026-03-01T09:00:00.000Z"},
        field: value,
    }
    refused = c.api.post("/classes/IntakeAssessment", body, headers=c.as_("provider"))
    assert refused.json()["code"] == 119, refused.text


def test_invalid_answers_are_142(c: Clinic) -> None:
    body = {
        "patient": pointer("PatientProfile", c.patient),
        "instrument": "GAD-7",
        "responses": {"item1": 4},
        "assessmentDate": {"__type": "Date", "iso": "2026-03-01T09:00:00.000Z"},
    }
    refused = c.api.post("/classes/IntakeAssessment", body, headers=c.as_("provider"))
    assert refused.json()["code"] == 142


def test_publish_then_amend_keeps_every_version(c: Clinic) -> None:
    draft = _draft(c, instrument="GAD-7", responses={f"item{i}": 1 for i in range(1, 8)})
    published = c.call("provider", "publishAssessment", assessmentId=draft)
    assert published.json()["result"]["status"] == "final", published.text
    assert _get(c, "patient", draft).json()["score"] == 7
    in_place = c.api.put(
        f"/classes/IntakeAssessment/{draft}", {"details": "x"}, headers=c.as_("provider")
    )
    assert in_place.json()["code"] == 119
    no_reason = c.call("provider", "amendAssessment", assessmentId=draft, changes={"details": "x"})
    assert no_reason.json()["code"] == 141
    for n, answers in enumerate(
        ({f"item{i}": 2 for i in range(1, 8)}, {f"item{i}": 3 for i in range(1, 8)}), start=2
    ):
        amended = c.call(
            "provider",
            "amendAssessment",
            assessmentId=draft,
            reason=f"patient clarified, round {n}",
            changes={"responses": answers},
        )
        assert amended.json()["result"]["version"] == n, amended.text
    current = _get(c, "patient", draft).json()
    assert (current["status"], current["version"], current["score"]) == ("amended", 3, 21)
    versions = c.api.get(
        "/classes/AssessmentVersion",
        headers=c.as_("patient"),
        params={"where": {"assessment": pointer("IntakeAssessment", draft)}, "order": "version"},
    ).json()["results"]
    assert [(v["version"], v["snapshot"]["score"]) for v in versions] == [(1, 7), (2, 14)]
    assert versions[1]["reason"] == "patient clarified, round 3"
    assert versions[0]["changedBy"]["objectId"] == c.users["provider"]
    outsider = c.call(
        "outsider", "amendAssessment", assessmentId=draft, reason="x", changes={"details": "y"}
    )
    assert outsider.json()["code"] == 101
    patient = c.call(
        "patient", "amendAssessment", assessmentId=draft, reason="x", changes={"details": "y"}
    )
    assert patient.json()["code"] == 119
    assert {e["action"] for e in c.entries(entityId=draft)} >= {
        "assessment.publish",
        "assessment.amend",
    }


def test_entered_in_error_instead_of_delete(c: Clinic) -> None:
    draft = _draft(c)
    c.call("provider", "publishAssessment", assessmentId=draft)
    delete = c.api.delete(f"/classes/IntakeAssessment/{draft}", headers=c.as_("provider"))
    assert delete.json()["code"] == 119
    marked = c.call(
        "provider", "markAssessmentEnteredInError", assessmentId=draft, reason="wrong patient chart"
    )
    assert marked.json()["result"]["status"] == "entered-in-error"
    assert _get(c, "patient", draft).json()["status"] == "entered-in-error"
    again = c.call(
        "provider", "amendAssessment", assessmentId=draft, reason="x", changes={"details": "y"}
    )
    assert again.json()["code"] == 141


def test_phq9_item9_opens_a_crisis_log_the_care_team_sees(c: Clinic) -> None:
    answers = {f"item{i}": 0 for i in range(1, 10)} | {"item9": 1}
    draft = _draft(c, instrument="PHQ-9", responses=answers)
    result = c.call("provider", "publishAssessment", assessmentId=draft).json()["result"]
    crisis_id = result["crisisLogId"]
    assert crisis_id
    log = c.api.get(f"/classes/CrisisInterventionLog/{crisis_id}", headers=c.as_("provider")).json()
    assert (log["status"], log["riskLevel"]) == ("open", "moderate")
    assert log["assessment"]["objectId"] == draft
    alerts = c.api.get("/classes/CareAlert", headers=c.as_("provider")).json()["results"]
    assert [a["crisisLog"]["objectId"] for a in alerts] == [crisis_id]
    assert c.api.get("/classes/CareAlert", headers=c.as_("patient")).json()["results"] == []
    assert c.api.get("/classes/CareAlert", headers=c.as_("outsider")).json()["results"] == []
    assert (
        c.api.get(f"/classes/CrisisInterventionLog/{crisis_id}", headers=c.as_("other")).json()[
            "code"
        ]
        == 101
    )


def test_negative_screen_opens_nothing(c: Clinic) -> None:
    draft = _draft(
        c, instrument="PHQ-9", responses={f"item{i}": 1 for i in range(1, 10)} | {"item9": 0}
    )
    result = c.call("provider", "publishAssessment", assessmentId=draft).json()["result"]
    assert result["crisisLogId"] is None and result["severity"] == "mild"


def test_patient_completes_an_assigned_instrument(c: Clinic) -> None:
    assigned = c.call("provider", "assignInstrument", patientId=c.patient, instrument="C-SSRS")
    assessment_id = assigned.json()["result"]["assessmentId"]
    pending = _get(c, "patient", assessment_id).json()
    assert pending["status"] == "assigned"
    other = c.call(
        "other",
        "submitInstrument",
        assessmentId=assessment_id,
        responses={"q1": False, "q2": False, "q6": False},
    )
    assert other.json()["code"] == 101
    answers = {"q1": True, "q2": True, "q3": True, "q4": False, "q5": False, "q6": False}
    done = c.call("patient", "submitInstrument", assessmentId=assessment_id, responses=answers)
    result = done.json()["result"]
    assert (result["status"], result["severity"]) == ("final", "moderate"), done.text
    assert result["crisisLogId"]
    twice = c.call("patient", "submitInstrument", assessmentId=assessment_id, responses=answers)
    assert twice.json()["code"] == 141
