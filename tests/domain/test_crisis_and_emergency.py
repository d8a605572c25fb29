"""Crisis lifecycle and history, and emergency ("break the glass") access, over HTTP."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from mindharbor.storage.codec import utcnow
from mindharbor.storage.identity import announce_out_of_band
from tests.domain.clinic import Clinic, clinic
from tests.support import make_settings, open_store, pointer


@pytest.fixture
def c(backend_url: str, backend: str, tmp_path: Path) -> Any:
    with clinic(backend_url, backend, tmp_path) as built:
        yield built


def _open_log(c: Clinic) -> str:
    made = c.api.post(
        "/classes/CrisisInterventionLog",
        {
            "patient": pointer("PatientProfile", c.patient),
            "riskLevel": "high",
            "interventionDate": {"__type": "Date", "iso": "2026-03-02T22:00:00.000Z"},
            "details": "phone call",
            "historyNote": "first contact",
        },
        headers=c.as_("provider"),
    )
    assert made.status_code == 201, made.text
    return str(made.json()["objectId"])


def _update(c: Clinic, log: str, who: str = "provider", **body: Any) -> Any:
    return c.api.put(f"/classes/CrisisInterventionLog/{log}", body, headers=c.as_(who))


def _history(c: Clinic, who: str, log: str) -> list[dict[str, Any]]:
    found = c.api.get(
        "/classes/CrisisLogEvent",
        headers=c.as_(who),
        params={
            "where": {"crisisLog": pointer("CrisisInterventionLog", log)},
            "order": "createdAt",
        },
    )
    return list(found.json()["results"])


def test_lifecycle_moves_forward_and_every_change_is_history(c: Clinic) -> None:
    log = _open_log(c)
    stored = c.api.get(f"/classes/CrisisInterventionLog/{log}", master=True).json()
    assert stored["recordedBy"]["objectId"] == c.users["provider"]
    assert stored["status"] == "open"
    assert (
        _update(
            c,
            log,
            status="active",
            responseAction="mobile crisis team",
            historyNote="team dispatched",
        ).status_code
        == 200
    )
    assert _update(c, log, status="resolved", outcome="safe at home").status_code == 200
    back = _update(c, log, status="active")
    assert back.json() == {
        "code": 142,
        "error": "A crisis log cannot go back from resolved to active.",
    }
    assert _update(c, log, status="closed").status_code == 200
    reopened = _update(c, log, status="closed", outcome="changed later")
    assert reopened.json()["code"] == 142
    events = _history(c, "provider", log)
    assert [e["changes"].get("status", {}).get("to") for e in events] == [
        "open",
        "active",
        "resolved",
        "closed",
    ]
    assert events[1]["note"] == "team dispatched"
    assert events[1]["changes"]["responseAction"] == {"from": None, "to": "mobile crisis team"}
    assert all(e["actor"]["objectId"] == c.users["provider"] for e in events)
    assert [e["objectId"] for e in _history(c, "patient", log)] == [e["objectId"] for e in events]
    assert _history(c, "outsider", log) == [] and _history(c, "other", log) == []


def test_history_cannot_be_written_or_edited_by_clients(c: Clinic) -> None:
    log = _open_log(c)
    event = _history(c, "provider", log)[0]["objectId"]
    for who in ("provider", "patient"):
        forged = c.api.post(
            "/classes/CrisisLogEvent",
            {
                "crisisLog": pointer("CrisisInterventionLog", log),
                "patient": pointer("PatientProfile", c.patient),
                "changes": {},
            },
            headers=c.as_(who),
        )
        assert forged.json()["code"] == 119
        edit = c.api.put(f"/classes/CrisisLogEvent/{event}", {"note": "x"}, headers=c.as_(who))
        assert edit.json()["code"] == 119
        gone = c.api.delete(f"/classes/CrisisLogEvent/{event}", headers=c.as_(who))
        assert gone.json()["code"] == 119


def test_recorded_by_and_status_on_create_are_the_servers(c: Clinic) -> None:
    body = {
        "patient": pointer("PatientProfile", c.patient),
        "interventionDate": {"__type": "Date", "iso": "2026-03-02T22:00:00.000Z"},
    }
    forged = c.api.post(
        "/classes/CrisisInterventionLog",
        {**body, "recordedBy": pointer("_User", c.users["outsider"])},
        headers=c.as_("provider"),
    )
    assert forged.json()["code"] == 119
    closed = c.api.post(
        "/classes/CrisisInterventionLog", {**body, "status": "closed"}, headers=c.as_("provider")
    )
    assert closed.json()["code"] == 142


def _expire_grants(url: str, tmp: Path) -> None:
    async def run() -> None:
        async with open_store(make_settings(url, tmp)) as store:
            async with store.engine.begin() as conn:
                await conn.execute(
                    sa.text('UPDATE "_EmergencyGrant" SET "expiresAt" = :t'),
                    {"t": utcnow() - timedelta(minutes=1)},
                )
                # Changed behind the API's back: every worker must drop what it cached.
                await announce_out_of_band(conn, store.dialect)
            if store.dialect == "postgresql":
                await asyncio.sleep(0.1)  # NOTIFY reaches the server's listener asynchronously

    asyncio.run(run())


def test_emergency_access_is_time_limited_and_audited(
    c: Clinic, backend_url: str, tmp_path: Path
) -> None:
    log = _open_log(c)
    path = f"/classes/CrisisInterventionLog/{log}"
    assert c.api.get(path, headers=c.as_("outsider")).json()["code"] == 101
    short = c.call("outsider", "requestEmergencyAccess", patientId=c.patient, reason="x")
    assert short.json()["code"] == 141
    as_patient = c.call(
        "other", "requestEmergencyAccess", patientId=c.patient, reason="I am not a provider at all"
    )
    assert as_patient.json()["code"] == 119
    missing = c.call(
        "outsider",
        "requestEmergencyAccess",
        patientId="nosuchpatnt",
        reason="unconscious patient in the ED",
    )
    assert missing.json()["code"] == 101
    granted = c.call(
        "outsider",
        "requestEmergencyAccess",
        patientId=c.patient,
        reason="unconscious patient in the ED",
    )
    assert granted.status_code == 200, granted.text
    assert c.api.get(path, headers=c.as_("outsider")).status_code == 200
    write = _update(c, log, who="outsider", outcome="x")
    assert write.json()["code"] == 101  # read-only access
    entries = c.entries(action="emergency.access", entityId=c.patient)
    assert len(entries) == 1 and entries[0]["metadata"]["severity"] == "high"
    assert entries[0]["actor"]["objectId"] == c.users["outsider"]
    review = c.call("compliance", "listEmergencyGrants").json()["result"]
    assert review[0]["reason"] == "unconscious patient in the ED"
    assert c.call("outsider", "listEmergencyGrants").json()["code"] == 119
    _expire_grants(backend_url, tmp_path)
    assert c.api.get(path, headers=c.as_("outsider")).json()["code"] == 101
