"""Communication (Message), Appointment and Flag (CrisisInterventionLog)."""

from __future__ import annotations

from typing import Any

from mindharbor.fhir.encode.common import (
    NS,
    Context,
    date_iso,
    drop_empty,
    meta,
    patient_ref,
    pointer_id,
    text_or_none,
)

APPOINTMENT_STATUS = {
    "scheduled": "booked",
    "confirmed": "booked",
    "checked-in": "checked-in",
    "completed": "fulfilled",
    "cancelled": "cancelled",
    "no-show": "noshow",
}
FLAG_STATUS = {"open": "active", "active": "active", "resolved": "inactive", "closed": "inactive"}
CRISIS_SYSTEM = f"{NS}/CodeSystem/crisis-risk"
FLAG_PRIORITY = "http://hl7.org/fhir/StructureDefinition/flag-priority"
_PRIORITY = {"low": "PL", "moderate": "PM", "high": "PH", "imminent": "PH"}


def communication(obj: dict[str, Any], ctx: Context) -> list[dict[str, Any]]:
    payload: list[dict[str, Any]] = []
    if isinstance(obj.get("body"), str):
        payload.append({"contentString": obj["body"]})
    for attachment in obj.get("attachments") or []:
        # The URL was signed by the repository when it returned this (readable) message.
        if isinstance(attachment, dict) and attachment.get("__type") == "File":
            payload.append(
                {
                    "contentAttachment": {
                        "url": attachment.get("url"),
                        "title": _original_name(attachment.get("name")),
                    }
                }
            )
    recipient = ctx.user_ref(pointer_id(obj.get("to")))
    resource = {
        "resourceType": "Communication",
        "id": obj["objectId"],
        "meta": meta(obj),
        "identifier": [{"system": f"{NS}/sid/conversation", "value": obj["conversationId"]}]
        if text_or_none(obj.get("conversationId"))
        else [],
        "status": "completed",
        "subject": patient_ref(obj),
        "sent": date_iso(obj.get("sentAt") or obj.get("createdAt")),
        "received": date_iso(obj.get("deliveredAt") or obj.get("readAt")),
        "sender": ctx.user_ref(pointer_id(obj.get("from"))),
        "recipient": [recipient] if recipient else [],
        "payload": payload,
        "extension": [
            {"url": f"{NS}/StructureDefinition/message-status", "valueCode": obj["status"]}
        ]
        if text_or_none(obj.get("status"))
        else [],
    }
    return [drop_empty(resource)]


def _original_name(stored: Any) -> str | None:
    """Stored names are ``<32 hex>_<client name>``; show the client's name."""
    if not isinstance(stored, str):
        return None
    head, sep, rest = stored.partition("_")
    return rest if sep and len(head) == 32 else stored


def appointment(obj: dict[str, Any], ctx: Context) -> list[dict[str, Any]]:
    participants: list[dict[str, Any]] = []
    patient = patient_ref(obj)
    if patient:
        participants.append({"actor": patient, "status": "accepted"})
    provider = ctx.user_ref(pointer_id(obj.get("provider")))
    if provider:
        participants.append({"actor": provider, "status": "accepted"})
    if text_or_none(obj.get("location")):
        participants.append({"actor": {"display": obj["location"]}, "status": "accepted"})
    reason = text_or_none(obj.get("reason"))
    resource = {
        "resourceType": "Appointment",
        "id": obj["objectId"],
        "meta": meta(obj),
        "status": APPOINTMENT_STATUS.get(str(obj.get("status")), "booked"),
        "start": date_iso(obj.get("startAt")),
        "end": date_iso(obj.get("endAt")),
        "created": date_iso(obj.get("createdAt")),
        "reasonCode": [{"text": reason}] if reason else [],
        "description": reason,
        "participant": participants,
    }
    return [drop_empty(resource)]


def flag(obj: dict[str, Any], ctx: Context) -> list[dict[str, Any]]:
    level = text_or_none(obj.get("riskLevel"))
    status = str(obj.get("status") or "open")
    label = f"Crisis intervention ({level} risk)" if level else "Crisis intervention"
    coding = [{"system": CRISIS_SYSTEM, "code": level or "crisis", "display": label}]
    resource = {
        "resourceType": "Flag",
        "id": obj["objectId"],
        "meta": meta(obj),
        "extension": [
            {
                "url": FLAG_PRIORITY,
                "valueCodeableConcept": {
                    "coding": [
                        {
                            "system": "http://hl7.org/fhir/flag-priority-code",
                            "code": _PRIORITY[level],
                        }
                    ]
                },
            }
        ]
        if level in _PRIORITY
        else [],
        "status": FLAG_STATUS.get(status, "active"),
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/flag-category",
                        "code": "safety",
                        "display": "Safety",
                    }
                ]
            }
        ],
        "code": {"coding": coding, "text": label},
        "subject": patient_ref(obj),
        "period": {"start": date_iso(obj.get("interventionDate"))},
        "author": ctx.user_ref(pointer_id(obj.get("recordedBy"))),
    }
    return [drop_empty(resource)]
