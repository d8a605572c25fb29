"""Appointments: a valid time span, a clinical status workflow, and no double-booked provider.

Why these rules (``careteam`` has already run for the same save and decided who may write):

* ``endAt`` strictly after ``startAt`` (142): a zero-length or inverted visit cannot be attended,
  and on PostgreSQL it could not even form the time range the double-booking constraint checks.
* The status follows the clinic's workflow, and ``completed``, ``cancelled`` and ``no-show`` are
  final (142 otherwise). Those three are facts about what happened: whether a patient showed up
  is clinically meaningful (missed visits are a risk signal in behavioural health) and billing
  relies on it, so it is never silently rewritten; a new visit is booked instead. For the same
  reason a final appointment's time, provider and patient no longer change.
* A provider is never booked twice at once: an overbooked clinician means a patient in distress
  who is not seen at the time they were promised. Two people booking the last slot at the same
  moment must not both succeed, so the guarantee lives in the database:

  - PostgreSQL: an exclusion constraint over ``(provider, tsrange(startAt, endAt))`` for the
    active statuses (``BOOKING_GUARDS`` in ``storage/db.py``, added after the schema sync). It is
    deferred to commit, where ``translate_db_error`` maps its violation (23P01) to 142. Ranges are
    half-open, so back-to-back visits (one ends when the next starts) are allowed.
  - SQLite: ``find_overlap`` below, run inside the write's transaction. That is enough because
    SQLite has one writer at a time and every transaction here starts with ``BEGIN IMMEDIATE``
    (``storage/db.py``), which takes the database's write lock before the check: no other
    transaction, in this process or another, can insert between our check and our insert.

  The same check runs on PostgreSQL too, where it only gives the common case an early answer; the
  constraint is what makes it true under concurrency. It looks at every appointment of the
  provider, including ones the caller may not read: the answer is "that time is taken", never
  whose appointment it is.
* The provider booked is on the patient's care team (or is the caller), checked before the
  calendar is looked at: a provider cannot fill, nor probe through the double-booking answer,
  the calendar of a clinician who has nothing to do with this patient. Within a care team the
  answer to a clash says only "taken", never for whom. The master key (imports, operators) is
  not held to it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mindharbor.auth.roles import roles_of
from mindharbor.errors import ValidationFailed
from mindharbor.hooks import Hooks, SaveRequest
from mindharbor.security.roles import care_team_role
from mindharbor.storage.codec import iso, parse_iso
from mindharbor.storage.repository import FindQuery, Repository

TRANSITIONS: dict[str, frozenset[str]] = {
    "scheduled": frozenset({"confirmed", "cancelled", "no-show"}),
    "confirmed": frozenset({"checked-in", "cancelled", "no-show"}),
    "checked-in": frozenset({"completed"}),
    "completed": frozenset(),
    "cancelled": frozenset(),
    "no-show": frozenset(),
}
INITIAL = frozenset({"scheduled", "confirmed"})
FINAL = frozenset(status for status, nexts in TRANSITIONS.items() if not nexts)
# Appointments that no longer hold the provider's time.
INACTIVE = ("cancelled", "no-show")
SCHEDULE_FIELDS = ("startAt", "endAt", "provider", "patient")
DOUBLE_BOOKED = "The provider is already booked at that time."
NOT_ON_TEAM = "The appointment's provider must be on the patient's care team."


def _pointer_id(value: Any) -> str | None:
    if isinstance(value, dict) and value.get("__type") == "Pointer":
        return str(value.get("objectId"))
    return value if isinstance(value, str) else None


def _as_datetime(value: Any) -> datetime | None:
    """A Date from the client's wire encoding or a stored (naive UTC) column value; anything
    else is left for the repository's type check to refuse."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, dict) and value.get("__type") == "Date":
        return parse_iso(value.get("iso"))
    return None


async def find_overlap(
    repo: Repository, provider: str, start: datetime, end: datetime, exclude: str
) -> str | None:
    """The id of an active appointment of ``provider`` overlapping ``[start, end)``, if any.

    Asked as the system in this same transaction, not through the caller's ACL: the provider's
    calendar is one resource whoever books it (and the server's own look is not a disclosure).
    """
    if repo.schema_or_none("Appointment") is None:
        return None
    query = FindQuery(
        where={
            "provider": {"__type": "Pointer", "className": "_User", "objectId": provider},
            "objectId": {"$ne": exclude},
            "status": {"$nin": list(INACTIVE)},
            "startAt": {"$lt": {"__type": "Date", "iso": iso(end)}},
            "endAt": {"$gt": {"__type": "Date", "iso": iso(start)}},
        },
        keys=["objectId"],
        limit=1,
    )
    found = (await repo.system().find("Appointment", query)).results
    return str(found[0]["objectId"]) if found else None


async def check_provider_on_team(request: SaveRequest, provider: str) -> None:
    """Refuse (142) a provider who is neither the caller nor on the patient's care team."""
    auth = request.auth
    if auth.is_master or provider == auth.user_id:
        return
    patient = _pointer_id(request.value("patient"))
    if patient is None:
        return  # refused as missing by the repository
    if care_team_role(patient) not in await roles_of(request.repo.system(), provider):
        raise ValidationFailed(NOT_ON_TEAM)


def _check_status(request: SaveRequest) -> str:
    status = request.value("status")
    if status is None and request.is_new:
        status = "scheduled"
    if not isinstance(status, str) or status not in TRANSITIONS:
        raise ValidationFailed(f"status must be one of {', '.join(TRANSITIONS)}.")
    if request.is_new:
        if status not in INITIAL:
            raise ValidationFailed("A new appointment is scheduled or confirmed.")
        return status
    current = (request.original or {}).get("status") or "scheduled"
    if status != current and status not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing (it is final)"
        raise ValidationFailed(f"An appointment that is {current} can become {allowed}.")
    if current in FINAL and any(name in request.body for name in SCHEDULE_FIELDS):
        raise ValidationFailed(f"An appointment that is {current} cannot be rescheduled.")
    return status


async def appointment_before_save(request: SaveRequest) -> None:
    status = _check_status(request)
    start = _as_datetime(request.value("startAt"))
    end = _as_datetime(request.value("endAt"))
    if start is not None and end is not None and end <= start:
        raise ValidationFailed("endAt must be after startAt.")
    provider = _pointer_id(request.value("provider"))
    if status in INACTIVE or start is None or end is None or provider is None:
        return  # missing required fields are refused by the repository
    takes_time = request.is_new or any(
        name in request.body for name in ("startAt", "endAt", "provider", "patient")
    )
    if takes_time:
        await check_provider_on_team(request, provider)
    if takes_time and await find_overlap(request.repo, provider, start, end, request.object_id):
        raise ValidationFailed(DOUBLE_BOOKED)


def register(hooks: Hooks) -> None:
    hooks.on_before_save("Appointment")(appointment_before_save)
