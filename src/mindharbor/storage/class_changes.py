"""Class definitions inside a caller's transaction: schema on write (a write that introduces
a class or a field creates it, when the caller may), ``/schemas`` changes and their DDL, and the
request-id claims that make a retried write apply once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import visitors

from mindharbor.errors import DuplicateRequest, InvalidQuery, OperationForbidden
from mindharbor.security.profile import may_add_user_fields
from mindharbor.storage.codec import pointer_target, type_of, utcnow
from mindharbor.storage.repo_base import RepositoryBase
from mindharbor.storage.schema import (
    PSEUDO_FIELDS,
    ClassSchema,
    FieldSpec,
    check_one_geopoint,
    validate_class_name,
    validate_field_name,
)
from mindharbor.storage.system_tables import idempotency_table, schema_table, write_schema_row

# What a query on a class that does not exist is compiled against (and thrown away): no field,
# so every constraint on a field matches nothing, but every operator is checked.
_NO_CLASS = ClassSchema(name="_NoSuchClass", fields={})


class ClassChanges(RepositoryBase):
    """Schema reads and changes for one caller's transaction."""

    # -- schema on write ------------------------------------------------------------------------
    def _check_missing_class(self, class_name: str, where: Any = None) -> None:
        """Parse 9: without client class creation, a non-master caller is told the class is
        closed (119) rather than shown an empty one. Otherwise the query is still validated,
        as Parse does on a class it pretends exists: a bad ``$options`` or ``$polygon`` is 102
        or 107, not an empty answer."""
        if not self.auth.is_master and not self.store.settings.allow_client_class_creation:
            raise OperationForbidden(
                f"This user is not allowed to access non-existent class: {class_name}"
            )
        if where:
            self.compiler.compile(_NO_CLASS, self.table(_NO_CLASS), where)

    def _may_change_schema(self, schema: ClassSchema | None) -> bool:
        if self.auth.is_master:
            return True
        if schema is not None and may_add_user_fields(self.store.settings, self.auth, schema.name):
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
        if schema is None and self.store.dialect == "postgresql":
            # No row to lock yet: concurrent first writes would each insert it (137). A lock on
            # the class name serialises them; the waiters then find the row the first wrote.
            await self.conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(7315003, hashtext(:name))"),
                {"name": class_name},
            )
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
        check_one_geopoint(schema)
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
        await self._drop_indexes_reading(schema, name)
        spec = schema.fields[name]
        if spec.type == "Relation":
            join = self.join_table(schema, name)
            await self.conn.run_sync(lambda c: join.drop(c, checkfirst=True))
        else:
            await self.conn.run_sync(_drop_column, self.table(schema).name, name)

    async def _drop_indexes_reading(self, schema: ClassSchema, name: str) -> None:
        """SQLite refuses to drop a column an index reads (a GeoPoint's lat/lng index): those
        indexes go first, on both backends alike."""
        if schema.fields[name].type == "Relation":
            return
        for index in list(self.table(schema).indexes):
            if _reads_column(index, name):
                await self.conn.execute(sa.schema.DropIndex(index, if_exists=True))

    async def drop_index(self, schema: ClassSchema, index_name: str) -> None:
        """Drop an index declared through /schemas (named as storage/tables.py names it)."""
        if not self.auth.is_master:
            raise OperationForbidden("Schema changes need the master key.")
        name = f"ix_{schema.name}_{index_name}"
        await self.conn.run_sync(
            lambda c: c.execute(
                sa.text(f"DROP INDEX IF EXISTS {c.dialect.identifier_preparer.quote(name)}")
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


def _reads_column(index: sa.Index, name: str) -> bool:
    return any(
        isinstance(node, sa.Column) and node.name == name
        for expression in index.expressions
        if not isinstance(expression, str)
        for node in visitors.iterate(expression)
    )


def _drop_table(conn: sa.Connection, table: sa.Table) -> None:
    table.drop(conn, checkfirst=True)


def _drop_column(conn: sa.Connection, table: str, column: str) -> None:
    """``ALTER TABLE ... DROP COLUMN``, once this connection has read the current schema.

    SQLite checks a dropped column against the connection's in-memory schema while preparing
    the statement, before it notices that another connection changed the schema: a column
    added a moment ago elsewhere was "no such column". The inspector reads the schema afresh
    (and a column that is already gone is nothing to drop).
    """
    if column not in {c["name"] for c in sa.inspect(conn).get_columns(table)}:
        return
    quote = conn.dialect.identifier_preparer.quote
    conn.execute(sa.text(f"ALTER TABLE {quote(table)} DROP COLUMN {quote(column)}"))
