"""The audit log writer: entries are inserted in the same transaction as what they record.

Only this module writes ``AuditLog`` (directly, as the server), and the hooks below refuse every
API update and delete, the master key included; on the database a trigger refuses them too.
Reads of PHI are collected by the repository during a request and written here as one entry per
request, listing the ids returned. Metadata holds request context, ids and query *shapes*, never
PHI values or secrets. Each entry stores a digest of its content for the sealer (``seal.py``).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import orjson

from mindharbor.errors import OperationForbidden
from mindharbor.hooks import DeleteRequest, Hooks, SaveRequest
from mindharbor.security.acl import permission_lists
from mindharbor.storage.codec import iso, new_object_id, utcnow
from mindharbor.storage.repository import Repository

AUDIT_ACL = {"role:compliance": {"read": True}, "role:admin": {"read": True}}
_READERS, _WRITERS = permission_lists(AUDIT_ACL)
MAX_IDS_PER_ENTRY = 1000


def entry_digest(row: dict[str, Any]) -> str:
    """SHA-256 over the canonical content of an entry (what verify-audit recomputes)."""
    created = row["createdAt"]
    content = [
        row["objectId"],
        iso(created) if isinstance(created, datetime) else created,
        row.get("actor"),
        row["entityType"],
        row["entityId"],
        row["action"],
        row["summary"],
        row.get("metadata"),
    ]
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


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
    """Append one entry in the caller's transaction."""
    schema = repo.schema_or_none("AuditLog")
    if schema is None:
        raise RuntimeError("AuditLog class is missing: run `mindharbor migrate`")
    now = utcnow()
    row: dict[str, Any] = {
        "objectId": new_object_id(),
        "createdAt": now,
        "updatedAt": now,
        "actor": actor if actor is not None else repo.auth.user_id,
        "entityType": entity_type,
        "entityId": entity_id,
        "action": action,
        "summary": summary,
        "metadata": {**{k: v for k, v in repo.meta.items() if v is not None}, **(metadata or {})},
        "_acl": AUDIT_ACL,
        "_rperm": _READERS,
        "_wperm": _WRITERS,
    }
    row["_hash"] = entry_digest(row)
    await repo.conn.execute(_insert_into(repo.table(schema)), row)


# One INSERT construct per AuditLog table version, executed with the row as parameters: no
# statement is rebuilt per entry, and its compiled form comes from SQLAlchemy's cache.
_INSERTS: dict[Any, Any] = {}


def _insert_into(table: Any) -> Any:
    stmt = _INSERTS.get(table)
    if stmt is None:
        if len(_INSERTS) > 8:
            _INSERTS.clear()
        stmt = _INSERTS[table] = table.insert()
    return stmt


def _query_shape(where: Any) -> Any:
    """The structure of a ``where`` with every value replaced, so no PHI reaches the log."""
    if isinstance(where, dict):
        return {k: _query_shape(v) for k, v in sorted(where.items())}
    if isinstance(where, list):
        return [_query_shape(v) for v in where[:5]]
    return "?"


async def flush(repo: Repository) -> None:
    """Before commit: one entry for the request's PHI reads, one per write it made."""
    trail = repo.audit_trail
    for write in trail.writes:
        await record(
            repo,
            write["action"],
            entity_type=write["className"],
            entity_id=write["objectId"],
            summary=f"{write['action'].split('.')[-1].capitalize()} {write['className']}",
            metadata={"fields": write["fields"]},
        )
    if trail.reads or trail.counts:
        ids = {cls: sorted(found)[:MAX_IDS_PER_ENTRY] for cls, found in trail.reads.items()}
        total = sum(len(found) for found in trail.reads.values())
        classes = sorted(set(trail.reads) | set(trail.counts))
        first_id = next((i for found in ids.values() for i in found), "*")
        await record(
            repo,
            "phi.read",
            entity_type=classes[0] if len(classes) == 1 else "multiple",
            entity_id=first_id if total == 1 else "*",
            summary=f"Read {total} record(s) of {', '.join(classes)}",
            metadata={
                "ids": ids,
                "counts": trail.counts,
                "queries": [_query_shape(q) for q in trail.queries[:10]],
            },
        )
    trail.clear()


def register(hooks: Hooks) -> None:
    hooks.before_commit.append(flush)

    @hooks.on_before_save("AuditLog")
    async def append_only(request: SaveRequest) -> None:
        raise OperationForbidden("The audit log is append-only and written by the server.")

    @hooks.on_before_delete("AuditLog")
    async def never_delete(request: DeleteRequest) -> None:
        raise OperationForbidden("The audit log is append-only and written by the server.")
