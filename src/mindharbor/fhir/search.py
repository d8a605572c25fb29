"""FHIR search parameters → Parse ``where`` clauses for the object service.

Each parameter translates one value (with its modifier) into a ``where`` fragment on the Parse
class behind the resource; repeated parameters are ANDed, comma-separated values ORed, as FHIR
says. Access control is not decided here: the fragment is compiled by the Repository together
with the caller's read filter, so a search can only ever narrow what the caller may read.
Derived resources (several Observations per assessment) may also carry a ``keep`` predicate that
picks among the resources of a row the caller was already allowed to read.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mindharbor.fhir.outcome import bad_request

Keep = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True)
class Clause:
    where: dict[str, Any]
    keep: Keep | None = None


Translate = Callable[[list[str], str | None], Clause]


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # token | date | reference | string (as listed in the CapabilityStatement)
    translate: Translate
    doc: str = ""


# -- dates ----------------------------------------------------------------------------------------
_DATE_RE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d{1,6}))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
_PREFIXES = ("eq", "ne", "lt", "gt", "le", "ge", "sa", "eb")


def date_range(text: str) -> tuple[datetime, datetime]:
    """The [start, end) a FHIR date of any precision stands for, as naive UTC."""
    match = _DATE_RE.match(text)
    if match is None:
        raise bad_request(f"Invalid date: {text[:40]!r}.")
    g = match.groupdict()
    try:
        year = int(g["y"])
        if g["m"] is None:
            start = datetime(year, 1, 1)  # noqa: DTZ001 - naive UTC throughout
            return start, datetime(year + 1, 1, 1)  # noqa: DTZ001
        month = int(g["m"])
        if g["d"] is None:
            start = datetime(year, month, 1)  # noqa: DTZ001
            end = datetime(year + (month == 12), month % 12 + 1, 1)  # noqa: DTZ001
            return start, end
        day = datetime(year, month, int(g["d"]))  # noqa: DTZ001
        if g["H"] is None:
            return day, day + timedelta(days=1)
        moment = day.replace(hour=int(g["H"]), minute=int(g["M"]), second=int(g["S"] or 0))
        if g["f"]:
            moment = moment.replace(microsecond=int(g["f"].ljust(6, "0")))
        if g["tz"] and g["tz"] != "Z":
            sign = 1 if g["tz"][0] == "+" else -1
            hours, minutes = int(g["tz"][1:3]), int(g["tz"][4:6])
            moment -= sign * timedelta(hours=hours, minutes=minutes)
        step = timedelta(seconds=1) if g["S"] is not None else timedelta(minutes=1)
        if g["f"]:
            step = timedelta(milliseconds=1)
        return moment, moment + step
    except ValueError as exc:
        raise bad_request(f"Invalid date: {text[:40]!r}.") from exc


def _wire(moment: datetime) -> dict[str, str]:
    text = moment.replace(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S.")
    return {"__type": "Date", "iso": text + f"{moment.microsecond // 1000:03d}Z"}


def date_clause(field: str, value: str) -> dict[str, Any]:
    prefix = value[:2] if value[:2] in _PREFIXES else "eq"
    start, end = date_range(value[2:] if value[:2] in _PREFIXES else value)
    if prefix == "eq":
        return {field: {"$gte": _wire(start), "$lt": _wire(end)}}
    if prefix == "ne":
        return {"$or": [{field: {"$lt": _wire(start)}}, {field: {"$gte": _wire(end)}}]}
    if prefix in ("lt", "eb"):
        return {field: {"$lt": _wire(start)}}
    if prefix in ("gt", "sa"):
        return {field: {"$gte": _wire(end)}}
    if prefix == "le":
        return {field: {"$lt": _wire(end)}}
    return {field: {"$gte": _wire(start)}}  # ge


def date(field: str) -> Translate:
    def translate(values: list[str], modifier: str | None) -> Clause:
        if modifier:
            raise bad_request(f"Modifier :{modifier} is not supported on date parameters.")
        clauses = [date_clause(field, v) for v in values]
        return Clause(clauses[0] if len(clauses) == 1 else {"$or": clauses})

    return translate


# -- references, tokens, strings ----------------------------------------------------------------
_ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def reference_ids(values: list[str], fhir_type: str) -> list[str]:
    """``Patient/abc``, a full URL ending in it, or a bare ``abc`` → ``abc``."""
    ids = []
    for value in values:
        parts = value.rstrip("/").split("/")
        if len(parts) >= 2 and parts[-2] != fhir_type:
            raise bad_request(f"Expected a reference to {fhir_type}, got {value[:80]!r}.")
        ident = parts[-1]
        if not _ID_RE.match(ident):
            raise bad_request(f"Invalid id: {ident[:80]!r}.")
        ids.append(ident)
    return ids


def reference(field: str, fhir_type: str, parse_class: str) -> Translate:
    def translate(values: list[str], modifier: str | None) -> Clause:
        if modifier not in (None, fhir_type):
            raise bad_request(f"Modifier :{modifier} is not supported here.")
        pointers = [
            {"__type": "Pointer", "className": parse_class, "objectId": i}
            for i in reference_ids(values, fhir_type)
        ]
        return Clause({field: pointers[0] if len(pointers) == 1 else {"$in": pointers}})

    return translate


def token_values(values: list[str]) -> list[tuple[str | None, str]]:
    out = []
    for value in values:
        system, bar, code = value.rpartition("|")
        out.append((system if bar else None, code))
    return out


def token_map(field: str, mapping: dict[str, list[Any]]) -> Translate:
    """A FHIR code → the Parse values it stands for (e.g. ``booked`` → scheduled, confirmed)."""

    def translate(values: list[str], modifier: str | None) -> Clause:
        wanted: list[Any] = []
        for _, code in token_values(values):
            if code not in mapping:
                raise bad_request(f"Unknown code {code[:40]!r}; expected one of {sorted(mapping)}.")
            wanted.extend(mapping[code])
        if modifier == "not":
            return Clause({field: {"$nin": wanted}})
        if modifier:
            raise bad_request(f"Modifier :{modifier} is not supported here.")
        return Clause({field: {"$in": wanted}})

    return translate


def boolean(field: str) -> Translate:
    return token_map(field, {"true": [True], "false": [False]})


def ids(translate_id: Callable[[str], str] = lambda i: i) -> Translate:
    def translate(values: list[str], modifier: str | None) -> Clause:
        if modifier:
            raise bad_request(f"Modifier :{modifier} is not supported on _id.")
        wanted = reference_ids(values, "")
        object_ids = sorted({translate_id(i) for i in wanted})
        keep = None
        if any(translate_id(i) != i for i in wanted):
            keep_ids = set(wanted)
            keep = lambda resource: resource.get("id") in keep_ids  # noqa: E731
        return Clause({"objectId": {"$in": object_ids}}, keep)

    return translate


def string(field: str) -> Translate:
    """FHIR string search: case-insensitive prefix; ``:exact`` and ``:contains``."""

    def translate(values: list[str], modifier: str | None) -> Clause:
        clauses: list[dict[str, Any]] = []
        for value in values:
            if modifier == "exact":
                clauses.append({field: value})
            elif modifier in (None, "contains"):
                pattern = re.escape(value)
                pattern = pattern if modifier == "contains" else "^" + pattern
                clauses.append({field: {"$regex": pattern, "$options": "i"}})
            else:
                raise bad_request(f"Modifier :{modifier} is not supported on string parameters.")
        return Clause(clauses[0] if len(clauses) == 1 else {"$or": clauses})

    return translate


def split_values(raw: str) -> list[str]:
    """Comma-separated values (``\\,`` is a literal comma)."""
    parts = re.split(r"(?<!\\),", raw)
    values = [p.replace("\\,", ",") for p in parts]
    if any(not v for v in values):
        raise bad_request("Empty search value.")
    return values
