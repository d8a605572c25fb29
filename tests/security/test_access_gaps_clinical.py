"""Gaps of issue 19 in the clinical records themselves, on SQLite and PostgreSQL:

7. A patient's chart identity (MRN, clinic, active flag) is set by staff or the server, on create
   too; the MRN is assigned when omitted, and its uniqueness never answers to a patient.
8. An appointment's provider is on the patient's care team (or is the caller), and a clash
   answers the same whoever holds the other appointment.
9. A provider taken off a care team keeps only the text of the messages he sent; signed file
   URLs carry their reader.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.domain.clinic import Clinic, clinic, make_user
from tests.graphql.support import GraphQLClient, error_code
from tests.support import pointer


@pytest.fixture(scope="module")
def team(
    backend_url: str, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Clinic]:
    data: Path = tmp_path_factory.mktemp("gaps_clinical")
    with clinic(backend_url, backend, data) as c:
        yield c


# -- 7. chart identity on create -------------------------------------------------------------------
def _profile_body(user_id: str, **extra: Any) -> dict[str, Any]:
    return {"user": pointer("_User", user_id), "displayName": "New patient", **extra}


def test_a_patient_cannot_choose_the_clinical_identity_of_their_chart(team: Clinic) -> None:
    c = team
    taken = c.api.get(f"/classes/PatientProfile/{c.patient}", master=True).json()
    user_id, token = make_user(c.api, "patient")
    me = {"X-Parse-Session-Token": token}
    answers = []
    for extra in (
        {"medicalRecordNumber": taken["medicalRecordNumber"]},  # an MRN that exists
        {"medicalRecordNumber": f"free-{uuid.uuid4().hex}"},  # one that does not
        {"primaryClinic": "long-retention"},
        # A new chart is active: a template client sending isActive: true is consistent with
        # what the server writes and accepted (issue 15); any other value is the clinic's call.
        {"isActive": False},
    ):
        refused = c.api.post("/classes/PatientProfile", _profile_body(user_id, **extra), headers=me)
        assert refused.status_code == 400 and refused.json()["code"] == 119, refused.text
        answers.append(refused.json())
    # The existing and the unused MRN get the same answer: no oracle.
    assert answers[0] == answers[1]
    batch = c.api.post(
        "/batch",
        {
            "requests": [
                {
                    "method": "POST",
                    "path": "/parse/classes/PatientProfile",
                    "body": _profile_body(user_id, medicalRecordNumber="x"),
                }
            ]
        },
        headers=me,
    )
    assert batch.json()[0]["error"]["code"] == 119, batch.text
    gql = GraphQLClient(c.api.server)
    answer = gql.post(
        "mutation($user: ID!) { createPatientProfile(input: {fields: {user: {link: $user},"
        ' displayName: "G", medicalRecordNumber: "gql-mrn"}}) { patientProfile { objectId } } }',
        {"user": user_id},
        token=token,
    )
    assert error_code(answer) == 119, answer.text
    # Without them the chart is made, with a server-assigned MRN and the active flag set.
    made = c.api.post(
        "/classes/PatientProfile",
        _profile_body(user_id, dateOfBirth={"__type": "Date", "iso": "1990-04-01T00:00:00.000Z"}),
        headers=me,
    )
    assert made.status_code == 201, made.text
    mine = c.api.get(f"/classes/PatientProfile/{made.json()['objectId']}", headers=me).json()
    assert mine["medicalRecordNumber"].startswith("MH-") and len(mine["medicalRecordNumber"]) == 13
    assert mine["isActive"] is True and "primaryClinic" not in mine
    # Nor can the patient change them afterwards.
    for change in ({"medicalRecordNumber": taken["medicalRecordNumber"]}, {"isActive": False}):
        refused = c.api.put(f"/classes/PatientProfile/{mine['objectId']}", change, headers=me)
        assert refused.json()["code"] == 119, refused.text


def test_staff_set_the_mrn_and_assigned_ones_are_unique(team: Clinic) -> None:
    c = team
    taken = c.api.get(f"/classes/PatientProfile/{c.patient}", master=True).json()
    first, _ = make_user(c.api, "patient")
    second, _ = make_user(c.api, "patient")
    admin = c.as_("admin")
    duplicate = c.api.post(
        "/classes/PatientProfile",
        _profile_body(first, medicalRecordNumber=taken["medicalRecordNumber"], isActive=True),
        headers=admin,
    )
    assert duplicate.json()["code"] == 137, duplicate.text  # staff may know MRNs
    chosen = f"CLINIC-{uuid.uuid4().hex[:8]}"
    made = c.api.post(
        "/classes/PatientProfile",
        _profile_body(first, medicalRecordNumber=chosen, primaryClinic="north", isActive=False),
        headers=admin,
    )
    assert made.status_code == 201, made.text
    stored = c.api.get(f"/classes/PatientProfile/{made.json()['objectId']}", master=True).json()
    assert (stored["medicalRecordNumber"], stored["primaryClinic"], stored["isActive"]) == (
        chosen,
        "north",
        False,
    )
    assigned = c.api.post("/classes/PatientProfile", _profile_body(second), headers=admin)
    assert assigned.status_code == 201, assigned.text
    mrns = [
        p["medicalRecordNumber"]
        for p in c.api.get("/classes/PatientProfile", params={"limit": "1000"}, master=True).json()[
            "results"
        ]
    ]
    assert len(mrns) == len(set(mrns))


# -- 8. whose calendar a provider may fill ---------------------------------------------------------
def _at(hour: int) -> dict[str, str]:
    return {"__type": "Date", "iso": f"2032-03-0{1 + hour // 24}T{hour % 24:02d}:00:00.000Z"}


def _visit(c: Clinic, provider: str, hour: int, patient: str | None = None) -> dict[str, Any]:
    return {
        "patient": pointer("PatientProfile", patient or c.patient),
        "provider": pointer("_User", provider),
        "startAt": _at(hour),
        "endAt": _at(hour + 1),
    }


def test_a_provider_books_only_care_team_calendars(team: Clinic) -> None:
    c = team
    outsider = c.users["outsider"]
    # The outsider is busy at 10:00 with a patient of his own.
    elsewhere, _ = make_user(c.api, "patient")
    theirs = c.api.create(
        "PatientProfile", _profile_body(elsewhere, medicalRecordNumber=uuid.uuid4().hex)
    )
    c.api.post(
        "/functions/assignProvider", {"patientId": theirs, "providerId": outsider}, master=True
    )
    busy = c.api.post(
        "/classes/Appointment", _visit(c, outsider, 10, theirs), headers=c.as_("outsider")
    )
    assert busy.status_code == 201, busy.text
    me = c.as_("provider")
    at_busy = c.api.post("/classes/Appointment", _visit(c, outsider, 10), headers=me)
    at_free = c.api.post("/classes/Appointment", _visit(c, outsider, 13), headers=me)
    # Refused either way, with the same answer: the outsider's calendar is not his to read.
    assert at_busy.status_code == 400 and at_busy.json()["code"] == 142, at_busy.text
    assert at_busy.json() == at_free.json()
    assert "care team" in at_busy.json()["error"]
    batch = c.api.post(
        "/batch",
        {
            "requests": [
                {
                    "method": "POST",
                    "path": "/parse/classes/Appointment",
                    "body": _visit(c, outsider, 10),
                }
            ]
        },
        headers=me,
    )
    assert batch.json()[0]["error"] == at_busy.json(), batch.text
    # His own calendar he fills; moving the visit onto the outsider is refused too.
    own = c.api.post("/classes/Appointment", _visit(c, c.users["provider"], 10), headers=me)
    assert own.status_code == 201, own.text
    moved = c.api.put(
        f"/classes/Appointment/{own.json()['objectId']}",
        {"provider": pointer("_User", outsider)},
        headers=me,
    )
    assert moved.json() == at_busy.json(), moved.text
    # Once the outsider joins the team, a clash says "taken" and nothing about whose visit.
    c.api.post(
        "/functions/assignProvider", {"patientId": c.patient, "providerId": outsider}, master=True
    )
    try:
        clash = c.api.post("/classes/Appointment", _visit(c, outsider, 10), headers=me)
        assert clash.json() == {
            "code": 142,
            "error": "The provider is already booked at that time.",
        }
        fits = c.api.post("/classes/Appointment", _visit(c, outsider, 13), headers=me)
        assert fits.status_code == 201, fits.text
    finally:
        c.api.post(
            "/functions/unassignProvider",
            {"patientId": c.patient, "providerId": outsider},
            master=True,
        )


# -- 9. a provider taken off the care team -----------------------------------------------------
PDF = b"%PDF-1.4\nlab results\n%%EOF\n"


def _upload(c: Clinic, token: str, name: str) -> dict[str, Any]:
    headers = {"X-Parse-Session-Token": token, "Content-Type": "application/pdf"}
    stored = c.api.request("POST", f"/files/{name}", content=PDF, headers=headers)
    assert stored.status_code == 201, stored.text
    return {"__type": "File", "name": stored.json()["name"]}


def _send(c: Clinic, token: str, to: str, text: str, file: dict[str, Any]) -> str:
    sent = c.api.post(
        "/classes/Message",
        {
            "conversationId": f"former-{uuid.uuid4().hex[:6]}",
            "to": pointer("_User", to),
            "patient": pointer("PatientProfile", c.patient),
            "body": text,
            "attachments": [file],
        },
        headers={"X-Parse-Session-Token": token},
    )
    assert sent.status_code == 201, sent.text
    return str(sent.json()["objectId"])


def _download(url: str, token: str | None = None) -> int:
    headers = {"X-Parse-Session-Token": token} if token else {}
    return httpx.get(url, headers=headers, timeout=30).status_code


def test_a_former_care_team_provider_keeps_only_the_text_he_sent(team: Clinic) -> None:
    c = team
    former, token = make_user(c.api, "provider")
    args = {"patientId": c.patient, "providerId": former}
    assert c.api.post("/functions/assignProvider", args, master=True).status_code == 200
    patient_token = c.tokens["patient"]
    received = _send(c, patient_token, former, "to you", _upload(c, patient_token, "a.pdf"))
    sent = _send(c, token, c.users["patient"], "from me", _upload(c, token, "b.pdf"))
    mine = {"X-Parse-Session-Token": token}
    # While on the team: both messages, with attachment URLs bound to his session.
    url = c.api.get(f"/classes/Message/{received}", headers=mine).json()["attachments"][0]["url"]
    assert _download(url, token) == 200
    assert _download(url) == 403  # the same link, anonymous
    assert _download(url, patient_token) == 403  # or in anyone else's session
    assert c.api.post("/functions/unassignProvider", args, master=True).status_code == 200

    assert c.api.get(f"/classes/Message/{received}", headers=mine).json()["code"] == 101
    own = c.api.get(f"/classes/Message/{sent}", headers=mine)
    assert own.status_code == 200 and own.json()["body"] == "from me", own.text
    assert "attachments" not in own.json()  # the text only: no freshly signed URL
    found = c.api.get("/classes/Message", params={"limit": "1000"}, headers=mine).json()
    assert {m["objectId"] for m in found["results"]} == {sent}
    assert all("attachments" not in m for m in found["results"])
    batch = c.api.post(
        "/batch",
        {"requests": [{"method": "GET", "path": f"/parse/classes/Message/{received}"}]},
        headers=mine,
    )
    assert batch.json()[0]["error"]["code"] == 101
    gql = GraphQLClient(c.api.server)
    get = (
        "query($id: ID!) { getMessage(objectId: $id) {"
        " body attachments { ... on Element { value } } } }"
    )
    answer = gql.post(get, {"id": received}, token=token)
    assert error_code(answer) == 101, answer.text
    answer = gql.post(get, {"id": sent}, token=token)
    assert answer.json()["data"]["getMessage"]["body"] == "from me", answer.text
    assert not answer.json()["data"]["getMessage"]["attachments"]
    # The patient still marks his message read, and still gets its attachment.
    read = c.api.put(f"/classes/Message/{sent}", {"isRead": True}, headers=c.as_("patient"))
    assert read.status_code == 200, read.text
    theirs = c.api.get(f"/classes/Message/{sent}", headers=c.as_("patient")).json()
    assert _download(theirs["attachments"][0]["url"], patient_token) == 200


def test_messages_stored_before_the_rule_are_narrowed_when_he_leaves(team: Clinic) -> None:
    """Messages written when a party's own user id was on the ACL (an older version, or an
    import) lose him at unassignment too, but for the text he sent."""
    c = team
    former, token = make_user(c.api, "provider")
    args = {"patientId": c.patient, "providerId": former}
    assert c.api.post("/functions/assignProvider", args, master=True).status_code == 200
    rw = {"read": True, "write": True}
    ids = {}
    for key, sender, recipient in (
        ("sent", former, c.users["patient"]),
        ("received", c.users["patient"], former),
    ):
        ids[key] = c.api.create(
            "Message",
            {
                "conversationId": "legacy",
                "from": pointer("_User", sender),
                "to": pointer("_User", recipient),
                "patient": pointer("PatientProfile", c.patient),
                "body": f"legacy {key}",
                "ACL": {sender: rw, recipient: rw, f"role:careTeam_{c.patient}": {"read": True}},
            },
        )
    mine = {"X-Parse-Session-Token": token}
    assert c.api.post("/functions/unassignProvider", args, master=True).status_code == 200
    assert c.api.get(f"/classes/Message/{ids['received']}", headers=mine).status_code == 404
    assert c.api.get(f"/classes/Message/{ids['sent']}", headers=mine).json()["body"] == (
        "legacy sent"
    )
    edit = c.api.put(f"/classes/Message/{ids['sent']}", {"isRead": True}, headers=mine)
    assert edit.json()["code"] == 101, edit.text  # a reader of his text, no longer a writer
    # The patient's own access is untouched.
    for message in ids.values():
        assert c.api.get(f"/classes/Message/{message}", headers=c.as_("patient")).status_code == 200
