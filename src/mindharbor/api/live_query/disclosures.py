"""Every PHI object a live query pushes is a disclosure, recorded before it is pushed.

A REST read leaves one ``phi.read`` entry naming the reader, the ids returned and the query's
shape; a live-query event leaves the same, once per subscriber (connection and user) that
receives the object, all of one event's entries in one multi-row insert and one commit. Only
then are the messages queued for the sockets: no PHI leaves the server before its access is
durably recorded. If the record cannot be written, nothing is delivered, and each affected
client is told to reconnect (Parse's error event), so SDKs resubscribe and refetch instead of
silently missing the change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mindharbor.domain.audit.writer import entry_row, query_shape

if TYPE_CHECKING:
    from mindharbor.api.live_query.hub import Connection, Subscription
    from mindharbor.security.auth import Auth
    from mindharbor.storage.db import Store
    from mindharbor.storage.repository import ChangeEvent
    from mindharbor.storage.schema import ClassSchema

log = logging.getLogger(__name__)


@dataclass
class Delivery:
    """One message for one subscription, decided but not yet queued."""

    conn: Connection
    sub: Subscription
    auth: Auth
    op: str
    extra: dict[str, Any]
    # The message carries record content (a ``leave`` for an object the subscriber may no
    # longer read names only the object's id and times, and discloses nothing).
    discloses: bool = True


def audited(store: Store, schema: ClassSchema) -> bool:
    return schema.phi and store.settings.audit_reads


def entries(schema: ClassSchema, event: ChangeEvent, deliveries: list[Delivery]) -> list[Any]:
    """One ``phi.read`` row per subscriber (connection and user) that receives the object."""
    rows: list[dict[str, Any]] = []
    seen: set[tuple[int, str | None]] = set()
    for delivery in deliveries:
        key = (id(delivery.conn), delivery.auth.user_id)
        if not delivery.discloses or key in seen:
            continue
        seen.add(key)
        conn, sub = delivery.conn, delivery.sub
        meta = {
            "requestId": f"livequery:{conn.client_id}:{sub.request_id}",
            "ip": conn.client_ip,
            "userAgent": conn.user_agent,
            "face": "livequery",
            "event": delivery.op,
            "ids": {schema.name: [event.object_id]},
            "counts": {},
            "queries": [query_shape({schema.name: sub.where})],
        }
        rows.append(
            entry_row(
                "phi.read",
                entity_type=schema.name,
                entity_id=event.object_id,
                summary=f"Read 1 record(s) of {schema.name} (live query)",
                actor=delivery.auth.user_id,
                metadata={k: v for k, v in meta.items() if v is not None},
            )
        )
    return rows


async def record(
    store: Store, schema: ClassSchema, event: ChangeEvent, deliveries: list[Delivery]
) -> bool:
    """Commit the event's disclosures; False (nothing may be delivered) if that failed."""
    rows = entries(schema, event, deliveries)
    if not rows:
        return True
    try:
        await store.audit_sink.submit(rows)  # group-committed with the worker's other reads
    except Exception:
        log.exception("live query: could not record disclosures; withholding the event")
        return False
    return True
