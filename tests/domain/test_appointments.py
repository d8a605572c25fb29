"""Appointments over HTTP on both backends: time span, status workflow, and no double booking,
including two bookings racing for the same slot (on PostgreSQL the database decides)."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from mindharbor.domain import appointments
from tests.support import LiveServer, ParseClient, live_server, make_settings, pointer

PASSWORD = "a long enough passphrase"
_days = itertools.count(1)


@dataclass
class Desk:
    """A clinic's front desk: a patient, two providers on their care team, a scheduler."""

    live: LiveServer
    api: ParseClient
    profile: str
    provider: str
    colleague: str
    token: str  # the provider's session: providers on the care team book visits

    def day(self) -> datetime:
        """A day of its own for each test, so tests never collide on the calendar."""
        return datetime(2031, 1, 1, 9, 0, tzinfo=UTC) + timedelta(days=next(_days))

    def body(
        self, start: datetime, end: datetime, provider: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        return {
            "patient": pointer("PatientProfile", self.profile),
            "provider": pointer("_User", provider or self.provider),
            "startAt": _date(start),
            "endAt": _date(end),
            **extra,
        }

    def book(self, start: datetime, end: datetime, **kw: Any) -> httpx.Response:
        return self.api.post(
            "/classes/Appointment",
            self.body(start, end, **kw),
            headers={"X-Parse-Session-Token": self.token},
        )

    def booked(self, start: datetime, end: datetime, **kw: Any) -> str:
        made = self.book(start, end, **kw)
        assert made.status_code == 201, made.text
        return str(made.json()["objectId"])

    def update(self, object_id: str, body: dict[str, Any]) -> httpx.Response:
        return self.api.put(
            f"/classes/Appointment/{object_id}", body, headers={"X-Parse-Session-Token": self.token}
        )


def _date(value: datetime) -> dict[str, str]:
    return {"__type": "Date", "iso": value.strftime("%Y-%m-%dT%H:%M:%S.000Z")}


def _code(response: httpx.Response) -> int | None:
    return None if response.status_code in (200, 201) else response.json().get("code")


def _user(api: ParseClient, role: str) -> tuple[str, str]:
    name = f"{role}_{uuid.uuid4().hex[:8]}"
    made = api.post("/users", {"username": name, "password": PASSWORD, "role": role}, master=True)
    assert made.status_code == 201, made.text
    token = api.post("/login", {"username": name, "password": PASSWORD}).json()["sessionToken"]
    return str(made.json()["objectId"]), str(token)


@pytest.fixture(scope="module")
def desk(
    backend_url: str, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Desk]:
    settings = make_settings(
        backend_url,
        tmp_path_factory.mktemp("appointments"),
        mfa_required_roles="",
        login_rate_per_ip=100_000,
    )
    with live_server(settings, backend) as live:
        api = live.client()
        patient, _ = _user(api, "patient")
        provider, token = _user(api, "provider")
        colleague, _ = _user(api, "provider")
        profile = api.create(
            "PatientProfile",
            {
                "user": pointer("_User", patient),
                "medicalRecordNumber": uuid.uuid4().hex,
                "displayName": "P",
                "isActive": True,
            },
        )
        for member in (provider, colleague):
            assigned = api.post(
                "/functions/assignProvider",
                {"patientId": profile, "providerId": member},
                master=True,
            )
            assert assigned.status_code == 200, assigned.text
        yield Desk(live, api, profile, provider, colleague, token)


HOUR = timedelta(hours=1)


def test_end_must_be_after_start(desk: Desk) -> None:
    day = desk.day()
    assert _code(desk.book(day, day - HOUR)) == 142
    assert _code(desk.book(day, day)) == 142
    made = desk.booked(day, day + HOUR)
    assert _code(desk.update(made, {"endAt": _date(day - HOUR)})) == 142
    assert _code(desk.update(made, {"startAt": _date(day + 2 * HOUR)})) == 142


def test_overlapping_bookings_of_a_provider_are_refused(desk: Desk) -> None:
    day = desk.day()
    first = desk.booked(day, day + HOUR)
    for start, end in (
        (day, day + HOUR),  # the same slot
        (day - HOUR / 2, day + HOUR / 2),  # ends inside
        (day + HOUR / 2, day + 2 * HOUR),  # starts inside
        (day - HOUR, day + 2 * HOUR),  # contains it
        (day + HOUR / 4, day + HOUR / 2),  # inside it
    ):
        refused = desk.book(start, end)
        assert _code(refused) == 142, (start, end, refused.text)
        assert refused.json()["error"] == "The provider is already booked at that time."
    # Back-to-back on both sides, and another provider at the same time, are fine.
    desk.booked(day + HOUR, day + 2 * HOUR)
    desk.booked(day - HOUR, day)
    desk.booked(day, day + HOUR, provider=desk.colleague)
    # Moving an appointment onto a taken slot is a booking too; moving within its own is not.
    later = desk.booked(day + 3 * HOUR, day + 4 * HOUR)
    assert _code(desk.update(later, {"startAt": _date(day + HOUR / 2)})) == 142
    assert _code(desk.update(later, {"endAt": _date(day + 5 * HOUR)})) is None
    assert _code(desk.update(first, {"reason": "follow-up"})) is None


@pytest.mark.parametrize("status", ["cancelled", "no-show"])
def test_cancelled_and_no_show_appointments_free_the_slot(desk: Desk, status: str) -> None:
    day = desk.day()
    first = desk.booked(day, day + HOUR)
    assert _code(desk.book(day, day + HOUR)) == 142
    assert _code(desk.update(first, {"status": status})) is None
    second = desk.booked(day, day + HOUR)
    assert second != first


@pytest.mark.parametrize(
    "path",
    [
        ["confirmed", "checked-in", "completed"],
        ["cancelled"],
        ["no-show"],
        ["confirmed", "cancelled"],
        ["confirmed", "no-show"],
    ],
)
def test_valid_status_transitions(desk: Desk, path: list[str]) -> None:
    day = desk.day()
    made = desk.booked(day, day + HOUR)
    for status in path:
        moved = desk.update(made, {"status": status})
        assert moved.status_code == 200, (status, moved.text)
    final = desk.api.get(f"/classes/Appointment/{made}", master=True).json()
    assert final["status"] == path[-1]


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ([], "checked-in"),  # scheduled must be confirmed first
        ([], "completed"),
        (["confirmed"], "completed"),  # not checked in
        (["confirmed"], "scheduled"),
        (["confirmed", "checked-in"], "cancelled"),
        (["confirmed", "checked-in"], "no-show"),
        (["confirmed", "checked-in", "completed"], "cancelled"),
        (["cancelled"], "scheduled"),
        (["cancelled"], "confirmed"),
        (["no-show"], "completed"),
        ([], "postponed"),  # not a status at all
    ],
)
def test_invalid_status_transitions(desk: Desk, path: list[str], refused: str) -> None:
    day = desk.day()
    made = desk.booked(day, day + HOUR)
    for status in path:
        assert desk.update(made, {"status": status}).status_code == 200
    answer = desk.update(made, {"status": refused})
    assert _code(answer) == 142, answer.text
    stored = desk.api.get(f"/classes/Appointment/{made}", master=True).json()
    assert stored["status"] == (path[-1] if path else "scheduled")


def test_new_appointments_start_scheduled_or_confirmed(desk: Desk) -> None:
    day = desk.day()
    for status in ("checked-in", "completed", "cancelled", "no-show", "later"):
        assert _code(desk.book(day, day + HOUR, status=status)) == 142, status
    desk.booked(day, day + HOUR, status="confirmed")
    desk.booked(day + HOUR, day + 2 * HOUR)  # no status: scheduled
    assert _code(desk.book(day, day + HOUR, status="scheduled")) == 142  # taken


def test_a_final_appointment_is_not_rescheduled(desk: Desk) -> None:
    day = desk.day()
    made = desk.booked(day, day + HOUR)
    assert desk.update(made, {"status": "cancelled"}).status_code == 200
    moved = desk.update(made, {"startAt": _date(day - HOUR)})
    assert _code(moved) == 142, moved.text
    assert _code(desk.update(made, {"reason": "patient unwell"})) is None


def _race(desk: Desk, start: datetime, end: datetime) -> list[httpx.Response]:
    """Two providers' sessions fire overlapping bookings of the same provider at once."""
    barrier = threading.Barrier(2)
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def fire(offset: timedelta) -> None:
        with httpx.Client(base_url=desk.live.url, timeout=60) as http:
            body = desk.body(start + offset, end + offset)
            headers = {
                "X-Parse-Application-Id": desk.live.app_id,
                "X-Parse-Session-Token": desk.token,
            }
            barrier.wait()
            answer = http.post("/classes/Appointment", json=body, headers=headers)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=fire, args=(offset,)) for offset in (timedelta(0), HOUR / 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def _assert_exactly_one_wins(desk: Desk, answers: list[httpx.Response], day: datetime) -> None:
    assert sorted(a.status_code for a in answers) == [201, 400], [a.text for a in answers]
    loser = next(a for a in answers if a.status_code == 400)
    assert loser.json() == {"code": 142, "error": "The provider is already booked at that time."}
    stored = desk.api.get(
        "/classes/Appointment",
        master=True,
        params={
            "where": {
                "provider": pointer("_User", desk.provider),
                "startAt": {"$gte": _date(day - HOUR), "$lt": _date(day + 2 * HOUR)},
            }
        },
    ).json()["results"]
    assert len(stored) == 1


def test_two_concurrent_overlapping_bookings_exactly_one_succeeds(desk: Desk) -> None:
    for _ in range(5):
        day = desk.day()
        _assert_exactly_one_wins(desk, _race(desk, day, day + HOUR), day)


def test_the_database_itself_refuses_double_booking(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: with the hook's check switched off, the exclusion constraint alone decides,
    sequentially and under a race. (SQLite has no such constraint: there the check in the hook
    is the guarantee, atomic because SQLite admits one writer at a time.)"""
    if desk.live.backend != "postgres":
        pytest.skip("SQLite relies on the hook's check inside its single-writer transaction")

    async def no_check(*_args: Any) -> str | None:
        return None

    monkeypatch.setattr(appointments, "find_overlap", no_check)
    day = desk.day()
    desk.booked(day, day + HOUR)
    refused = desk.book(day + HOUR / 2, day + 2 * HOUR)
    assert refused.json() == {"code": 142, "error": "The provider is already booked at that time."}
    desk.booked(day + HOUR, day + 2 * HOUR)  # back-to-back: the range is half-open
    for _ in range(5):
        day = desk.day()
        _assert_exactly_one_wins(desk, _race(desk, day, day + HOUR), day)
