"""SQL tables derived from the schema registry.

Each Parse class is one table with a typed column per field plus the system columns
``objectId``, ``createdAt``, ``updatedAt``, ``_acl`` and the derived permission lists ``_rperm``
and ``_wperm`` that every query filters on (the way Parse Server's PostgreSQL adapter does it).
On PostgreSQL the permission lists are ``text[]`` with a GIN index, so "the row's read list meets
the caller's identities" is one indexable ``&&``; on SQLite they are JSON arrays probed with
``json_each``. Relations live in join tables named as Parse names them: ``_Join:<field>:<Class>``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from mindharbor.storage.geo_sql import geopoint_index
from mindharbor.storage.schema import ClassSchema, FieldSpec

JSONType = sa.JSON(none_as_null=True).with_variant(
    postgresql.JSONB(none_as_null=True), "postgresql"
)
PermList = sa.JSON().with_variant(postgresql.ARRAY(sa.Text()), "postgresql")

_COLUMN_TYPES: dict[str, Any] = {
    "String": sa.Text,
    "Number": sa.Float,
    "Boolean": sa.Boolean,
    "Date": sa.DateTime,
    "Pointer": sa.Text,
    "Bytes": sa.Text,
}

SYSTEM_COLUMNS = ("objectId", "createdAt", "updatedAt", "_acl", "_rperm", "_wperm")
# Columns some system classes carry besides their declared fields; never sent to clients.
HIDDEN_COLUMNS: dict[str, dict[str, Any]] = {
    "_User": {
        "_hashed_password": sa.Text,
        "_failed_login_count": sa.Integer,
        "_lockout_until": sa.DateTime,
        "_password_changed_at": sa.DateTime,
        "_mfa": JSONType,
        "_reset_token_hash": sa.Text,
        "_reset_token_expires": sa.DateTime,
        # The username NFKC-normalised and case-folded: names that look the same are one
        # account (domain/identity.py); NULL only for legacy clashes (storage/db.py).
        "_username_key": sa.Text,
    },
    # Digest of each audit entry's content, sealed into blocks (domain/audit/seal.py).
    "AuditLog": {"_hash": sa.Text},
    "_Session": {
        "_session_token_hash": sa.Text,
        "_last_used_at": sa.DateTime,
        "_idle_minutes": sa.Integer,
        # The session passed a second factor (or enrolled one): see auth/sessions.py.
        "_mfa_verified": sa.Boolean,
    },
}


def column_type(spec: FieldSpec) -> Any:
    """Scalars get native SQL types; structured values (Object, Array, File, ...) are JSON."""
    return _COLUMN_TYPES.get(spec.type, JSONType)


# Classes whose rows the server writes with one fixed ACL (domain/audit/writer.py).
UNIFORM_ACL_CLASSES = frozenset({"AuditLog"})


def join_table_name(class_name: str, field_name: str) -> str:
    return f"_Join:{field_name}:{class_name}"


def build_table(schema: ClassSchema, metadata: sa.MetaData, dialect: str | None = None) -> sa.Table:
    """The table for a class, with the indexes queries from the seed's flows need
    (``dialect``: the database it is for, when known; some indexes exist on one only)."""
    cols: list[sa.Column[Any]] = [
        sa.Column("objectId", sa.String(32), primary_key=True),
        sa.Column("createdAt", sa.DateTime, nullable=False),
        sa.Column("updatedAt", sa.DateTime, nullable=False),
        sa.Column("_acl", JSONType),
        sa.Column("_rperm", PermList, nullable=False),
        sa.Column("_wperm", PermList, nullable=False),
    ]
    for name, col_type in HIDDEN_COLUMNS.get(schema.name, {}).items():
        cols.append(sa.Column(name, col_type))
    for spec in schema.fields.values():
        if spec.has_column:
            cols.append(sa.Column(spec.name, column_type(spec)))
    table = sa.Table(schema.name, metadata, *cols)
    # Every index costs every write: a pointer that leads a declared compound index is served
    # by that index and gets none of its own.
    leading = {next(iter(keys)) for keys in schema.indexes.values() if keys}
    for spec in schema.fields.values():
        if spec.unique:
            sa.Index(f"uq_{schema.name}_{spec.name}", table.c[spec.name], unique=True)
        elif spec.type == "Pointer" and spec.name not in leading:
            sa.Index(f"ix_{schema.name}_{spec.name}", table.c[spec.name])
        elif spec.type == "GeoPoint":  # the bounding-box prefilter of geo queries
            # Only the database's own: a migration must not see the other's as missing.
            for name in (dialect,) if dialect else ("postgresql", "sqlite"):
                geopoint_index(table, spec.name, name == "postgresql").ddl_if(dialect=name)
    sa.Index(f"ix_{schema.name}_createdAt", table.c.createdAt)
    if schema.name == "_Session":
        sa.Index("uq__Session_token_hash", table.c._session_token_hash, unique=True)
    if schema.name == "_User":
        sa.Index("uq__User_username_key", table.c._username_key, unique=True)
    # A JSON array cannot be indexed usefully in SQLite; PostgreSQL gets a GIN index for `&&`,
    # except where every row carries the same readers (the index would match every row).
    if schema.name not in UNIFORM_ACL_CLASSES:
        sa.Index(f"ix_{schema.name}__rperm", table.c._rperm, postgresql_using="gin").ddl_if(
            dialect="postgresql"
        )
    for index_name, keys in schema.indexes.items():
        exprs = []
        for key, direction in keys.items():
            if key not in table.c:
                continue
            exprs.append(table.c[key].desc() if direction == -1 else table.c[key])
        if exprs:
            sa.Index(f"ix_{schema.name}_{index_name}", *exprs)
    return table


def build_join_table(class_name: str, spec: FieldSpec, metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        join_table_name(class_name, spec.name),
        metadata,
        sa.Column("owningId", sa.String(32), primary_key=True),
        sa.Column("relatedId", sa.String(32), primary_key=True, index=True),
    )


class TableSet:
    """SQLAlchemy tables per class, rebuilt whenever the class's schema object changes.

    Each schema version gets its own ``MetaData``, so a repository holding an older snapshot
    (or a transaction that adds a field and then rolls back) never disturbs another's tables.
    """

    def __init__(self, dialect: str | None = None) -> None:
        self.dialect = dialect
        self._cache: dict[str, tuple[ClassSchema, sa.Table, dict[str, sa.Table]]] = {}

    def _entry(self, schema: ClassSchema) -> tuple[ClassSchema, sa.Table, dict[str, sa.Table]]:
        cached = self._cache.get(schema.name)
        if cached is not None and cached[0] is schema:
            return cached
        metadata = sa.MetaData()
        table = build_table(schema, metadata, self.dialect)
        joins = {rel.name: build_join_table(schema.name, rel, metadata) for rel in schema.relations}
        entry = (schema, table, joins)
        self._cache[schema.name] = entry
        return entry

    def table(self, schema: ClassSchema) -> sa.Table:
        return self._entry(schema)[1]

    def join_table(self, schema: ClassSchema, field_name: str) -> sa.Table:
        return self._entry(schema)[2][field_name]

    def all_tables(self, schema: ClassSchema) -> list[sa.Table]:
        _, table, joins = self._entry(schema)
        return [table, *joins.values()]
