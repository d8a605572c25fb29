"""The object service: find / get / count / create / update / delete for one caller.

Every face (REST, batch, GraphQL, LiveQuery, jobs) reaches class tables only through a
``Repository``, which the unit of work builds for the request's ``Auth``. Each statement it issues
carries the access policy's SQL filter; the CLP check runs first. Objects leave in Parse's wire
encoding, so every face returns identical JSON.

The class is layered, each layer in a module of its own: ``RepositoryBase`` (repo_base.py: the
transaction, the policy, tables, audit notes, relation rows), ``ClassChanges`` (class_changes.py:
schema on write, /schemas DDL, request ids) and, here, the reads and writes of objects. The
records they exchange with the faces are in records.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from mindharbor.errors import InvalidQuery, ObjectNotFound, OperationForbidden
from mindharbor.security.acl import permission_lists
from mindharbor.security.auth import Auth
from mindharbor.storage import json_rows, projection, shapes
from mindharbor.storage.class_changes import ClassChanges
from mindharbor.storage.codec import is_object_id, iso, new_object_id, to_column, utcnow
from mindharbor.storage.encoder import file_urls_allowed, without_files
from mindharbor.storage.ops import PreparedWrite, check_required, prepare_write
from mindharbor.storage.records import AuditTrail, ChangeEvent, FindQuery, FindResult
from mindharbor.storage.repo_base import AUDITED_ACCOUNT_CLASSES
from mindharbor.storage.schema import ClassSchema
from mindharbor.storage.server_fields import accept_consistent, drop_unchanged
from mindharbor.storage.triggers import AfterSave, DeleteRequest, SaveRequest
from mindharbor.storage.where import WhereCompiler, count_terms, order_by

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "AUDITED_ACCOUNT_CLASSES",
    "AuditTrail",
    "ChangeEvent",
    "FindQuery",
    "FindResult",
    "Repository",
]


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


class Repository(ClassChanges):
    """Access-controlled reads and writes inside one transaction."""

    # -- reads ----------------------------------------------------------------------------------
    async def find(self, class_name: str, query: FindQuery) -> FindResult:
        count_terms(query.where or {}, self.max_query_terms)  # bounded before anything is built
        schema = await self.lookup_schema(class_name)
        if schema is None:
            self._check_missing_class(class_name, query.where)
            return FindResult([], 0 if query.count else None)
        table = self.table(schema)
        count = None
        if query.count:
            grant = self.policy.check(schema, "count")

            def count_statement(request: shapes.Request) -> Any:
                scope = shapes.Scope(self, request)
                cond = sa.and_(
                    WhereCompiler(scope).compile(schema, table, request.where),
                    scope.readable(schema, table, "count"),
                )
                return sa.select(sa.func.count().label("count")).select_from(table).where(cond)

            counted = await self._select(schema, ("count", table, grant), query, count_statement)
            count = int(counted[0]["count"] or 0)
        rows: list[dict[str, Any]] = []
        as_json = (
            query.raw
            and self.store.shapes is not None
            and not query.include
            and query.keys is None
            and query.exclude_keys is None
            and json_rows.eligible(schema)
        )
        if query.limit > 0:
            grant = self.policy.check(schema, "find")

            def find_statement(request: shapes.Request) -> Any:
                scope = shapes.Scope(self, request)
                compiler = WhereCompiler(scope)
                cond = sa.and_(
                    compiler.compile(schema, table, request.where),
                    scope.readable(schema, table, "find"),
                )
                columns: tuple[Any, ...] = _returned_columns(table)
                if as_json:  # built only when the shape is not cached
                    encoded = json_rows.row_json(schema, table, self.protected_fields(schema))
                    columns = (table.c.objectId, encoded.label("j"))
                elif compiler.text_score is not None and "$score" in (query.keys or ()):
                    columns = (*columns, compiler.text_score.label("$score"))
                return (
                    sa.select(*columns)
                    .where(cond)
                    .order_by(*order_by(compiler, schema, table, query.order))
                    .limit(request.limit)
                    .offset(request.skip)
                )

            key = ("find", table, grant, query.order, as_json)
            rows = await self._select(schema, key, query, find_statement)
        if as_json:
            objects: list[Any] = [self._json_row(schema, row["j"]) for row in rows]
            ids = [row["objectId"] for row in rows]
        else:
            objects = [self.encode(schema, row) for row in rows]
            ids = [o["objectId"] for o in objects]
            for obj, row in zip(objects, rows, strict=True):
                if "$score" in row:  # Parse's ``keys=$score``: the rank, as ``score``
                    obj["score"] = row["$score"]
        if self._audits_reads(schema):
            self.audit_trail.queries.append({class_name: query.where})
            self._note_reads(schema, ids)
            if count is not None:
                counts = self.audit_trail.counts
                counts[schema.name] = counts.get(schema.name, 0) + count
        await projection.include(self, schema, objects, query.include)
        keys = ["score" if k == "$score" else k for k in query.keys or ()] or query.keys
        projection.project(objects, keys, query.exclude_keys)
        return FindResult(objects, count)

    def _json_row(self, schema: ClassSchema, text: str) -> Any:
        """A PostgreSQL-written row for the response; one holding a file reference is decoded
        and its URLs signed for this caller, as ``ParseEncoder`` does."""
        files = self.store.files
        if files is None or not json_rows.needs_python(text):
            return orjson.Fragment(text)
        obj = orjson.loads(text)
        allowed = file_urls_allowed(self.auth, schema, obj)
        for spec in schema.fields.values():
            if spec.type in ("Array", "Object", "File") and spec.name in obj:
                if allowed:
                    obj[spec.name] = files.sign_refs(obj[spec.name], self.auth)
                elif (kept := without_files(obj[spec.name])) is not None:
                    obj[spec.name] = kept
                else:
                    del obj[spec.name]
        return obj

    async def _select(
        self,
        schema: ClassSchema,
        key: tuple[Any, ...],
        query: FindQuery,
        build: Callable[[Any], Any],
    ) -> list[dict[str, Any]]:
        """Rows of the statement ``build`` makes for ``query`` (and the caller): on PostgreSQL
        through the compiled-shape cache (``storage/shapes.py``), else built and run here."""
        request = shapes.Request(
            query.where, query.limit, query.skip, self.auth.identities, self.auth.user_id
        )
        cache = self.store.shapes
        shaped = shapes.shape_of(query.where) if cache is not None else None
        if cache is not None and shaped is not None:
            shape, leaves = shaped
            full_key = (*key, shape, self.auth.is_master, self.protected_fields(schema))
            prepared = cache.get(full_key)
            if prepared is None:
                prepared = shapes.prepare(build, request, leaves) or shapes.UNCACHEABLE
                cache.put(full_key, prepared)
            if isinstance(prepared, shapes.Prepared) and all(
                shapes.leaf_ok(kind, value) for kind, value in leaves
            ):
                return await shapes.fetch(
                    self, prepared, shapes.arguments(prepared, request, leaves)
                )
        result = await self.conn.execute(build(request))
        names = tuple(result.keys())
        return [dict(zip(names, r, strict=True)) for r in result]

    async def get(
        self,
        class_name: str,
        object_id: str,
        *,
        include: list[str] | None = None,
        keys: list[str] | None = None,
        exclude_keys: list[str] | None = None,
        lock: bool = False,
    ) -> dict[str, Any]:
        """One object, or 101 whether it is missing or merely invisible to the caller.

        ``lock``: the row stays locked until this transaction ends, so a read-modify-write
        (an amendment's next version, a status transition) cannot interleave with another."""
        schema = await self.lookup_schema(class_name)
        if schema is None:
            self._check_missing_class(class_name)
        if schema is None or not is_object_id(object_id):
            raise ObjectNotFound()
        table = self.table(schema)
        stmt = sa.select(table).where(
            table.c.objectId == object_id, self.readable(schema, table, "get")
        )
        if lock:
            self._require_writable()
            stmt = stmt.with_for_update()
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

    # -- writes ---------------------------------------------------------------------------------
    async def create(self, class_name: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.create_with_hidden(class_name, body, {})

    async def create_with_hidden(
        self, class_name: str, body: dict[str, Any], hidden: dict[str, Any]
    ) -> dict[str, Any]:
        """``create`` plus raw values for hidden columns (token hashes); server code only."""
        self._require_writable()
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
        row.update(prepared.values)
        defaults = _defaults(schema, request.body, prepared.values)
        row.update(defaults)
        prepared.echo.update({name: schema.fields[name].default for name in defaults})
        if "_rperm" not in row:
            readers, writers = permission_lists(None)
            row.update({"_acl": None, "_rperm": readers, "_wperm": writers})
        check_required(schema, row)
        table = self.table(schema)
        plain = all(
            key in table.c and not isinstance(v, sa.ClauseElement) for key, v in row.items()
        )
        if plain and self._deferrable(schema, prepared.relations):
            # Nothing reads it before the commit: written with the commit (storage/tx.py).
            self.conn.defer_insert(table, row)  # type: ignore[attr-defined]
        elif plain:
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
        self._require_writable()
        if not is_object_id(object_id):
            raise ObjectNotFound()
        schema = await self._schema_for_write(class_name, body)
        existing = await self._lock_writable(schema, object_id, "update")
        table = self.table(schema)
        if self.store.files is not None and not self.auth.is_master:
            await self.store.files.check_refs(self.auth, body, existing)
        body = drop_unchanged(schema, body, existing, trusted=self.auth.is_master)
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
        await self._announce_identity(schema, object_id, "update")
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
        trusted = self.auth.is_master
        accept_consistent(schema, request.body, request.server_values, trusted=trusted)
        prepared = prepare_write(schema, request.body, existing, trusted=trusted)
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
        self._require_writable()
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
        await self._announce_identity(schema, object_id, "delete")
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

    def _deferrable(self, schema: ClassSchema, relations: list[Any]) -> bool:
        """A create whose row nothing reads before the commit: no after-save trigger, no
        relation rows, not an identity class (their writes announce themselves)."""
        return (
            hasattr(self.conn, "defer_insert")
            and not relations
            and not schema.name.startswith("_")
            and not self.store.hooks.after_save.get(schema.name)
        )

    def system(self) -> Repository:
        """The server acting on its own behalf in this same transaction (hooks, sign-up).

        Explicit, like Medplum's system repository: privileged code has to ask for it by name.
        """
        clone = Repository(self.conn, self.store, Auth.system(), read_only=self.read_only)
        clone._tx = self._tx
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

    async def restore(
        self,
        class_name: str,
        object_id: str,
        body: dict[str, Any],
        *,
        created_at: datetime,
        updated_at: datetime,
        hidden: dict[str, Any] | None = None,
    ) -> None:
        """Write one object as another server exported it (``mindharbor import-parse``): its
        objectId, timestamps and ACL are kept and no hook runs, because the rules already ran
        where the object was made (running them again would open a second care team or append
        a crisis history twice). System only; the importer audits what it restores."""
        self._require_system()
        schema = await self.lookup_schema(class_name)
        if schema is None:
            raise InvalidQuery(f"No class {class_name}.")
        if not is_object_id(object_id):
            raise InvalidQuery("Invalid objectId.")
        prepared = prepare_write(schema, body, None, trusted=True)
        row: dict[str, Any] = {
            "objectId": object_id,
            "createdAt": created_at,
            "updatedAt": updated_at,
        }
        for spec in schema.fields.values():
            if spec.default is not None and spec.has_column and spec.name not in prepared.values:
                row[spec.name] = spec.default
        row.update(prepared.values)
        row.update(hidden or {})
        if "_rperm" not in row:
            readers, writers = permission_lists(None)
            row.update({"_acl": None, "_rperm": readers, "_wperm": writers})
        check_required(schema, row)
        await self._execute_write(self.table(schema).insert().values(row))
        await self._apply_relations(schema, object_id, prepared.relations)

    async def write_hidden(self, class_name: str, object_id: str, values: dict[str, Any]) -> None:
        """Set hidden columns (hashes, counters) without touching visible fields; system only."""
        self._require_writable()
        self._require_system()
        schema = self.schema_or_none(class_name)
        if schema is None:
            raise ObjectNotFound()
        table = self.table(schema)
        if any(not name.startswith("_") for name in values):
            raise OperationForbidden("write_hidden only sets hidden columns.")
        await self.conn.execute(table.update().where(table.c.objectId == object_id).values(values))
        await self._announce_identity(schema, object_id, "update")


def _defaults(schema: ClassSchema, body: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Column values of the schema's ``defaultValue``s for a new object: where the write gives
    the field nothing or ``Delete`` (not ``null``), as Parse's ``setRequiredFieldsIfNeeded``.
    The create's answer echoes them, as Parse does for fields the server changed."""
    out: dict[str, Any] = {}
    for spec in schema.fields.values():
        if spec.default is None or not spec.has_column:
            continue
        given = body.get(spec.name)
        deleted = isinstance(given, dict) and given.get("__op") == "Delete"
        if spec.name not in values or (deleted and values[spec.name] is None):
            out[spec.name] = to_column(spec, spec.default, schema.name)
    return out
