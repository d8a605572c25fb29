"""Shared pieces of the FHIR encoders: namespaces, references, dates, meta.

Every encoder is a pure function of one object in Parse's wire encoding (what the Repository
returns, already filtered by the access policy) and a ``Context``; none reads the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Identifier and code systems MindHarbor defines itself.
NS = "https://mindharbor.dev/fhir"
MRN_SYSTEM = f"{NS}/sid/mrn"
USER_SYSTEM = f"{NS}/sid/user"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


@dataclass
class Context:
    """What encoders need beyond the object: the base URL and who users are.

    ``users`` maps a ``_User`` objectId to a FHIR reference (``Practitioner/<id>`` or
    ``Patient/<id>``) for the users the caller may see as a profile; other users are referred
    to by identifier only, so an encoder never reveals more than the caller could read."""

    base: str
    users: dict[str, str] = field(default_factory=dict)

    def user_ref(self, user_id: str | None, display: str | None = None) -> dict[str, Any] | None:
        if not user_id:
            return None
        found = self.users.get(user_id)
        ref: dict[str, Any] = (
            {"reference": found}
            if found
            else {"identifier": {"system": USER_SYSTEM, "value": user_id}}
        )
        if display:
            ref["display"] = display
        return ref


def pointer_id(value: Any) -> str | None:
    if isinstance(value, dict) and value.get("__type") in ("Pointer", "Object"):
        oid = value.get("objectId")
        return str(oid) if oid else None
    return None


def date_iso(value: Any) -> str | None:
    """A wire Date (or an ISO string) as a FHIR instant/dateTime (UTC, milliseconds)."""
    if isinstance(value, dict) and value.get("__type") == "Date":
        value = value.get("iso")
    if isinstance(value, str) and value:
        return value if value.endswith("Z") or "+" in value[10:] else value + "Z"
    return None


def date_only(value: Any) -> str | None:
    text = date_iso(value)
    return text[:10] if text else None


def meta(obj: dict[str, Any], version: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"lastUpdated": date_iso(obj.get("updatedAt"))}
    if version is not None:
        out["versionId"] = str(int(version))
    return out


def patient_ref(obj: dict[str, Any], field_name: str = "patient") -> dict[str, Any] | None:
    pid = pointer_id(obj.get(field_name))
    return {"reference": f"Patient/{pid}"} if pid else None


def drop_empty(resource: dict[str, Any]) -> dict[str, Any]:
    """FHIR forbids empty strings, arrays and objects: drop them (recursively)."""
    out: dict[str, Any] = {}
    for key, value in resource.items():
        if isinstance(value, dict):
            value = drop_empty(value)
        elif isinstance(value, list):
            value = [drop_empty(v) if isinstance(v, dict) else v for v in value]
            value = [v for v in value if v not in (None, "", {}, [])]
        if value in (None, "", {}, []):
            continue
        out[key] = value
    return out


def text_or_none(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


Encoder = Callable[[dict[str, Any], Context], list[dict[str, Any]]]
