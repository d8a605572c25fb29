"""The access policy: the one place that turns "who is asking" into SQL.

Every SELECT, UPDATE and DELETE the repository issues passes through ``read_filter`` or
``write_filter``; the class-level check runs first (``check``). There is no other code path to a
class table, so limits, counts, skips, includes and sub-queries all see exactly the rows the
caller may see, and no row is ever filtered in Python after the fetch.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import ColumnElement

from mindharbor.security import clp
from mindharbor.security.auth import Auth
from mindharbor.storage.schema import ClassSchema


def perm_overlap(dialect: str, column: Any, identities: list[str]) -> ColumnElement[bool]:
    """SQL for "this permission list contains any of these identities"."""
    if dialect == "postgresql":
        ids = sa.bindparam(None, identities, type_=postgresql.ARRAY(sa.Text()))
        return column.op("&&")(ids)
    elements = sa.func.json_each(column).table_valued("value")
    return sa.exists(
        sa.select(sa.literal(1)).select_from(elements).where(elements.c.value.in_(identities))
    )


class AccessPolicy:
    """Access decisions for one caller; built per request from its ``Auth``."""

    def __init__(self, auth: Auth, dialect: str) -> None:
        self.auth = auth
        self.dialect = dialect

    def check(self, schema: ClassSchema, op: str) -> clp.ClassGrant:
        """Class-level permission for ``op``; raises 119 when the class is closed to the caller."""
        return clp.check_operation(self.auth, schema, op)

    def protected_fields(self, schema: ClassSchema) -> frozenset[str]:
        """Fields this caller may neither read nor query (CLP ``protectedFields``).

        As in Parse, every entry that applies to the caller (``*``, ``authenticated``, the user,
        each role) contributes a list and the caller loses only what all of them protect, so a
        role entry can lift a protection that ``*`` imposes.
        """
        if self.auth.is_master:
            return frozenset()
        rules: dict[str, Any] = schema.clp.get("protectedFields") or {}
        identities = set(self.auth.identities)
        if self.auth.user_id:
            identities.add("authenticated")
        lists = [set(fields) for who, fields in rules.items() if who in identities]
        if not lists:
            return frozenset()
        return frozenset(set.intersection(*lists))

    def _grant_filter(
        self, table: sa.FromClause, grant: clp.ClassGrant, user_id: str | None = None
    ) -> ColumnElement[bool]:
        if grant.pointer_fields is None:
            return sa.true()
        user_id = self.auth.user_id if user_id is None else user_id
        return sa.or_(*(table.c[f] == user_id for f in grant.pointer_fields if f in table.c))

    def read_filter(self, table: sa.FromClause, grant: clp.ClassGrant) -> ColumnElement[bool]:
        return self.read_filter_as(table, grant, self.auth.identities, self.auth.user_id)

    def read_filter_as(
        self,
        table: sa.FromClause,
        grant: clp.ClassGrant,
        identities: list[str],
        user_id: str | None,
    ) -> ColumnElement[bool]:
        """``read_filter`` with the identities given as values (the compiled-shape cache
        builds the same statement with stand-ins, ``storage/shapes.py``)."""
        if self.auth.is_master:
            return sa.true()
        return sa.and_(
            perm_overlap(self.dialect, table.c._rperm, identities),
            self._grant_filter(table, grant, user_id),
        )

    def write_filter(self, table: sa.FromClause, grant: clp.ClassGrant) -> ColumnElement[bool]:
        if self.auth.is_master:
            return sa.true()
        return sa.and_(
            perm_overlap(self.dialect, table.c._wperm, self.auth.identities),
            self._grant_filter(table, grant),
        )
