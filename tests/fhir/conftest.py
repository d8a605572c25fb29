"""The FHIR tests' world: the access matrix's personas and records (tests/security), plus
scored assessments, an amendment, a crisis flag and a message with an attachment for patient A,
all made through the real Parse REST API and clinical functions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.security.test_access_matrix import World, world  # noqa: F401 - the shared fixture
from tests.support import pointer

PHQ9 = {f"item{i}": 2 if i < 5 else 1 for i in range(1, 10)}  # total 13, item 9 = 1
GAD7 = {f"item{i}": 3 for i in range(1, 8)}  # total 21
CSSRS = {"q1": True, "q2": True, "q3": True, "q4": False, "q5": False, "q6": False}


@dataclass
class FhirWorld:
    w: World
    http: httpx.Client
    assessments: dict[str, str] = field(default_factory=dict)  # instrument -> IntakeAssessment
    draft: str = ""
    crisis: list[str] = field(default_factory=list)
    message: str = ""
    attachment: str = ""

    def headers(self, caller: str) -> dict[str, str]:
        if caller == "master":
            return {"X-Parse-Master-Key": self.w.live.master_key}
        token = self.w.tokens.get(caller)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, caller: str, path: str, **kw: Any) -> httpx.Response:
        headers = {**self.headers(caller), **kw.pop("headers", {})}
        return self.http.get(path, headers=headers, **kw)

    def request(self, caller: str, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {**self.headers(caller), **kw.pop("headers", {})}
        return self.http.request(method, path, headers=headers, **kw)

    def resources(self, caller: str, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every resource of a search, following ``next`` links."""
        got = self.get(caller, path, params=params)
        out: list[dict[str, Any]] = []
        while True:
            assert got.status_code == 200, got.text
            bundle = got.json()
            out.extend(
                e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"
            )
            nxt = [link["url"] for link in bundle.get("link", []) if link["relation"] == "next"]
            if not nxt:
                return out
            got = self.http.get(nxt[0], headers=self.headers(caller))


def fhir_base(w: World) -> str:
    return w.live.url.rsplit("/parse", 1)[0] + "/fhir/R4"


def _call(w: World, caller: str, name: str, **params: Any) -> dict[str, Any]:
    got = w.call(caller, "POST", f"/functions/{name}", json=params)
    assert got.status_code == 200, got.text
    return dict(got.json()["result"])


@pytest.fixture(scope="module")
def fw(world: World) -> Iterator[FhirWorld]:  # noqa: F811 - the imported fixture
    w = world
    patient = pointer("PatientProfile", w.patients["A"])
    fhir = FhirWorld(w, httpx.Client(base_url=fhir_base(w), timeout=60))
    for instrument, responses in (("PHQ-9", PHQ9), ("GAD-7", GAD7), ("C-SSRS", CSSRS)):
        made = w.call(
            "providerOn",
            "POST",
            "/classes/IntakeAssessment",
            json={
                "patient": patient,
                "instrument": instrument,
                "responses": responses,
                "assessmentDate": {"__type": "Date", "iso": "2026-02-03T09:30:00.000Z"},
                "details": f"{instrument} at intake",
            },
        )
        assert made.status_code == 201, made.text
        aid = made.json()["objectId"]
        result = _call(w, "providerOn", "publishAssessment", assessmentId=aid)
        if result.get("crisisLogId"):
            fhir.crisis.append(result["crisisLogId"])
        fhir.assessments[instrument] = aid
    amended = dict(PHQ9, item1=3)
    _call(
        w,
        "providerOn",
        "amendAssessment",
        assessmentId=fhir.assessments["PHQ-9"],
        reason="Patient corrected item 1",
        changes={"responses": amended},
    )
    draft = w.call(
        "providerOn",
        "POST",
        "/classes/IntakeAssessment",
        json={
            "patient": patient,
            "instrument": "GAD-7",
            "assessmentDate": {"__type": "Date", "iso": "2026-02-04T09:30:00.000Z"},
        },
    )
    assert draft.status_code == 201, draft.text
    fhir.draft = draft.json()["objectId"]
    upload = w.call(
        "providerOn",
        "POST",
        "/files/plan.txt",
        content=b"Safety plan: call the clinic.",
        headers={"Content-Type": "text/plain"},
    )
    assert upload.status_code == 201, upload.text
    fhir.attachment = upload.json()["name"]
    message = w.call(
        "providerOn",
        "POST",
        "/classes/Message",
        json={
            "patient": patient,
            "conversationId": f"c-{w.patients['A']}",
            "to": pointer("_User", w.users["patientA"]),
            "body": "Your safety plan is attached.",
            "isRead": False,
            "attachments": [{"__type": "File", "name": fhir.attachment}],
        },
    )
    assert message.status_code == 201, message.text
    fhir.message = message.json()["objectId"]
    profile = w.call(
        "providerOn",
        "POST",
        "/classes/ProviderProfile",
        json={"user": pointer("_User", w.users["providerOn"]), "displayName": "Dr. On"},
    )
    assert profile.status_code == 201, profile.text
    yield fhir
    fhir.http.close()
