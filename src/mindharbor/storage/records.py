"""What a query asks and returns, what a request read and wrote, and what a committed write
changed: the plain records the object service (``storage/repository.py``) exchanges with every
face."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FindQuery:
    """The parameters of a Parse query, already decoded from the request."""

    where: dict[str, Any] = field(default_factory=dict)
    order: str | None = None
    limit: int = 100
    skip: int = 0
    keys: list[str] | None = None
    exclude_keys: list[str] | None = None
    include: list[str] = field(default_factory=list)
    count: bool = False
    # The caller embeds results in a JSON response as they are: on PostgreSQL a plain find may
    # then return each object as PostgreSQL-written JSON (``orjson.Fragment``, json_rows.py).
    raw: bool = False


@dataclass
class AuditTrail:
    """What a request read and wrote, written to the audit log once, before commit."""

    reads: dict[str, set[str]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    queries: list[Any] = field(default_factory=list)
    writes: list[dict[str, Any]] = field(default_factory=list)

    def clear(self) -> None:
        self.reads.clear()
        self.counts.clear()
        self.queries.clear()
        self.writes.clear()


@dataclass(frozen=True)
class ChangeEvent:
    """A committed write, as stored rows (hidden columns included) before and after.

    Published to ``Store.change_listeners`` only after the transaction commits, never for a
    rolled-back write; live queries re-check each subscriber's access against these rows.
    """

    class_name: str
    op: str  # "create" | "update" | "delete"
    object_id: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None


@dataclass
class FindResult:
    results: list[dict[str, Any]]
    count: int | None = None
