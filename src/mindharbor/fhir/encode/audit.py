"""AuditEvent (AuditLog). Only compliance and admin can read the log; the class-level
permissions of ``AuditLog`` decide that, here as on every other face."""

from __future__ import annotations

from typing import Any

from mindharbor.fhir.encode.common import NS, Context, date_iso, drop_empty, meta, pointer_id

ACTION_SYSTEM = f"{NS}/CodeSystem/audit-action"


def _crud(action: str) -> str:
    verb = action.rsplit(".", 1)[-1]
    if verb in ("read", "download", "disclosure", "everything", "export"):
        return "R"
    if verb in ("create", "signup", "upload", "auto_open", "import"):
        return "C"
    if verb in ("delete", "purge"):
        return "D"
    if verb in ("update", "amend", "publish", "submit", "assign", "unassign", "change"):
        return "U"
    return "E"


def audit_event(obj: dict[str, Any], ctx: Context) -> list[dict[str, Any]]:
    action = str(obj.get("action") or "unknown")
    actor = pointer_id(obj.get("actor"))
    who = ctx.user_ref(actor) or {"display": "anonymous or the server"}
    metadata: dict[str, Any] = obj["metadata"] if isinstance(obj.get("metadata"), dict) else {}
    network = metadata.get("ip")
    outcome = "4" if action.endswith((".failure", ".denied", ".locked")) else "0"
    resource = {
        "resourceType": "AuditEvent",
        "id": obj["objectId"],
        "meta": meta(obj),
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
            "display": "RESTful Operation",
        },
        "subtype": [{"system": ACTION_SYSTEM, "code": action}],
        "action": _crud(action),
        "recorded": date_iso(obj.get("createdAt")),
        "outcome": outcome,
        "outcomeDesc": obj.get("summary"),
        "agent": [
            {
                "who": who,
                "requestor": True,
                "network": {"address": network, "type": "2"} if network else None,
            }
        ],
        "source": {"observer": {"display": "MindHarbor"}},
        "entity": [
            {
                "what": {
                    "identifier": {
                        "system": f"{NS}/sid/{obj.get('entityType') or 'entity'}",
                        "value": str(obj.get("entityId") or "*"),
                    }
                },
                "type": {
                    "system": f"{NS}/CodeSystem/entity-type",
                    "code": str(obj.get("entityType") or "unknown"),
                },
            }
        ],
    }
    return [drop_empty(resource)]
