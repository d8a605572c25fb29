"""The operand side of a compiled ``where``: a field reference of each kind (a column, a JSON
array, a path into an Object, a Relation, a field the class does not have) knows how each Parse
operator reads on it, in SQLite's and PostgreSQL's SQL. ``WhereCompiler`` (where.py) resolves a
key to one of these and applies the operators."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import ColumnElement

from mindharbor.errors import InvalidQuery
from mindharbor.storage import geo, regex
from mindharbor.storage.codec import (
    NO_MATCH,
    parse_iso,
    scalar_operand,
)
from mindharbor.storage.schema import ClassSchema, FieldSpec

if TYPE_CHECKING:
    from mindharbor.storage.where import QueryScope, WhereCompiler

Clause = ColumnElement[bool]

_SQL_FAMILY = {
    "String": "text",
    "Pointer": "text",
    "Bytes": "text",
    "Number": "number",
    "Boolean": "bool",
    "Date": "date",
}


def _json_literal(value: Any) -> Any:
    """A JSONB operand (serialised once by the JSONB bind processor)."""
    return sa.bindparam(None, value, type_=postgresql.JSONB(none_as_null=True))


def _none_of(clause: Clause) -> Clause:
    """NOT that treats an unknown (NULL) as "does not match", so a row missing the field
    satisfies ``$nin``/``$nor``/``$ne`` as it does in Mongo and the live-query matcher."""
    return sa.not_(sa.func.coalesce(clause, sa.false()))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass
class _Ctx:
    scope: QueryScope
    schema: ClassSchema
    table: sa.FromClause
    depth: int


class _Ref:
    def __init__(self, compiler: WhereCompiler) -> None:
        self.c = compiler

    def unsupported(self, what: str) -> InvalidQuery:
        return InvalidQuery(f"{what} is not supported on this field type.")

    def eq(self, value: Any) -> Clause:
        raise self.unsupported("Equality")

    def ne(self, value: Any) -> Clause:
        return _none_of(self.eq(value))

    def compare(self, op: str, value: Any) -> Clause:
        raise self.unsupported(f"Comparison {op}")

    def in_(self, values: list[Any]) -> Clause:
        return sa.or_(sa.false(), *(self.eq(v) for v in values))

    def exists(self) -> Clause:
        raise self.unsupported("$exists")

    def all(self, values: list[Any]) -> Clause:
        raise self.unsupported("$all")

    def contained_by(self, values: list[Any]) -> Clause:
        raise self.unsupported("$containedBy")

    def regex(self, re2_pattern: str, pg_pattern: str) -> Clause:
        raise self.unsupported("$regex")

    def in_select(self, sub: Any, negate: bool) -> Clause:
        raise self.unsupported("Sub-queries")

    def selectable_from(self, spec: FieldSpec) -> bool:
        return False

    def _regex_sql(self, expr: ColumnElement[Any], re2_pattern: str, pg_pattern: str) -> Clause:
        if self.c.pg:
            return expr.op("~")(sa.literal(pg_pattern, sa.Text))
        return expr.op("REGEXP")(sa.literal(re2_pattern, sa.Text))


class _MissingRef(_Ref):
    """A field the class does not have: every row lacks it."""

    def eq(self, value: Any) -> Clause:
        return sa.true() if value is None else sa.false()

    def compare(self, op: str, value: Any) -> Clause:
        return sa.false()

    def exists(self) -> Clause:
        return sa.false()

    def all(self, values: list[Any]) -> Clause:
        return sa.false()

    def contained_by(self, values: list[Any]) -> Clause:
        return sa.true()

    def regex(self, re2_pattern: str, pg_pattern: str) -> Clause:
        return sa.false()

    def in_select(self, sub: Any, negate: bool) -> Clause:
        return sa.true() if negate else sa.false()


class _ColumnRef(_Ref):
    """A scalar column: String, Number, Boolean, Date, Pointer (stores the objectId), Bytes."""

    def __init__(
        self, compiler: WhereCompiler, column: ColumnElement[Any], spec: FieldSpec
    ) -> None:
        super().__init__(compiler)
        self.col: ColumnElement[Any] = column
        self.spec = spec

    def _operand(self, value: Any) -> Any:
        """The comparable Python value, or NO_MATCH when the types cannot be compared."""
        return scalar_operand(self.spec, value)

    def eq(self, value: Any) -> Clause:
        operand = self._operand(value)
        if operand is NO_MATCH:
            return sa.false()
        if operand is None:
            return self.col.is_(None)
        equal: Clause = self.col == operand
        return equal

    def ne(self, value: Any) -> Clause:
        operand = self._operand(value)
        if operand is NO_MATCH:
            return sa.true()
        if operand is None:
            return self.col.is_not(None)
        return sa.or_(self.col.is_(None), self.col != operand)

    def compare(self, op: str, value: Any) -> Clause:
        operand = self._operand(value)
        if operand is NO_MATCH or operand is None:
            return sa.false()
        return self.col.op(op)(operand)

    def in_(self, values: list[Any]) -> Clause:
        operands = [self._operand(v) for v in values]
        wanted = [o for o in operands if o is not NO_MATCH and o is not None]
        clause: Clause = self.col.in_(wanted) if wanted else sa.false()
        if any(o is None for o in operands):
            clause = sa.or_(clause, self.col.is_(None))
        return clause

    def exists(self) -> Clause:
        return self.col.is_not(None)

    def regex(self, re2_pattern: str, pg_pattern: str) -> Clause:
        if self.spec.type != "String":
            return sa.false()
        return self._regex_sql(self.col, re2_pattern, pg_pattern)

    def in_select(self, sub: Any, negate: bool) -> Clause:
        if sub is None:
            return sa.true() if negate else sa.false()
        if negate:
            return sa.or_(self.col.is_(None), self.col.not_in(sub))
        return self.col.in_(sub)

    def selectable_from(self, spec: FieldSpec) -> bool:
        return _SQL_FAMILY.get(spec.type) == _SQL_FAMILY[self.spec.type]


class _JsonRef(_Ref):
    """A whole Object/File/GeoPoint/Polygon column: equality and existence only."""

    def __init__(self, compiler: WhereCompiler, column: ColumnElement[Any]) -> None:
        super().__init__(compiler)
        self.col: ColumnElement[Any] = column

    def eq(self, value: Any) -> Clause:
        if value is None:
            return self.col.is_(None)
        if isinstance(value, dict) and value.get("__type") == "Polygon":
            value = geo.polygon_operand(value)
        if self.c.pg:
            equal: Clause = self.col == _json_literal(value)
            return equal
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        return sa.func.json(self.col) == sa.func.json(text)

    def ne(self, value: Any) -> Clause:
        if value is None:
            return self.col.is_not(None)
        return sa.or_(self.col.is_(None), sa.not_(self.eq(value)))

    def exists(self) -> Clause:
        return self.col.is_not(None)


class _ArrayRef(_JsonRef):
    """An Array column: a scalar operand means "some element equals it", as in Mongo."""

    def _element_match(
        self, elem: ColumnElement[Any], elem_type: ColumnElement[Any], value: Any
    ) -> Clause:
        """SQLite: does one ``json_each`` element equal ``value``?"""
        if isinstance(value, bool):
            return elem_type == ("true" if value else "false")
        if _is_number(value):
            return sa.and_(elem_type.in_(("integer", "real")), elem == value)
        if isinstance(value, str):
            return sa.and_(elem_type == "text", elem == value)
        if isinstance(value, dict) and value.get("__type") == "Pointer":
            return sa.and_(
                elem_type == "object",
                sa.func.json_extract(elem, "$.objectId") == str(value.get("objectId")),
                sa.func.json_extract(elem, "$.className") == str(value.get("className")),
            )
        if isinstance(value, dict) and value.get("__type") == "Date":
            return sa.and_(
                elem_type == "object", sa.func.json_extract(elem, "$.iso") == str(value.get("iso"))
            )
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        return sa.func.json(elem) == sa.func.json(text)

    def _any_element(self, value: Any) -> Clause:
        if isinstance(value, dict) and value.get("__type") == "Pointer":
            value = {
                "__type": "Pointer",
                "className": value.get("className"),
                "objectId": value.get("objectId"),
            }
        if self.c.pg:
            return self.col.op("@>")(_json_literal([value]))
        each = sa.func.json_each(self.col).table_valued("value", "type")
        return sa.exists(
            sa.select(sa.literal(1))
            .select_from(each)
            .where(self._element_match(each.c.value, each.c.type, value))
        )

    def eq(self, value: Any) -> Clause:
        if value is None:
            return self.col.is_(None)
        if isinstance(value, list):
            return super().eq(value)
        return self._any_element(value)

    def in_(self, values: list[Any]) -> Clause:
        return sa.or_(sa.false(), *(self._any_element(v) for v in values if v is not None))

    def all(self, values: list[Any]) -> Clause:
        parts = []
        for value in values:
            if isinstance(value, dict) and "$regex" in value:
                re2_p, pg_p = regex.normalize(
                    str(value["$regex"]), "", self.c.scope.max_regex_length
                )
                parts.append(self._element_regex(re2_p, pg_p))
            else:
                parts.append(self._any_element(value))
        return sa.and_(self.col.is_not(None), *parts)

    def contained_by(self, values: list[Any]) -> Clause:
        if self.c.pg:
            return sa.or_(self.col.is_(None), self.col.op("<@")(_json_literal(values)))
        each = sa.func.json_each(self.col).table_valued("value", "type")
        matches = sa.or_(
            sa.false(), *(self._element_match(each.c.value, each.c.type, v) for v in values)
        )
        return sa.not_(
            sa.exists(sa.select(sa.literal(1)).select_from(each).where(sa.not_(matches)))
        )

    def _element_regex(self, re2_pattern: str, pg_pattern: str) -> Clause:
        if self.c.pg:
            # Only string elements, as on SQLite and in the live-query matcher: a number 0 is not
            # the text "0".
            elems = sa.func.jsonb_array_elements(self.col).table_valued("value")
            text = elems.c.value.op("#>>")(sa.literal([], postgresql.ARRAY(sa.Text())))
            cond = sa.and_(
                sa.func.jsonb_typeof(elems.c.value) == "string",
                text.op("~")(sa.literal(pg_pattern, sa.Text)),
            )
            return sa.and_(
                sa.func.jsonb_typeof(self.col) == "array",
                sa.exists(sa.select(sa.literal(1)).select_from(elems).where(cond)),
            )
        each = sa.func.json_each(self.col).table_valued("value", "type")
        return sa.exists(
            sa.select(sa.literal(1))
            .select_from(each)
            .where(each.c.type == "text", self._regex_sql(each.c.value, re2_pattern, pg_pattern))
        )

    def regex(self, re2_pattern: str, pg_pattern: str) -> Clause:
        return self._element_regex(re2_pattern, pg_pattern)


class _PathRef(_Ref):
    """``field.a.b`` inside an Object column; compares only values of the operand's JSON type."""

    def __init__(
        self, compiler: WhereCompiler, column: ColumnElement[Any], path: list[str]
    ) -> None:
        super().__init__(compiler)
        self.col: ColumnElement[Any] = column
        self.path = path

    def _pg_path(self, extra: list[str] | None = None) -> Any:
        return sa.literal(self.path + (extra or []), postgresql.ARRAY(sa.Text()))

    def _sqlite_path(self, extra: list[str] | None = None) -> str:
        parts = self.path + (extra or [])
        return "$" + "".join('."' + p.replace('"', '""') + '"' for p in parts)

    def _json(self, extra: list[str] | None = None) -> ColumnElement[Any]:
        return self.col.op("#>")(self._pg_path(extra))

    def _text(self, extra: list[str] | None = None) -> Any:
        if self.c.pg:
            return self.col.op("#>>")(self._pg_path(extra))
        return sa.func.json_extract(self.col, self._sqlite_path(extra))

    def _type(self) -> Any:
        if self.c.pg:
            return sa.func.jsonb_typeof(self._json())
        return sa.func.json_type(self.col, self._sqlite_path())

    def _typed(self, value: Any) -> tuple[Clause, Any] | None:
        """(type guard, comparable SQL expression and operand) for a scalar operand."""
        if isinstance(value, dict) and value.get("__type") == "Pointer":
            return (sa.true(), (self._text(["objectId"]), str(value.get("objectId"))))
        if isinstance(value, dict) and value.get("__type") == "Date":
            parse_iso(value.get("iso"))  # validate; stored Dates use the same canonical form
            return (sa.true(), (self._text(["iso"]), str(value.get("iso"))))
        if isinstance(value, bool):
            guard = self._type() == ("boolean" if self.c.pg else ("true" if value else "false"))
            expr = self._json() if self.c.pg else None
            return (guard, (expr, _json_literal(value) if self.c.pg else None))
        if _is_number(value):
            if self.c.pg:
                return (self._type() == "number", (self._json(), _json_literal(value)))
            return (self._type().in_(("integer", "real")), (self._text(), value))
        if isinstance(value, str):
            guard = self._type() == ("string" if self.c.pg else "text")
            return (guard, (self._text(), value))
        return None

    def eq(self, value: Any) -> Clause:
        if value is None:
            return sa.not_(self.exists())
        typed = self._typed(value)
        if typed is None:
            if self.c.pg:
                equal: Clause = self._json() == _json_literal(value)
                return equal
            text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
            return sa.func.json(self._text()) == sa.func.json(text)
        guard, (expr, operand) = typed
        if expr is None:  # SQLite boolean: the type guard is the whole test
            return guard
        return sa.and_(guard, expr == operand)

    def ne(self, value: Any) -> Clause:
        return sa.or_(sa.not_(self.exists()), sa.not_(self.eq(value)))

    def compare(self, op: str, value: Any) -> Clause:
        typed = self._typed(value)
        if typed is None or isinstance(value, bool):
            return sa.false()
        guard, (expr, operand) = typed
        return sa.and_(guard, expr.op(op)(operand))

    def exists(self) -> Clause:
        if self.c.pg:
            return sa.and_(self._json().is_not(None), self._type() != "null")
        return sa.and_(self._type().is_not(None), self._type() != "null")

    def regex(self, re2_pattern: str, pg_pattern: str) -> Clause:
        guard = self._type() == ("string" if self.c.pg else "text")
        return sa.and_(guard, self._regex_sql(self._text(), re2_pattern, pg_pattern))


class _RelationRef(_Ref):
    """A Relation field: ``{"members": Pointer}`` means "this pointer is a member"."""

    def __init__(self, compiler: WhereCompiler, ctx: _Ctx, spec: FieldSpec) -> None:
        super().__init__(compiler)
        self.ctx = ctx
        self.join = ctx.scope.join_table(ctx.schema, spec.name)
        self.spec = spec

    def _owners(self, ids: list[str]) -> Clause:
        owners = sa.select(self.join.c.owningId).where(self.join.c.relatedId.in_(ids))
        return self.ctx.table.c.objectId.in_(owners)

    def _ids(self, values: list[Any]) -> list[str]:
        return [
            str(v["objectId"])
            for v in values
            if isinstance(v, dict)
            and v.get("__type") == "Pointer"
            and v.get("className") == self.spec.target_class
        ]

    def eq(self, value: Any) -> Clause:
        ids = self._ids([value])
        return self._owners(ids) if ids else sa.false()

    def in_(self, values: list[Any]) -> Clause:
        ids = self._ids(values)
        return self._owners(ids) if ids else sa.false()

    def exists(self) -> Clause:
        return self.ctx.table.c.objectId.in_(sa.select(self.join.c.owningId))

    def in_select(self, sub: Any, negate: bool) -> Clause:
        """``$inQuery``: owners relating at least one object the (access-filtered) sub-query
        finds; ``$notInQuery``: owners relating none of them (GraphQL's ``have``/``haveNot``)."""
        if sub is None:
            return sa.true() if negate else sa.false()
        owners = sa.select(self.join.c.owningId).where(self.join.c.relatedId.in_(sub))
        matches = self.ctx.table.c.objectId.in_(owners)
        return sa.not_(matches) if negate else matches
