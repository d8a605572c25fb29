"""The object service's foundation: one caller's transaction, its access policy, and the
primitives every read and write shares (tables, the SQL read filter, read/write audit notes,
identity announcements, relation rows). ``Repository`` (storage/repository.py) builds the reads and
writes on it; ``ClassChanges`` (storage/class_changes.py) the class definitions."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mindharbor.errors import OperationForbidden, ParseError
from mindharbor.security.auth import Auth
from mindharbor.security.policy import AccessPolicy
from mindharbor.storage import identity
from mindharbor.storage.dberrors import unique_violation
from mindharbor.storage.encoder import ParseEncoder
from mindharbor.storage.records import AuditTrail, ChangeEvent
from mindharbor.storage.schema import ClassSchema
from mindharbor.storage.where import WhereCompiler
from mindharbor.storage.where_refs import Clause

if TYPE_CHECKING:
    from collections.abc import Callable

    from mindharbor.storage.db import Store

# Not PHI, but a list of every patient's username and email is a disclosure too.
AUDITED_ACCOUNT_CLASSES = frozenset({"_User"})


class RepositoryBase:
    """One caller's view of one transaction (see ``Repository``)."""

    def __init__(
        self,
        conn: AsyncConnection,
        store: Store,
        auth: Auth,
        *,
        read_only: bool = False,
    ) -> None:
        self.conn = conn
        self.store = store
        self.auth = auth
        # Built by ``Store.read_only``: no transaction, so a write would not be atomic.
        self.read_only = read_only
        # Shared by this transaction's repositories (``system()`` clones).
        self._tx: dict[str, Any] = {"identity_changed": False}
        self.policy = AccessPolicy(auth, store.dialect)
        settings = store.settings
        self.dialect = store.dialect
        self.max_depth = settings.max_query_depth
        self.max_in_list = settings.max_in_list
        self.max_regex_length = settings.max_regex_length
        self.max_query_terms = settings.max_query_terms
        self.compiler = WhereCompiler(self)
        self.encoder = ParseEncoder(auth, store.files, self.protected_fields)
        self.after_commit: list[Callable[[], Any]] = []
        self.deferred_error: ParseError | None = None
        self.meta: dict[str, Any] = {}  # request id, client ip, user agent (for audit)
        self._protected: dict[str, frozenset[str]] = {}
        self.audit_trail = AuditTrail()
        self._schema_changes: dict[str, ClassSchema | None] = {}

    # -- QueryScope -----------------------------------------------------------------------------
    def schema_or_none(self, class_name: str) -> ClassSchema | None:
        if class_name in self._schema_changes:
            return self._schema_changes[class_name]
        return self.store.schema_or_none(class_name)

    def table(self, schema: ClassSchema) -> sa.Table:
        return self.store.tables.table(schema)

    def join_table(self, schema: ClassSchema, field_name: str) -> sa.Table:
        return self.store.tables.join_table(schema, field_name)

    def readable(self, schema: ClassSchema, table: sa.FromClause, op: str = "find") -> Clause:
        return self.policy.read_filter(table, self.policy.check(schema, op))

    def protected_fields(self, schema: ClassSchema) -> frozenset[str]:
        cached = self._protected.get(schema.name)
        if cached is None:
            cached = self._protected[schema.name] = self.policy.protected_fields(schema)
        return cached

    def encode(self, schema: ClassSchema, row: dict[str, Any]) -> dict[str, Any]:
        """A stored row in Parse's wire encoding, as this caller may see it."""
        return self.encoder.encode(schema, row)

    def _audits_reads(self, schema: ClassSchema) -> bool:
        """PHI classes, and accounts (names and emails of patients) read by anyone but their
        owner; the server's own reads are not disclosures."""
        audited = schema.phi or schema.name in AUDITED_ACCOUNT_CLASSES
        return audited and not self.auth.is_system and self.store.settings.audit_reads

    def note_aggregate(self, schema: ClassSchema, where: Any, rows: int) -> None:
        """An aggregation or distinct that summarised ``rows`` rows: audited as a count."""
        if rows and self._audits_reads(schema):
            self.audit_trail.queries.append({schema.name: where})
            counts = self.audit_trail.counts
            counts[schema.name] = counts.get(schema.name, 0) + rows

    def _note_reads(self, schema: ClassSchema, ids: list[str]) -> None:
        if ids and self._audits_reads(schema):
            if schema.name in AUDITED_ACCOUNT_CLASSES:
                ids = [i for i in ids if i != self.auth.user_id]  # one's own account
                if not ids:
                    return
            self.audit_trail.reads.setdefault(schema.name, set()).update(ids)

    def _note_write(
        self, schema: ClassSchema, action: str, object_id: str, fields: list[str]
    ) -> None:
        """Every write a caller makes is audited; the server's own flows audit themselves."""
        if self.auth.is_system or schema.name in ("AuditLog", "_Session"):
            return
        self.audit_trail.writes.append(
            {
                "action": f"{'phi' if schema.phi else 'object'}.{action}",
                "className": schema.name,
                "objectId": object_id,
                "fields": sorted(f for f in fields if not f.startswith("_")),
            }
        )

    def publish_change(self, event: ChangeEvent) -> None:
        """Queue ``event`` for the change listeners, delivered only if this transaction commits."""
        for listener in self.store.change_listeners:
            self.after_commit.append(functools.partial(listener, event))

    async def _announce_identity(self, schema: ClassSchema, object_id: str, op: str) -> None:
        """A write that changes what a session stands for reaches every worker's identity
        cache at commit (role relations are announced in ``_apply_relations``)."""
        if schema.name == "_Session":
            await identity.announce(self, identity.session_scope(object_id))
        elif schema.name == "_User" and op == "delete":
            await identity.announce(self, identity.user_scope(object_id))
        elif schema.name == "_Role" and op == "delete":
            await identity.announce(self, identity.EVERYONE)

    @property
    def identity_changed(self) -> bool:
        """This transaction announced identity changes: roles are read from it, not cached."""
        return bool(self._tx["identity_changed"])

    @identity_changed.setter
    def identity_changed(self, value: bool) -> None:
        self._tx["identity_changed"] = value

    def _require_writable(self) -> None:
        if self.read_only:
            raise RuntimeError("a read-only repository cannot write")

    def _require_system(self) -> None:
        if not self.auth.is_system:
            raise OperationForbidden("Only the server itself may do this.")

    def fail_after_commit(self, error: ParseError) -> None:
        """Answer with ``error`` but keep this transaction's writes (e.g. a failed-login count)."""
        self.deferred_error = error

    async def _execute_write(self, stmt: Any, params: dict[str, Any] | None = None) -> None:
        try:
            await self.conn.execute(stmt, params)
        except sa.exc.IntegrityError as exc:
            raise unique_violation(exc) from exc

    async def _apply_relations(self, schema: ClassSchema, owner: str, changes: list[Any]) -> None:
        if schema.name == "_Role" and changes:
            # Who holds which role changed: the users named, or (a role's inheritance) anyone.
            scopes: list[str] = []
            for change in changes:
                if change.field_name == "users":
                    scopes += [identity.user_scope(u) for u in [*change.add, *change.remove]]
                else:
                    scopes.append(identity.EVERYONE)
            await identity.announce(self, *scopes)
        for change in changes:
            join = self.join_table(schema, change.field_name)
            if change.remove:
                await self.conn.execute(
                    join.delete().where(
                        join.c.owningId == owner, join.c.relatedId.in_(change.remove)
                    )
                )
            for related in dict.fromkeys(change.add):
                exists = await self.conn.scalar(
                    sa.select(sa.func.count())
                    .select_from(join)
                    .where(join.c.owningId == owner, join.c.relatedId == related)
                )
                if not exists:
                    await self.conn.execute(join.insert().values(owningId=owner, relatedId=related))
