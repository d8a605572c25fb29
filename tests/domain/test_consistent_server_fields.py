"""Server-owned fields sent by a client: the value the server would write is accepted (a
client's ``sentAt`` gives way to the server's clock), any other value is still refused (119)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from mindharbor.storage.codec import iso, utcnow
from tests.domain.clinic import Clinic, clinic
from tests.support import pointer

STAMP = {"__type": "Date", "iso": "2020-01-01T00:00:00.000Z"}


@pytest.fixture(scope="module")
def c(backend_url: str, backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clinic]:
    with clinic(backend_url, backend, tmp_path_factory.mktemp("consistent")) as built:
        yield built


def _message(c: Clinic, **extra: Any) -> dict[str, Any]:
    return {
        "conversationId": "conv-consistent",
        "to": pointer("_User", c.users["provider"]),
        "patient": pointer("PatientProfile", c.patient),
        "body": "hello",
        **extra,
    }


def _code(response: Any) -> int | None:
    return None if response.status_code in (200, 201) else response.json().get("code")


def test_a_template_message_with_from_and_sent_at_is_accepted(c: Clinic) -> None:
    before = iso(utcnow() - timedelta(seconds=1))
    sent = c.api.post(
        "/classes/Message",
        _message(c, **{"from": pointer("_User", c.users["patient"]), "sentAt": STAMP}),
        headers=c.as_("patient"),
    )
    assert sent.status_code == 201, sent.text
    stored = c.api.get(f"/classes/Message/{sent.json()['objectId']}", master=True).json()
    assert stored["from"]["objectId"] == c.users["patient"]
    assert stored["sentAt"]["iso"] >= before  # the server's clock, not 2020


@pytest.mark.parametrize(
    "extra",
    [
        {"from": pointer("_User", "someoneElse")},
        {"sentAt": "yesterday"},  # not a Date: refused, not silently replaced
        {"deliveredAt": STAMP},  # the server sets no delivery time on create
    ],
)
def test_an_inconsistent_server_field_is_still_refused(c: Clinic, extra: Any) -> None:
    refused = c.api.post("/classes/Message", _message(c, **extra), headers=c.as_("patient"))
    assert _code(refused) == 119, refused.text


def test_an_unchanged_server_field_on_update_is_accepted(c: Clinic) -> None:
    sent = c.api.post("/classes/Message", _message(c), headers=c.as_("patient"))
    path = f"/classes/Message/{sent.json()['objectId']}"
    same = {"from": pointer("_User", c.users["patient"]), "isRead": True}
    read = c.api.put(path, same, headers=c.as_("provider"))
    assert read.status_code == 200, read.text
    moved = {"from": pointer("_User", c.users["provider"])}
    assert _code(c.api.put(path, moved, headers=c.as_("provider"))) == 119


def test_assessment_fields_the_server_decides_are_accepted_when_consistent(c: Clinic) -> None:
    consistent = {
        "patient": pointer("PatientProfile", c.patient),
        "assessmentDate": STAMP,
        "instrument": "PHQ-9",
        "responses": {f"item{i}": 1 for i in range(1, 10)},
        "status": "draft",
        "version": 1,
        "score": 9,
        "assessor": pointer("_User", c.users["provider"]),
    }
    made = c.api.post("/classes/IntakeAssessment", consistent, headers=c.as_("provider"))
    assert made.status_code == 201, made.text
    stored = c.api.get(f"/classes/IntakeAssessment/{made.json()['objectId']}", master=True).json()
    assert (stored["status"], stored["version"], stored["score"]) == ("draft", 1, 9)
    for field, value in (
        ("status", "final"),
        ("version", 2),
        ("score", 27),
        ("assessor", pointer("_User", c.users["outsider"])),
    ):
        forged = c.api.post(
            "/classes/IntakeAssessment", {**consistent, field: value}, headers=c.as_("provider")
        )
        assert _code(forged) == 119, (field, forged.text)


def test_a_message_re_sent_whole_while_marking_it_read_is_accepted(c: Clinic) -> None:
    fields = _message(c, body="whole message")
    sent = c.api.post("/classes/Message", fields, headers=c.as_("patient"))
    path = f"/classes/Message/{sent.json()['objectId']}"
    read = c.api.put(path, {**fields, "isRead": True}, headers=c.as_("provider"))
    assert read.status_code == 200, read.text
    edited = c.api.put(path, {**fields, "body": "rewritten"}, headers=c.as_("provider"))
    assert _code(edited) == 119, edited.text


def test_a_patient_app_sending_consistent_staff_fields_is_accepted(c: Clinic) -> None:
    me = pointer("_User", c.users["other"])
    made = c.api.post(
        "/classes/PatientProfile",
        {"user": me, "displayName": "Other", "isActive": True},
        headers=c.as_("other"),
    )
    assert made.status_code == 201, made.text
    path = f"/classes/PatientProfile/{made.json()['objectId']}"
    stored = c.api.get(path, master=True).json()
    assert stored["isActive"] is True and stored["medicalRecordNumber"].startswith("MH-")
    whole = {"user": me, "isActive": True, "medicalRecordNumber": stored["medicalRecordNumber"]}
    saved = c.api.put(path, {**whole, "displayName": "O."}, headers=c.as_("other"))
    assert saved.status_code == 200, saved.text
    for change in ({"isActive": False}, {"medicalRecordNumber": "MH-CHOSEN"}):
        refused = c.api.put(path, change, headers=c.as_("other"))
        assert _code(refused) == 119, (change, refused.text)
    moved = c.api.put(path, {"user": pointer("_User", c.users["patient"])}, headers=c.as_("other"))
    assert _code(moved) == 119, moved.text
