"""What a live query pushes is access like any other (issue 19, items 3, 4 and 12):

- every PHI object pushed to a subscriber leaves one ``phi.read`` entry naming that subscriber,
  committed before the message leaves, counted here per subscriber;
- an emergency grant's expiry reaches the live-query identity cache at the expiry instant;
- ``keys``/``watch`` naming internal columns are refused with 105 and ``watch`` on a protected
  field with 119, as ``where`` is.

Both backends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from mindharbor.storage.system_tables import emergency_grant_table
from tests.domain.clinic import Clinic, clinic
from tests.live_query.wsclient import LiveClient, session_client
from tests.support import open_store, pointer

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def team(
    backend_url: str, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Clinic]:
    data: Path = tmp_path_factory.mktemp("lq_disclosures")
    with clinic(backend_url, backend, data, live_query_auth_seconds=60) as c:
        yield c


_HOURS = iter(range(10_000))


def _appointment(c: Clinic) -> str:
    hour = next(_HOURS)
    start = datetime(2032, 1, 1, tzinfo=UTC) + timedelta(hours=2 * hour)
    return c.api.create(
        "Appointment",
        {
            "patient": pointer("PatientProfile", c.patient),
            "provider": pointer("_User", c.users["provider"]),
            "startAt": {"__type": "Date", "iso": start.isoformat().replace("+00:00", "Z")},
            "endAt": {
                "__type": "Date",
                "iso": (start + timedelta(minutes=30)).isoformat().replace("+00:00", "Z"),
            },
            "status": "scheduled",
        },
    )


def _reads_of(c: Clinic, who: str, object_id: str) -> list[dict[str, object]]:
    return [
        e
        for e in c.entries(
            actor=pointer("_User", c.users[who]), action="phi.read", entityId=object_id
        )
        if e["metadata"].get("face") == "livequery"
    ]


async def _clients(c: Clinic, *who: str) -> list[LiveClient]:
    url, app = c.api.server.url, c.api.server.app_id
    return [await session_client(url, app, token=c.tokens[w]) for w in who]


async def test_every_pushed_object_is_recorded_per_subscriber(team: Clinic) -> None:
    c = team
    provider, patient, outsider = await _clients(c, "provider", "patient", "outsider")
    try:
        for live in (provider, patient, outsider):
            assert (await live.subscribe(1, "Appointment"))["op"] == "subscribed"
        # A second subscription of the provider's connection to the same class: one entry per
        # subscriber and event, not per matching subscription.
        assert (await provider.subscribe(2, "Appointment", {"status": "scheduled"}))["op"] == (
            "subscribed"
        )
        appointment = _appointment(c)
        for live in (provider, patient):
            created = await live.expect("create")
            assert created["object"]["objectId"] == appointment
        assert (await provider.expect("create"))["requestId"] in (1, 2)
        await outsider.silent(0.5)
        # The entry committed before the message was queued: it is there already.
        assert len(_reads_of(c, "provider", appointment)) == 1
        assert len(_reads_of(c, "patient", appointment)) == 1
        assert _reads_of(c, "outsider", appointment) == []
        entry = _reads_of(c, "provider", appointment)[0]
        assert entry["entityType"] == "Appointment"
        meta = entry["metadata"]
        assert isinstance(meta, dict)
        assert meta["ids"] == {"Appointment": [appointment]}
        assert meta["event"] == "create" and meta["ip"]
        updated = c.api.put(f"/classes/Appointment/{appointment}", {"reason": "x"}, master=True)
        assert updated.status_code == 200, updated.text
        for live in (provider, patient):
            await live.expect("update")
        await provider.expect("update")
        assert len(_reads_of(c, "provider", appointment)) == 2
        assert len(_reads_of(c, "patient", appointment)) == 2
    finally:
        for live in (provider, patient, outsider):
            await live.close()


async def test_emergency_grant_expiry_reaches_live_queries_at_once(team: Clinic) -> None:
    c = team
    granted = c.call(
        "outsider", "requestEmergencyAccess", patientId=c.patient, reason="unresponsive in ER"
    )
    assert granted.status_code == 200, granted.text
    grant_id = granted.json()["result"]["grantId"]
    ends = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=8)
    async with open_store(c.api.server.settings) as store, store.engine.begin() as conn:
        await conn.execute(
            sa.update(emergency_grant_table)
            .where(emergency_grant_table.c.objectId == grant_id)
            .values(expiresAt=ends)
        )
    (outsider,) = await _clients(c, "outsider")
    try:
        assert (await outsider.subscribe(1, "Appointment"))["op"] == "subscribed"
        during = _appointment(c)
        assert (await outsider.expect("create"))["object"]["objectId"] == during
        await asyncio.sleep(
            max(0.0, (ends - datetime.now(UTC).replace(tzinfo=None)).total_seconds()) + 0.3
        )
        after = _appointment(c)
        await outsider.silent(1.0)  # the cache (60 s here) must not outlive the grant
        got = c.api.get(f"/classes/Appointment/{after}", headers=c.as_("outsider"))
        assert got.status_code == 404
    finally:
        await outsider.close()


async def test_keys_and_watch_are_checked_like_where(team: Clinic) -> None:
    c = team
    (provider,) = await _clients(c, "provider")
    try:
        for rid, query in enumerate(
            (
                {"keys": ["_rperm"]},
                {"watch": ["_hashed_password"]},
                {"keys": ["reason", "_wperm"]},
                {"watch": ["_acl"]},
            ),
            start=1,
        ):
            answer = await provider.subscribe(rid, "Appointment", **query)
            assert answer["op"] == "error" and answer["code"] == 105, (query, answer)
        answer = await provider.subscribe(9, "_User", watch=["email"])
        assert answer["op"] == "error" and answer["code"] == 119, answer
        answer = await provider.subscribe(10, "Appointment", keys=["reason"], watch=["status"])
        assert answer["op"] == "subscribed", answer
    finally:
        await provider.close()
