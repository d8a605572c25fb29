"""The object service: find / get / count / create / update / delete for one caller.

Every face (REST, batch, GraphQL, LiveQuery, jobs) reaches class tables only through a
``Repository``, which the unit of work builds for the request's ``Auth``. Each statement it issues
carries the access policy's SQL filter; the CLP check runs first. Objects leave in Parse's wire
encoding, so every face returns identical JSON.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mindharbor.errors import (
    DuplicateRequest,
    DuplicateValue,
    InvalidQuery,
    ObjectNotFound,
    OperationForbidden,
    ParseError,
)
from mindharbor.hooks import AfterSave, DeleteRequest, SaveRequest
from mindharbor.security.acl import permission_lists
from mindharbor.security.auth import Auth
from mindharbor.security.policy import AccessPolicy
from mindharbor.storage import projection
from mindharbor.storage.codec import (
    from_column,
    is_object_id,
    iso,
    new_object_id,
    pointer_target,
    type_of,
    utcnow,
)
from mindharbor.storage.ops import PreparedWrite, check_required, prepare_write
from mindharbor.storage.schema import (
    PSEUDO_FIELDS,
    ClassSchema,
    FieldSpec,
    validate_class_name,
    validate_field_name,
)
from mindharbor.storage.system_tables import (
    idempotency_table,
    schema_table,
    write_schema_row,
)
from mindharbor.storage.where import Clause, WhereCompiler, order_by

if TYPE_CHECKING:
    from collections.abc import Callable

    from mindharbor.storage.db import Store


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


_FILE_HOLDING_TYPES = frozenset({"File", "Array", "Object"})
# A find returns every column but the permission lists: only the SQL filter reads those.
_UNRETURNED = frozenset({"_rperm", "_wperm"})
_RETURNED: dict[sa.Table, tuple[sa.Column[Any], ...]] = {}


def _returned_columns(table: sa.Table) -> tuple[sa.Column[Any], ...]:
    columns = _RETURNED.get(table)
    if columns is None:
        if len(_RETURNED) > 256:
            _RETURNED.clear()  # tables are rebuilt when a schema changes; drop old versions
        columns = _RETURNED[table] = tuple(c for c in table.c if c.name not in _UNRETURNED)
    return columns


class Repository:
    """Access-controlled reads and writes inside one transaction."""

    def __init__(self, conn: AsyncConnection, store: Store, auth: Auth) -> None:
        self.conn = conn
        self.store = store
        self.auth = auth
        self.policy = AccessPolicy(auth, store.dialect)
        settings = store.settings
        self.dialect = store.dialect
        self.max_depth = settings.max_query_depth
        self.max_in_list = settings.max_in_list
        self.max_regex_length = settings.max_regex_length
        self.compiler = WhereCompiler(self)
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

    # -- reads ----------------------------------------------------------------------------------
    async def find(self, class_name: str, query: FindQuery) -> FindResult:
        schema = await self.lookup_schema(class_name)
        if schema is None:
            self._check_missing_class(class_name)
            return FindResult([], 0 if query.count else None)
        table = self.table(schema)
        cond = sa.and_(
            self.compiler.compile(schema, table, query.where),
            self.readable(schema, table, "find"),
        )
        count = None
        if query.count:
            count_cond = sa.and_(
                self.compiler.compile(schema, table, query.where),
                self.readable(schema, table, "count"),
            )
            count = int(
                await self.conn.scalar(
                    sa.select(sa.func.count()).select_from(table).where(count_cond)
                )
                or 0
            )
        rows: list[dict[str, Any]] = []
        if query.limit > 0:
            stmt = (
                sa.select(*_returned_columns(table))
                .where(cond)
                .order_by(*order_by(self.compiler, schema, table, query.order))
                .limit(query.limit)
                .offset(query.skip)
            )
            result = await self.conn.execute(stmt)
            keys = tuple(result.keys())
            rows = [dict(zip(keys, r, strict=True)) for r in result]
        objects = [self.encode(schema, row) for row in rows]
        if self._audits_reads(schema):
            self.audit_trail.queries.append({class_name: query.where})
            self._note_reads(schema, [o["objectId"] for o in objects])
            if count is not None:
                counts = self.audit_trail.counts
                counts[schema.name] = counts.get(schema.name, 0) + count
        await projection.include(self, schema, objects, query.include)
        projection.project(objects, query.keys, query.exclude_keys)
        return FindResult(objects, count)

    async def get(
        self,
        class_name: str,
        object_id: str,
        *,
        include: list[str] | None = None,
        keys: list[str] | None = None,
        exclude_keys: list[str] | None = None,
    ) -> dict[str, Any]:
        """One object, or 101 whether it is missing or merely invisible to the caller."""
        schema = await self.lookup_schema(class_name)
        if schema is None:
            self._check_missing_class(class_name)
        if schema is None or not is_object_id(object_id):
            raise ObjectNotFound()
        table = self.table(schema)
        stmt = sa.select(table).where(
            table.c.objectId == object_id, self.readable(schema, table, "get")
        )
        row = (await self.conn.execute(stmt)).mappings().first()
        if row is None:
            raise ObjectNotFound()
        objects = [self.encode(schema, dict(row))]
        self._note_reads(schema, [object_id])
        await projection.include(self, schema, objects, include or [])
        projection.project(objects, keys, exclude_keys)
        return objects[0]

    async def fetch_visible(self, schema: ClassSchema, ids: list[str]) -> list[dict[str, Any]]:
        """Objects by id that the caller may read (for ``include``), in one query."""
        table = self.table(schema)
        stmt = sa.select(table).where(
            table.c.objectId.in_(ids), self.readable(schema, table, "get")
        )
        found = [self.encode(schema, dict(r)) for r in (await self.conn.execute(stmt)).mappings()]
        self._note_reads(schema, [o["objectId"] for o in found])
        return found

    def _audits_reads(self, schema: ClassSchema) -> bool:
        return schema.phi and not self.auth.is_system and self.store.settings.audit_reads

    def _note_reads(self, schema: ClassSchema, ids: list[str]) -> None:
        if ids and self._audits_reads(schema):
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

    def protected_fields(self, schema: ClassSchema) -> frozenset[str]:
        cached = self._protected.get(schema.name)
        if cached is None:
            cached = self._protected[schema.name] = self.policy.protected_fields(schema)
        return cached

    def encode(self, schema: ClassSchema, row: dict[str, Any]) -> dict[str, Any]:
        """A stored row in Parse's wire encoding; hidden columns and protected fields never
        leave (a user's own ``_User`` row is the exception: people may read their own email)."""
        hidden = self.protected_fields(schema)
        files = self.store.files
        if hidden and schema.name == "_User" and row["objectId"] == self.auth.user_id:
            hidden = frozenset()
        out: dict[str, Any] = {
            "objectId": row["objectId"],
            "createdAt": iso(row["createdAt"]),
            "updatedAt": iso(row["updatedAt"]),
        }
        for spec in schema.fields.values():
            name, kind = spec.name, spec.type
            if name in hidden:
                continue
            if kind == "Relation":
                out[name] = {"__type": "Relation", "className": spec.target_class}
                continue
            value = row.get(name)
            if value is None:
                continue
            # The common kinds inline (same result as from_column), the rest through it.
            if kind == "Pointer":
                out[name] = {"__type": "Pointer", "className": spec.target_class, "objectId": value}
            elif kind == "Date":
                out[name] = {"__type": "Date", "iso": iso(value)}
            elif kind == "String" or kind == "Boolean":
                out[name] = value
            else:
                out[name] = from_column(spec, value)
                if files is not None and kind in _FILE_HOLDING_TYPES:
                    # Signed, expiring URLs are minted here, for a row the caller was allowed
                    # to read, so every face (REST, include, GraphQL, LiveQuery) gets them.
                    out[name] = files.sign_refs(out[name], self.auth)
        if row.get("_acl") is not None:
            out["ACL"] = row["_acl"]
        return out

    # -- writes ---------------------------------------------------------------------------------
    async def create(self, class_name: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.create_with_hidden(class_name, body, {})

    async def create_with_hidden(
        self, class_name: str, body: dict[str, Any], hidden: dict[str, Any]
    ) -> dict[str, Any]:
        """``create`` plus raw values for hidden columns (token hashes); server code only."""
        if hidden and not self.auth.is_system:
            raise OperationForbidden("Hidden columns are written by the server only.")
        schema = await self._schema_for_write(class_name, body)
        self.policy.check(schema, "create")
        if self.store.files is not None and not self.auth.is_master:
            await self.store.files.check_refs(self.auth, body, None)
        request = SaveRequest(self, schema, new_object_id(), None, dict(body), hidden=dict(hidden))
        for hook in self.store.hooks.before_save.get(schema.name, ()):
            await hook(request)
        prepared = self._prepare(request, None)
        now = utcnow()
        row: dict[str, Any] = {"objectId": request.object_id, "createdAt": now, "updatedAt": now}
        for spec in schema.fields.values():
            if spec.default is not None and spec.has_column and spec.name not in prepared.values:
                row[spec.name] = spec.default
        row.update(prepared.values)
        if "_rperm" not in row:
            readers, writers = permission_lists(None)
            row.update({"_acl": None, "_rperm": readers, "_wperm": writers})
        check_required(schema, row)
        table = self.table(schema)
        if all(key in table.c and not isinstance(v, sa.ClauseElement) for key, v in row.items()):
            # The row as parameters of a plain INSERT: SQLAlchemy's cache key and compiled form
            # then depend on the table and the columns named, not on a new VALUES construct.
            await self._execute_write(table.insert(), row)
        else:  # a value that is SQL, or a key that is no column: let .values() say so
            await self._execute_write(table.insert().values(row))
        await self._apply_relations(schema, row["objectId"], prepared.relations)
        await self._after_save(schema, row, None, request.context)
        self._note_write(schema, "create", row["objectId"], list(prepared.values))
        self.publish_change(ChangeEvent(schema.name, "create", row["objectId"], None, row))
        return {"objectId": row["objectId"], "createdAt": iso(now), **prepared.echo}

    async def update(self, class_name: str, object_id: str, body: dict[str, Any]) -> dict[str, Any]:
        if not is_object_id(object_id):
            raise ObjectNotFound()
        schema = await self._schema_for_write(class_name, body)
        existing = await self._lock_writable(schema, object_id, "update")
        table = self.table(schema)
        if self.store.files is not None and not self.auth.is_master:
            await self.store.files.check_refs(self.auth, body, existing)
        request = SaveRequest(self, schema, object_id, existing, dict(body))
        for hook in self.store.hooks.before_save.get(schema.name, ()):
            await hook(request)
        prepared = self._prepare(request, existing)
        now = utcnow()
        values = {**prepared.values, "updatedAt": now}
        check_required(schema, {**existing, **values})
        await self._execute_write(
            table.update().where(table.c.objectId == object_id).values(values)
        )
        await self._apply_relations(schema, object_id, prepared.relations)
        await self._after_save(schema, {**existing, **values}, existing, request.context)
        self._note_write(schema, "update", object_id, list(prepared.values))
        self.publish_change(
            ChangeEvent(schema.name, "update", object_id, existing, {**existing, **values})
        )
        return {"updatedAt": iso(now), **prepared.echo}

    async def _lock_writable(self, schema: ClassSchema, object_id: str, op: str) -> dict[str, Any]:
        """The stored row, locked for this transaction, if the caller may ``op`` it; else 101
        exactly as for a missing object."""
        grant = self.policy.check(schema, op)
        table = self.table(schema)
        stmt = (
            sa.select(table)
            .where(table.c.objectId == object_id, self.policy.write_filter(table, grant))
            .with_for_update()
        )
        current = (await self.conn.execute(stmt)).mappings().first()
        if current is None:
            raise ObjectNotFound()
        return dict(current)

    def _prepare(self, request: SaveRequest, existing: dict[str, Any] | None) -> PreparedWrite:
        """Client changes (validated with the caller's rights) + what hooks decided."""
        schema = request.schema
        prepared = prepare_write(schema, request.body, existing, trusted=self.auth.is_master)
        if request.server_values:
            server = prepare_write(
                schema,
                request.server_values,
                {**(existing or {}), **prepared.values},
                trusted=True,
            )
            prepared.values.update(server.values)
            prepared.relations.extend(server.relations)
            prepared.echo.update(server.echo)
        prepared.values.update(request.hidden)
        if request.acl_decided:
            readers, writers = permission_lists(request.acl)
            prepared.values.update({"_acl": request.acl, "_rperm": readers, "_wperm": writers})
        return prepared

    async def _after_save(
        self,
        schema: ClassSchema,
        row: dict[str, Any],
        original: dict[str, Any] | None,
        context: dict[str, Any],
    ) -> None:
        for hook in self.store.hooks.after_save.get(schema.name, ()):
            await hook(
                AfterSave(self, schema, row["objectId"], original is None, row, original, context)
            )

    async def delete(self, class_name: str, object_id: str) -> None:
        schema = await self.lookup_schema(class_name)
        if schema is None or not is_object_id(object_id):
            raise ObjectNotFound()
        current = await self._lock_writable(schema, object_id, "delete")
        table = self.table(schema)
        request = DeleteRequest(self, schema, current)
        for hook in self.store.hooks.before_delete.get(schema.name, ()):
            await hook(request)
        await self.conn.execute(table.delete().where(table.c.objectId == object_id))
        for rel in schema.relations:
            join = self.join_table(schema, rel.name)
            await self.conn.execute(join.delete().where(join.c.owningId == object_id))
        for hook in self.store.hooks.after_delete.get(schema.name, ()):
            await hook(request)
        self._note_write(schema, "delete", object_id, [])
        self.publish_change(ChangeEvent(schema.name, "delete", object_id, request.row, None))

    async def writable(self, class_name: str, object_id: str) -> bool:
        """Whether the caller may write this object (CLP update + ACL), in SQL."""
        schema = await self.lookup_schema(class_name)
        if schema is None or not is_object_id(object_id):
            return False
        try:
            grant = self.policy.check(schema, "update")
        except OperationForbidden:
            return False
        table = self.table(schema)
        found = await self.conn.scalar(
            sa.select(sa.func.count())
            .select_from(table)
            .where(table.c.objectId == object_id, self.policy.write_filter(table, grant))
        )
        return bool(found)

    def publish_change(self, event: ChangeEvent) -> None:
        """Queue ``event`` for the change listeners, delivered only if this transaction commits."""
        for listener in self.store.change_listeners:
            self.after_commit.append(functools.partial(listener, event))

    def system(self) -> Repository:
        """The server acting on its own behalf in this same transaction (hooks, sign-up).

        Explicit, like Medplum's system repository: privileged code has to ask for it by name.
        """
        clone = Repository(self.conn, self.store, Auth.system())
        clone.after_commit = self.after_commit
        clone._schema_changes = self._schema_changes
        clone.meta = self.meta
        clone.audit_trail = self.audit_trail
        return clone

    async def raw_row(
        self, class_name: str, column: str, value: Any, *, lock: bool = False
    ) -> dict[str, Any] | None:
        """A whole stored row, hidden columns included, looked up by one column; system only
        (login and token checks need the hash columns that never leave the server)."""
        self._require_system()
        schema = self.schema_or_none(class_name)
        if schema is None:
            return None
        table = self.table(schema)
        stmt = sa.select(table).where(table.c[column] == value).limit(1)
        if lock:
            stmt = stmt.with_for_update()
        row = (await self.conn.execute(stmt)).mappings().first()
        return dict(row) if row is not None else None

    async def write_hidden(self, class_name: str, object_id: str, values: dict[str, Any]) -> None:
        """Set hidden columns (hashes, counters) without touching visible fields; system only."""
        self._require_system()
        schema = self.schema_or_none(class_name)
        if schema is None:
            raise ObjectNotFound()
        table = self.table(schema)
        if any(not name.startswith("_") for name in values):
            raise OperationForbidden("write_hidden only sets hidden columns.")
        await self.conn.execute(table.update().where(table.c.objectId == object_id).values(values))

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
            raise DuplicateValue() from exc

    async def _apply_relations(self, schema: ClassSchema, owner: str, changes: list[Any]) -> None:
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

    # -- schema on write ------------------------------------------------------------------------
    def _check_missing_class(self, class_name: str) -> None:
        """Parse 9: without client class creation, a non-master caller is told the class is
        closed (119) rather than shown an empty one."""
        if not self.auth.is_master and not self.store.settings.allow_client_class_creation:
            raise OperationForbidden(
                f"This user is not allowed to access non-existent class: {class_name}"
            )

    def _may_change_schema(self, schema: ClassSchema | None) -> bool:
        if self.auth.is_master:
            return True
        if not self.store.settings.allow_client_class_creation:
            return False
        if schema is not None:
            self.policy.check(schema, "addField")
        return True

    async def lookup_schema(
        self, class_name: str, *, for_update: bool = False
    ) -> ClassSchema | None:
        """The class's schema; on a cache miss (or before changing it) re-read ``_SCHEMA``,
        since another worker may have created or extended the class."""
        schema = self.schema_or_none(class_name)
        if schema is not None and not for_update:
            return schema
        stmt = sa.select(schema_table.c.schema).where(schema_table.c.className == class_name)
        if for_update:
            stmt = stmt.with_for_update()
        data = await self.conn.scalar(stmt)
        if data is None:
            return None
        fresh = self.store.schema_from_row(class_name, data)
        if class_name not in self._schema_changes:
            self.store.install_schema(fresh, class_name)  # committed data: safe to cache now
        return fresh

    def _new_fields(self, schema: ClassSchema, body: dict[str, Any]) -> dict[str, FieldSpec]:
        """Fields a write introduces, with types inferred from the values (schema on write)."""
        new_fields: dict[str, FieldSpec] = {}
        for key, value in body.items():
            name = key.partition(".")[0]
            if name in ("ACL", "objectId", "createdAt", "updatedAt") or schema.field(name):
                continue
            if name in PSEUDO_FIELDS.get(schema.name, ()):
                continue  # not a column: a hook consumes it
            if name.startswith("_") or not name:
                continue  # prepare_write rejects invalid names with 105
            ftype = "Object" if "." in key else type_of(value)
            if ftype is None:
                continue
            validate_field_name(name)
            target = pointer_target(value) if ftype in ("Pointer", "Relation") else None
            new_fields[name] = FieldSpec(name=name, type=ftype, target_class=target)
        return new_fields

    async def _schema_for_write(self, class_name: str, body: dict[str, Any]) -> ClassSchema:
        """The class's schema, extended with fields this write introduces when allowed."""
        schema = await self.lookup_schema(class_name)
        if schema is not None and not self._new_fields(schema, body):
            return schema
        # About to change the class: lock its registry row and work from the stored version.
        schema = await self.lookup_schema(class_name, for_update=True)
        is_new = schema is None
        if schema is None:
            validate_class_name(class_name)
            if not self._may_change_schema(None):
                raise OperationForbidden(
                    f"This user is not allowed to access non-existent class: {class_name}"
                )
            schema = ClassSchema(name=class_name, fields={})
        new_fields = self._new_fields(schema, body)
        if not new_fields and not is_new:
            return schema
        if new_fields and not is_new and not self._may_change_schema(schema):
            raise OperationForbidden(
                f"Permission denied for action addField on class {class_name}."
            )
        updated = schema.with_fields({**schema.fields, **new_fields})
        await self.save_schema(updated, is_new=is_new)
        return updated

    async def save_schema(self, schema: ClassSchema, *, is_new: bool) -> None:
        """Persist a class definition and its DDL in this transaction; publish after commit."""
        await write_schema_row(self.conn, schema, exists=not is_new)
        await self.store.ensure_tables(self.conn, schema)
        self._schema_changes[schema.name] = schema
        self.after_commit.append(lambda: self.store.install_schema(schema, schema.name))

    async def drop_schema(self, schema: ClassSchema) -> None:
        if not self.auth.is_master:
            raise OperationForbidden("Schema changes need the master key.")
        await self.conn.execute(
            schema_table.delete().where(schema_table.c.className == schema.name)
        )
        for table in self.store.tables.all_tables(schema):
            await self.conn.run_sync(_drop_table, table)
        self._schema_changes[schema.name] = None
        self.after_commit.append(lambda: self.store.install_schema(None, schema.name))

    async def count_all(self, schema: ClassSchema) -> int:
        table = self.table(schema)
        return int(await self.conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)

    async def purge(self, schema: ClassSchema) -> None:
        if not self.auth.is_master:
            raise OperationForbidden("Purging a class needs the master key.")
        if schema.name == "AuditLog":
            raise OperationForbidden("The audit log is append-only.")
        for table in self.store.tables.all_tables(schema):
            await self.conn.execute(table.delete())

    async def drop_column(self, schema: ClassSchema, name: str) -> None:
        """Deleting a field drops its data too (Parse semantics), in this transaction."""
        if not self.auth.is_master:
            raise OperationForbidden("Schema changes need the master key.")
        spec = schema.fields[name]
        if spec.type == "Relation":
            join = self.join_table(schema, name)
            await self.conn.run_sync(lambda c: join.drop(c, checkfirst=True))
        else:
            table = self.table(schema)
            await self.conn.run_sync(
                lambda c: c.execute(
                    sa.text(
                        f"ALTER TABLE {c.dialect.identifier_preparer.quote(table.name)} "
                        f"DROP COLUMN {c.dialect.identifier_preparer.quote(name)}"
                    )
                )
            )

    # -- idempotency ----------------------------------------------------------------------------
    async def claim_request_id(self, request_id: str) -> None:
        """Record a client request id in this transaction; a live repeat is refused with 159.

        Stored in the database (not only Redis) on purpose: the claim commits or rolls back
        together with the write it protects, so a failed write can be retried and a
        successful one can never be applied twice, across any number of workers.
        """
        t = idempotency_table
        if not request_id or len(request_id) > 200:
            raise InvalidQuery("X-Parse-Request-Id must be 1 to 200 characters.")
        now = utcnow()
        ttl = self.store.settings.idempotency_ttl_seconds
        await self.conn.execute(t.delete().where(t.c.reqId == request_id, t.c.expire < now))
        try:
            await self.conn.execute(
                t.insert().values(reqId=request_id, expire=now + timedelta(seconds=ttl))
            )
        except sa.exc.IntegrityError as exc:
            raise DuplicateRequest() from exc


def _drop_table(conn: sa.Connection, table: sa.Table) -> None:
    table.drop(conn, checkfirst=True)
