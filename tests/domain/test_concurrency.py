"""Read-modify-write flows under concurrency (issue 14, defect 9): every such function locks
the row before it reads what it will change, so concurrent calls serialise and none is lost.

amendAssessment (versions), markAssessmentEnteredInError (once only), a crisis log's status
transitions (every change in the history, in order) and message receipts (forward only, each
time stamped once), each hit by several requests at the same moment; both backends.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.domain.clinic import Clinic, clinic, make_user
from tests.support import pointer

NOW = {"__type": "Date", "iso": "2031-03-01T10:00:00.000Z"}
WORKERS = 6


@pytest.fixture(scope="module")
def c(backend_url: str, backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clinic]:
    with clinic(backend_url, backend, tmp_path_factory.mktemp("concurrency")) as made:
        yield made


def _at_once(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Run the calls in threads released together."""
    gate = threading.Barrier(len(calls))
    out: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        gate.wait()
        out[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def _call(c: Clinic, who: str, name: str, **params: Any) -> Callable[[], httpx.Response]:
    url = f"{c.api.server.url}/functions/{name}"
    headers = {"X-Parse-Application-Id": c.api.server.app_id, **c.as_(who)}
    return lambda: httpx.post(url, json=params, headers=headers, timeout=60)


def _final_assessment(c: Clinic) -> str:
    made = c.api.post(
        "/classes/IntakeAssessment",
        {"patient": pointer("PatientProfile", c.patient), "assessmentDate": NOW, "details": "a"},
        headers=c.as_("provider"),
    )
    assert made.status_code == 201, made.text
    published = c.call("provider", "publishAssessment", assessmentId=made.json()["objectId"])
    assert published.status_code == 200, published.text
    return str(made.json()["objectId"])


def test_concurrent_amendments_each_get_their_own_version(c: Clinic) -> None:
    record = _final_assessment(c)
    replies = _at_once(
        [
            _call(
                c,
                "provider",
                "amendAssessment",
                assessmentId=record,
                reason=f"round {i}",
                changes={"details": f"d{i}"},
            )
            for i in range(WORKERS)
        ]
    )
    assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
    versions = sorted(r.json()["result"]["version"] for r in replies)
    assert versions == list(range(2, WORKERS + 2))
    kept = c.api.get(
        "/classes/AssessmentVersion",
        master=True,
        params={"where": {"assessment": pointer("IntakeAssessment", record)}, "limit": "100"},
    ).json()["results"]
    assert sorted(v["version"] for v in kept) == list(range(1, WORKERS + 1))
    current = c.api.get(f"/classes/IntakeAssessment/{record}", master=True).json()
    assert current["version"] == WORKERS + 1


def test_entered_in_error_happens_once(c: Clinic) -> None:
    record = _final_assessment(c)
    replies = _at_once(
        [
            _call(c, "provider", "markAssessmentEnteredInError", assessmentId=record, reason="dup")
            for _ in range(WORKERS)
        ]
    )
    assert sorted(r.status_code for r in replies) == [200] + [400] * (WORKERS - 1)
    kept = c.api.get(
        "/classes/AssessmentVersion",
        master=True,
        params={"where": {"assessment": pointer("IntakeAssessment", record)}},
    ).json()["results"]
    assert len(kept) == 1


def test_crisis_transitions_are_all_in_the_history(c: Clinic) -> None:
    log = c.api.create(
        "CrisisInterventionLog",
        {"patient": pointer("PatientProfile", c.patient), "interventionDate": NOW, "details": "x"},
    )
    url = f"{c.api.server.url}/classes/CrisisInterventionLog/{log}"
    headers = {"X-Parse-Application-Id": c.api.server.app_id, **c.as_("provider")}
    replies = _at_once(
        [
            (lambda i=i: httpx.put(url, json={"outcome": f"o{i}"}, headers=headers, timeout=60))
            for i in range(WORKERS)
        ]
        + [lambda: httpx.put(url, json={"status": "active"}, headers=headers, timeout=60)]
    )
    assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
    events = c.api.get(
        "/classes/CrisisLogEvent",
        master=True,
        params={"where": {"crisisLog": pointer("CrisisInterventionLog", log)}, "limit": "100"},
    ).json()["results"]
    changes = [e for e in events if e.get("changes")]
    assert len(changes) >= WORKERS + 1  # one event per change, none lost
    activated = [
        e for e in events if (e.get("changes") or {}).get("status", {}).get("to") == "active"
    ]
    assert len(activated) == 1 and activated[0]["changes"]["status"]["from"] == "open"


def test_receipts_move_forward_once(c: Clinic) -> None:
    sent = c.api.post(
        "/classes/Message",
        {
            "conversationId": "conc",
            "to": pointer("_User", c.users["patient"]),
            "patient": pointer("PatientProfile", c.patient),
            "body": "hi",
            "isRead": False,
        },
        headers=c.as_("provider"),
    )
    assert sent.status_code == 201, sent.text
    url = f"{c.api.server.url}/classes/Message/{sent.json()['objectId']}"
    headers = {"X-Parse-Application-Id": c.api.server.app_id, **c.as_("patient")}
    bodies = [{"status": "delivered"}, {"status": "read"}, {"isRead": True}] * 2
    replies = _at_once(
        [(lambda b=b: httpx.put(url, json=b, headers=headers, timeout=60)) for b in bodies]
    )
    assert all(r.status_code in (200, 400) for r in replies), [r.text for r in replies]
    message = c.api.get(f"/classes/Message/{sent.json()['objectId']}", master=True).json()
    assert message["status"] == "read" and message["isRead"] is True
    assert message["deliveredAt"]["iso"] <= message["readAt"]["iso"]


def test_concurrent_profile_creations_make_one_chart(c: Clinic) -> None:
    """Creating a PatientProfile checks that the account has none; on PostgreSQL two concurrent
    creations both found none and the patient's record was split over two charts. The account
    is now locked before the check."""
    user_id, _ = make_user(c.api, "patient")
    url = f"{c.api.server.url}/classes/PatientProfile"
    headers = {"X-Parse-Application-Id": c.api.server.app_id, **c.as_("admin")}
    racers = 12

    def create(n: int) -> Callable[[], httpx.Response]:
        body = {
            "user": pointer("_User", user_id),
            "medicalRecordNumber": f"MRN-{uuid.uuid4().hex}",
            "displayName": f"Chart {n}",
        }
        return lambda: httpx.post(url, json=body, headers=headers, timeout=60)

    replies = _at_once([create(n) for n in range(racers)])
    assert sorted(r.status_code for r in replies) == [201] + [400] * (racers - 1)
    assert {r.json()["code"] for r in replies if r.status_code == 400} == {142}
    where = {"user": pointer("_User", user_id)}
    found = c.api.get(
        "/classes/PatientProfile",
        master=True,
        params={"where": json.dumps(where), "count": "1", "limit": "0"},
    )
    assert found.json()["count"] == 1
