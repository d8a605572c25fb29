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
from typing import TYPE_CHECKING, Any

import orjson

from mindharbor.errors import OperationForbidden, ParseError
from mindharbor.hooks import DeleteRequest, Hooks, SaveRequest
from mindharbor.security.acl import permission_lists
from mindharbor.security.auth import Auth
from mindharbor.storage.audit_rows import insert_rows
from mindharbor.storage.codec import iso, new_object_id, utcnow
from mindharbor.storage.repository import Repository

if TYPE_CHECKING:
    from mindharbor.storage.db import Store

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


def entry_row(
    action: str,
    *,
    entity_type: str,
    entity_id: str,
    summary: str,
    actor: str | None,
    metadata: dict[str, Any],
) -> dict[str, Any]:
    """One complete AuditLog row (content digest included), ready to insert."""
    now = utcnow()
    row: dict[str, Any] = {
        "objectId": new_object_id(),
        "createdAt": now,
        "updatedAt": now,
        "actor": actor,
        "entityType": entity_type,
        "entityId": entity_id,
        "action": action,
        "summary": summary,
        "metadata": metadata,
        "_acl": AUDIT_ACL,
        "_rperm": _READERS,
        "_wperm": _WRITERS,
    }
    row["_hash"] = entry_digest(row)
    return row


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
    row = entry_row(
        action,
        entity_type=entity_type,
        entity_id=entity_id,
        summary=summary,
        actor=actor if actor is not None else repo.auth.user_id,
        metadata={**{k: v for k, v in repo.meta.items() if v is not None}, **(metadata or {})},
    )
    await insert_rows(repo, [row])


DENIED_CODES = frozenset({101, 119})


async def record_denial(
    store: Store,
    auth: Auth,
    meta: dict[str, Any],
    *,
    entity_type: str,
    entity_id: str,
    code: int,
    face: str,
) -> None:
    """A refused attempt on PHI (101 or 119), in a transaction of its own: the request's own
    was rolled back, and a probe of other patients' records must leave a trace (Medplum records
    these as failed reads). 101 is recorded as "not found or not yours": the caller was told
    nothing more."""
    async with store.unit_of_work(Auth.system()) as repo:
        repo.meta = dict(meta)
        await record(
            repo,
            "access.denied",
            entity_type=entity_type,
            entity_id=entity_id,
            summary=f"Access refused ({code})",
            metadata={"code": code, "face": face},
            actor=auth.user_id,
        )


async def record_refusal(store: Store, auth: Auth, meta: dict[str, Any], exc: ParseError) -> None:
    """The audit entry a refusal carries (``ParseError.rollback_audit``: a failed link or
    single sign-on), in a transaction of its own after the request's rollback."""
    if exc.rollback_audit is None:
        return
    async with store.unit_of_work(Auth.system()) as repo:
        repo.meta = dict(meta)
        entry = dict(exc.rollback_audit)
        entry.setdefault("actor", auth.user_id)
        entry["metadata"] = {**(entry.get("metadata") or {}), "code": exc.code}
        await record(repo, **entry)


def query_shape(where: Any) -> Any:
    """The structure of a ``where`` with every value replaced, so no PHI reaches the log."""
    if isinstance(where, dict):
        return {k: query_shape(v) for k, v in sorted(where.items())}
    if isinstance(where, list):
        return [query_shape(v) for v in where[:5]]
    return "?"


def read_entry(repo: Repository) -> dict[str, Any] | None:
    """The one ``phi.read`` entry for what the request disclosed, or None."""
    trail = repo.audit_trail
    if not (trail.reads or trail.counts):
        return None
    ids = {cls: sorted(found)[:MAX_IDS_PER_ENTRY] for cls, found in trail.reads.items()}
    total = sum(len(found) for found in trail.reads.values())
    classes = sorted(set(trail.reads) | set(trail.counts))
    first_id = next((i for found in ids.values() for i in found), "*")
    return entry_row(
        "phi.read",
        entity_type=classes[0] if len(classes) == 1 else "multiple",
        entity_id=first_id if total == 1 else "*",
        summary=f"Read {total} record(s) of {', '.join(classes)}",
        actor=repo.auth.user_id,
        metadata={
            **{k: v for k, v in repo.meta.items() if v is not None},
            "ids": ids,
            "counts": dict(trail.counts),
            "queries": [query_shape(q) for q in trail.queries[:10]],
        },
    )


async def flush(repo: Repository) -> None:
    """Before commit: one entry per write the request made, in its transaction, and one entry
    for its PHI reads: in the transaction too when it writes, else group-committed by the
    worker's audit writer (``Store.read_only``) and waited for."""
    trail = repo.audit_trail
    rows = [
        entry_row(
            write["action"],
            entity_type=write["className"],
            entity_id=write["objectId"],
            summary=f"{write['action'].split('.')[-1].capitalize()} {write['className']}",
            actor=repo.auth.user_id,
            metadata={
                **{k: v for k, v in repo.meta.items() if v is not None},
                "fields": write["fields"],
            },
        )
        for write in trail.writes
    ]
    read = read_entry(repo)
    trail.clear()
    if repo.read_only:
        await repo.store.audit_sink.submit([read] if read is not None else [])
        return
    if read is not None:
        rows.append(read)
    await insert_rows(repo, rows)


def register(hooks: Hooks) -> None:
    hooks.before_commit.append(flush)

    @hooks.on_before_save("AuditLog")
    async def append_only(request: SaveRequest) -> None:
        raise OperationForbidden("The audit log is append-only and written by the server.")

    @hooks.on_before_delete("AuditLog")
    async def never_delete(request: DeleteRequest) -> None:
        raise OperationForbidden("The audit log is append-only and written by the server.")
