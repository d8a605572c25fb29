"""Patient (PatientProfile) and Practitioner (ProviderProfile)."""

from __future__ import annotations

from typing import Any

from mindharbor.fhir.encode.common import (
    MRN_SYSTEM,
    USER_SYSTEM,
    Context,
    date_only,
    drop_empty,
    meta,
    pointer_id,
    text_or_none,
)


def _telecom(contact: Any) -> list[dict[str, Any]]:
    if not isinstance(contact, dict):
        return []
    out: list[dict[str, Any]] = []
    for key, system in (("phone", "phone"), ("mobile", "phone"), ("email", "email")):
        value = text_or_none(contact.get(key))
        if value:
            entry = {"system": system, "value": value}
            if key == "mobile":
                entry["use"] = "mobile"
            out.append(entry)
    return out


def _address(contact: Any) -> list[dict[str, Any]]:
    if not isinstance(contact, dict):
        return []
    address = contact.get("address")
    if isinstance(address, str) and address.strip():
        return [{"text": address.strip()}]
    if isinstance(address, dict):
        lines = [text_or_none(address.get(k)) for k in ("line1", "line2", "street")]
        return [
            {
                "line": [line for line in lines if line],
                "city": text_or_none(address.get("city")),
                "state": text_or_none(address.get("state")),
                "postalCode": text_or_none(address.get("postalCode") or address.get("zip")),
                "country": text_or_none(address.get("country")),
            }
        ]
    return []


def _emergency_contact(contact: Any) -> list[dict[str, Any]]:
    if not isinstance(contact, dict) or not isinstance(contact.get("emergencyContact"), dict):
        return []
    person = contact["emergencyContact"]
    return [
        {
            "relationship": [
                {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "C"}
                    ],
                    "text": text_or_none(person.get("relationship")) or "Emergency contact",
                }
            ],
            "name": {"text": text_or_none(person.get("name"))},
            "telecom": _telecom(person),
        }
    ]


def patient(obj: dict[str, Any], ctx: Context) -> list[dict[str, Any]]:
    user = pointer_id(obj.get("user"))
    identifiers = []
    if text_or_none(obj.get("medicalRecordNumber")):
        identifiers.append(
            {
                "use": "usual",
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
                    ]
                },
                "system": MRN_SYSTEM,
                "value": obj["medicalRecordNumber"],
            }
        )
    if user:
        identifiers.append({"system": USER_SYSTEM, "value": user})
    resource = {
        "resourceType": "Patient",
        "id": obj["objectId"],
        "meta": meta(obj),
        "identifier": identifiers,
        "active": obj.get("isActive") if isinstance(obj.get("isActive"), bool) else None,
        "name": [{"text": text_or_none(obj.get("displayName"))}],
        "telecom": _telecom(obj.get("contact")),
        "birthDate": date_only(obj.get("dateOfBirth")),
        "address": _address(obj.get("contact")),
        "contact": _emergency_contact(obj.get("contact")),
        "managingOrganization": (
            {"display": obj["primaryClinic"]} if text_or_none(obj.get("primaryClinic")) else None
        ),
    }
    return [drop_empty(resource)]


def practitioner(obj: dict[str, Any], ctx: Context) -> list[dict[str, Any]]:
    user = pointer_id(obj.get("user"))
    resource = {
        "resourceType": "Practitioner",
        "id": obj["objectId"],
        "meta": meta(obj),
        "identifier": [{"system": USER_SYSTEM, "value": user}] if user else [],
        "active": obj.get("isActive") if isinstance(obj.get("isActive"), bool) else None,
        "name": [{"text": text_or_none(obj.get("displayName"))}],
        "telecom": _telecom(obj.get("contact")),
        "qualification": (
            [{"code": {"text": obj["specialty"]}}] if text_or_none(obj.get("specialty")) else []
        ),
    }
    return [drop_empty(resource)]
