"""Clinical records over LiveQuery: a patient hears only about their own chart, the care team
hears about it, and a provider taken off the team stops hearing at once (both backends)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.domain.clinic import Clinic, clinic, make_user
from tests.live_query.wsclient import session_client
from tests.support import pointer

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def team(
    backend_url: str, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Clinic]:
    data: Path = tmp_path_factory.mktemp("lq_clinic")
    with clinic(backend_url, backend, data, live_query_auth_seconds=60) as c:
        yield c


def _appointment(c: Clinic, hour: int, status: str = "scheduled") -> str:
    return c.api.create(
        "Appointment",
        {
            "patient": pointer("PatientProfile", c.patient),
            "provider": pointer("_User", c.users["provider"]),
            "startAt": {"__type": "Date", "iso": f"2031-01-0{hour % 9 + 1}T{hour:02d}:00:00.000Z"},
            "endAt": {"__type": "Date", "iso": f"2031-01-0{hour % 9 + 1}T{hour:02d}:30:00.000Z"},
            "status": status,
        },
    )


async def test_patient_sees_own_chart_and_another_patient_nothing(team: Clinic) -> None:
    url, app = team.api.server.url, team.api.server.app_id
    mine = await session_client(url, app, token=team.tokens["patient"])
    other = await session_client(url, app, token=team.tokens["other"])
    outsider = await session_client(url, app, token=team.tokens["outsider"])
    provider = await session_client(url, app, token=team.tokens["provider"])
    try:
        for live in (mine, other, outsider, provider):
            answer = await live.subscribe(1, "Appointment", {"status": "confirmed"})
            assert answer["op"] == "subscribed", answer
        appt = _appointment(team, 9)
        for live in (mine, other, outsider, provider):
            await live.silent(0.2)  # scheduled does not match the query
        confirmed = team.api.put(
            f"/classes/Appointment/{appt}", {"status": "confirmed"}, master=True
        )
        assert confirmed.status_code == 200, confirmed.text
        for live in (mine, provider):
            entered = await live.expect("enter")
            assert entered["object"]["objectId"] == appt
            assert entered["object"]["patient"]["objectId"] == team.patient
        team.api.put(f"/classes/Appointment/{appt}", {"status": "checked-in"}, master=True)
        for live in (mine, provider):
            assert (await live.expect("leave"))["object"]["status"] == "checked-in"
        await other.silent()
        await outsider.silent(0.2)
    finally:
        for live in (mine, other, outsider, provider):
            await live.close()


async def test_leaving_the_care_team_stops_events(team: Clinic) -> None:
    url, app = team.api.server.url, team.api.server.app_id
    extra, extra_token = make_user(team.api, "provider")
    done = team.api.post(
        "/functions/assignProvider", {"patientId": team.patient, "providerId": extra}, master=True
    )
    assert done.status_code == 200, done.text
    live = await session_client(url, app, token=extra_token)
    try:
        assert (await live.subscribe(3, "Appointment"))["op"] == "subscribed"
        first = _appointment(team, 11)
        assert (await live.expect("create"))["object"]["objectId"] == first
        removed = team.api.post(
            "/functions/unassignProvider",
            {"patientId": team.patient, "providerId": extra},
            master=True,
        )
        assert removed.status_code == 200, removed.text
        # The role change reaches the hub before the next event: no stale roles are used,
        # although this server only re-reads sessions every 60 seconds.
        _appointment(team, 13)
        team.api.put(f"/classes/Appointment/{first}", {"status": "confirmed"}, master=True)
        await live.silent(1.0)
    finally:
        await live.close()
