"""The audit log writer: entries are inserted in the same transaction as what they record.

Only this module writes ``AuditLog`` (as the system, never through the API), and the hooks below
refuse every update and delete, the master key included: the log is append-only. Metadata holds
request context and ids, never PHI values or secrets.
"""

from __future__ import annotations

from typing import Any

from mindharbor.errors import OperationForbidden
from mindharbor.hooks import DeleteRequest, Hooks, SaveRequest
from mindharbor.storage.repository import Repository

AUDIT_ACL = {"role:compliance": {"read": True}, "role:admin": {"read": True}}


async def record(
    repo: Repository,
    action: str,
    *,
    entity_type: str,
    entity_id: str,
    summary: str,
    metadata: dict[str, Any] | None = None,
    actor: str | None = None,
) -> None:
    actor_id = actor if actor is not None else repo.auth.user_id
    body: dict[str, Any] = {
        "entityType": entity_type,
        "entityId": entity_id,
        "action": action,
        "summary": summary,
        "metadata": {**repo.meta, **(metadata or {})},
        "ACL": AUDIT_ACL,
    }
    if actor_id:
        body["actor"] = {"__type": "Pointer", "className": "_User", "objectId": actor_id}
    await repo.system().create("AuditLog", body)


def register(hooks: Hooks) -> None:
    @hooks.on_before_save("AuditLog")
    async def append_only(request: SaveRequest) -> None:
        if not request.is_new or not request.auth.is_system:
            raise OperationForbidden("The audit log is append-only and written by the server.")

    @hooks.on_before_delete("AuditLog")
    async def never_delete(request: DeleteRequest) -> None:
        raise OperationForbidden("The audit log is append-only and written by the server.")
