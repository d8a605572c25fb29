"""Parse ``where`` JSON → one SQLAlchemy boolean expression, for SQLite and PostgreSQL alike.

Semantics follow Parse Server on Mongo (which the SDKs were written against): equality on an array
field means "contains", ``$ne``/``$nin`` also match rows where the field is missing, a field the
class does not have behaves as missing, and a comparison between different types matches nothing
rather than failing. Sub-queries (``$inQuery``, ``$select``, ``$relatedTo``) compile to SQL
sub-selects that carry the inner class's own access filter, checked with the caller's rights.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import ColumnElement

from mindharbor.errors import InvalidKeyName, InvalidQuery, OperationForbidden
from mindharbor.storage import regex
from mindharbor.storage.codec import NO_MATCH, parse_iso, query_value, utcnow
from mindharbor.storage.schema import FIELD_NAME_RE, ClassSchema, FieldSpec

Clause = ColumnElement[bool]
COMPARE_OPS = {"$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}
KNOWN_OPS = frozenset(
    {
        *COMPARE_OPS,
        "$eq",
        "$ne",
        "$in",
        "$nin",
        "$exists",
        "$all",
        "$containedBy",
        "$regex",
        "$options",
        "$inQuery",
        "$notInQuery",
        "$select",
        "$dontSelect",
    }
)
_SYSTEM_SPECS = {
    "objectId": FieldSpec("objectId", "String"),
    "createdAt": FieldSpec("createdAt", "Date"),
    "updatedAt": FieldSpec("updatedAt", "Date"),
}
# Which Python operand types a column of each Parse type can be compared with.
_SCALAR_KINDS: dict[str, tuple[type, ...]] = {
    "String": (str,),
    "Pointer": (str,),
    "Bytes": (str,),
    "Number": (int, float),
    "Boolean": (bool,),
    "Date": (datetime,),
}
_SQL_FAMILY = {
    "String": "text",
    "Pointer": "text",
    "Bytes": "text",
    "Number": "number",
    "Boolean": "bool",
    "Date": "date",
}


class QueryScope(Protocol):
    """What the compiler needs from the repository: schemas, tables and access filters."""

    dialect: str
    max_depth: int
    max_in_list: int
    max_regex_length: int

    def schema_or_none(self, class_name: str) -> ClassSchema | None: ...
    def table(self, schema: ClassSchema) -> sa.Table: ...
    def join_table(self, schema: ClassSchema, field_name: str) -> sa.Table: ...
    def readable(self, schema: ClassSchema, table: sa.FromClause, op: str = "find") -> Clause: ...
    def protected_fields(self, schema: ClassSchema) -> frozenset[str]: ...


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


class WhereCompiler:
    """Compiles one ``where`` (recursively, including sub-queries) for one caller."""

    def __init__(self, scope: QueryScope) -> None:
        self.scope = scope
        self.pg = scope.dialect == "postgresql"

    # -- entry points ---------------------------------------------------------------------------
    def compile(
        self, schema: ClassSchema, table: sa.FromClause, where: Any, depth: int = 0
    ) -> Clause:
        if where is None:
            return sa.true()
        if not isinstance(where, dict):
            raise InvalidQuery("where must be a JSON object.")
        if depth > self.scope.max_depth:
            raise InvalidQuery(f"Query is nested more than {self.scope.max_depth} levels deep.")
        ctx = _Ctx(self.scope, schema, table, depth)
        clauses = [self._top_level(ctx, key, value) for key, value in where.items()]
        return sa.and_(sa.true(), *clauses)

    def _top_level(self, ctx: _Ctx, key: str, value: Any) -> Clause:
        if key in ("$or", "$and", "$nor"):
            if not isinstance(value, list) or not value:
                raise InvalidQuery(f"Bad {key} format - use an array value.")
            parts = [self.compile(ctx.schema, ctx.table, sub, ctx.depth + 1) for sub in value]
            if key == "$or":
                return sa.or_(*parts)
            if key == "$and":
                return sa.and_(*parts)
            return _none_of(sa.or_(*parts))
        if key == "$relatedTo":
            return self._related_to(ctx, value)
        if key.startswith("$"):
            raise InvalidKeyName(f"Invalid key name: {key}")
        ref = self._ref(ctx, key)
        if isinstance(value, dict) and any(k.startswith("$") for k in value):
            if not all(k.startswith("$") for k in value):
                raise InvalidQuery(f"Cannot mix operators and values for key {key}.")
            return self._operators(ctx, ref, key, value)
        return ref.eq(value)

    # -- keys -----------------------------------------------------------------------------------
    def _ref(self, ctx: _Ctx, key: str) -> _Ref:
        if not isinstance(key, str) or not key:
            raise InvalidKeyName("Invalid key name.")
        if key == "ACL":
            raise InvalidQuery("Cannot query on ACL.")
        head, _, rest = key.partition(".")
        if not FIELD_NAME_RE.match(head):
            raise InvalidKeyName(f"Invalid key name: {key}")
        if head in _SYSTEM_SPECS:
            if rest:
                raise InvalidQuery(f"Dot notation is not supported on {head}.")
            return _ColumnRef(self, ctx.table.c[head], _SYSTEM_SPECS[head])
        if head in self.scope.protected_fields(ctx.schema):
            # Refused, not ignored: else a $regex/$gt/order probe could binary-search the value.
            raise OperationForbidden(f"Permission denied to query on protected field {head}.")
        spec = ctx.schema.field(head)
        if spec is None:
            return _MissingRef(self)
        if rest:
            path = rest.split(".")
            if not all(part and not part.startswith("$") for part in path):
                raise InvalidKeyName(f"Invalid key name: {key}")
            if spec.type != "Object":
                raise InvalidQuery(f"Dot notation is only supported on Object fields ({key}).")
            return _PathRef(self, ctx.table.c[head], path)
        if spec.type == "Relation":
            return _RelationRef(self, ctx, spec)
        if spec.type in _SCALAR_KINDS:
            return _ColumnRef(self, ctx.table.c[head], spec)
        if spec.type == "Array":
            return _ArrayRef(self, ctx.table.c[head])
        return _JsonRef(self, ctx.table.c[head])

    # -- operators ------------------------------------------------------------------------------
    def _operators(self, ctx: _Ctx, ref: _Ref, key: str, ops: dict[str, Any]) -> Clause:
        clauses: list[Clause] = []
        for op, arg in ops.items():
            if op not in KNOWN_OPS:
                raise InvalidQuery(f"Unsupported query operator: {op}")
            if op in COMPARE_OPS:
                clauses.append(ref.compare(COMPARE_OPS[op], self._relative(arg)))
            elif op == "$eq":
                clauses.append(ref.eq(arg))
            elif op == "$ne":
                clauses.append(ref.ne(arg))
            elif op in ("$in", "$nin"):
                items = self._list(op, arg)
                clauses.append(ref.in_(items) if op == "$in" else _none_of(ref.in_(items)))
            elif op == "$exists":
                if not isinstance(arg, bool):
                    raise InvalidQuery("$exists takes a boolean.")
                clauses.append(ref.exists() if arg else sa.not_(ref.exists()))
            elif op == "$all":
                clauses.append(ref.all(self._list(op, arg)))
            elif op == "$containedBy":
                clauses.append(ref.contained_by(self._list(op, arg)))
            elif op == "$regex":
                options = ops.get("$options", "")
                if not isinstance(arg, str) or not isinstance(options, str):
                    raise InvalidQuery("$regex and $options take strings.")
                clauses.append(
                    ref.regex(*regex.normalize(arg, options, self.scope.max_regex_length))
                )
            elif op == "$options":
                if "$regex" not in ops:
                    raise InvalidQuery("$options needs $regex.")
            elif op in ("$inQuery", "$notInQuery"):
                sub = self._subquery_ids(ctx, arg)
                clauses.append(ref.in_select(sub, negate=op == "$notInQuery"))
            else:  # $select / $dontSelect
                sub = self._select_key(ctx, ref, arg)
                clauses.append(ref.in_select(sub, negate=op == "$dontSelect"))
        return sa.and_(sa.true(), *clauses)

    def _list(self, op: str, arg: Any) -> list[Any]:
        if not isinstance(arg, list):
            raise InvalidQuery(f"bad {op} value; must be an array")
        if len(arg) > self.scope.max_in_list:
            raise InvalidQuery(f"{op} takes at most {self.scope.max_in_list} values.")
        return arg

    @staticmethod
    def _relative(arg: Any) -> Any:
        if isinstance(arg, dict) and "$relativeTime" in arg:
            return _relative_time(arg["$relativeTime"])
        return arg

    # -- sub-queries ----------------------------------------------------------------------------
    def _inner(self, ctx: _Ctx, query: Any) -> tuple[ClassSchema, sa.FromClause, Clause] | None:
        if not isinstance(query, dict) or not isinstance(query.get("className"), str):
            raise InvalidQuery("A sub-query needs className and where.")
        inner = self.scope.schema_or_none(query["className"])
        if inner is None:
            return None
        table = self.scope.table(inner).alias()
        cond = self.compile(inner, table, query.get("where", {}), ctx.depth + 1)
        return inner, table, sa.and_(cond, self.scope.readable(inner, table))

    def _subquery_ids(self, ctx: _Ctx, query: Any) -> Any:
        inner = self._inner(ctx, query)
        if inner is None:
            return None
        _, table, cond = inner
        return sa.select(table.c.objectId).where(cond)

    def _select_key(self, ctx: _Ctx, ref: _Ref, arg: Any) -> Any:
        if not isinstance(arg, dict) or not isinstance(arg.get("key"), str) or "query" not in arg:
            raise InvalidQuery("$select needs query and key.")
        inner = self._inner(ctx, arg["query"])
        if inner is None:
            return None
        schema, table, cond = inner
        key = arg["key"]
        spec = _SYSTEM_SPECS.get(key) or schema.field(key)
        if spec is None or spec.type not in _SQL_FAMILY:
            raise InvalidQuery(f"$select key {key} must be a scalar field of {schema.name}.")
        if not ref.selectable_from(spec):
            raise InvalidQuery(f"$select key {key} has a different type than the field.")
        return sa.select(table.c[key]).where(cond, table.c[key].is_not(None))

    def _related_to(self, ctx: _Ctx, value: Any) -> Clause:
        if not isinstance(value, dict) or not isinstance(value.get("key"), str):
            raise InvalidQuery("$relatedTo needs object and key.")
        owner = value.get("object")
        if not isinstance(owner, dict) or owner.get("__type") != "Pointer":
            raise InvalidQuery("$relatedTo object must be a Pointer.")
        owner_schema = self.scope.schema_or_none(str(owner.get("className")))
        spec = owner_schema.field(value["key"]) if owner_schema else None
        if owner_schema is None or spec is None or spec.type != "Relation":
            return sa.false()
        if spec.target_class != ctx.schema.name:
            return sa.false()
        owner_table = self.scope.table(owner_schema).alias()
        join = self.scope.join_table(owner_schema, value["key"])
        owner_id = str(owner.get("objectId"))
        # The relation is only visible through an owner the caller may read.
        owner_visible = sa.select(owner_table.c.objectId).where(
            owner_table.c.objectId == owner_id, self.scope.readable(owner_schema, owner_table)
        )
        members = sa.select(join.c.relatedId).where(
            join.c.owningId == owner_id, join.c.owningId.in_(owner_visible)
        )
        return ctx.table.c.objectId.in_(members)


def _relative_time(text: Any) -> datetime:
    """``"in 2 days"`` / ``"3 hours ago"`` / ``"now"`` → an absolute UTC time."""
    if not isinstance(text, str):
        raise InvalidQuery("$relativeTime must be a string.")
    words = text.lower().split()
    if words == ["now"]:
        return utcnow()
    future = words[:1] == ["in"]
    past = words[-1:] == ["ago"]
    if future == past:
        raise InvalidQuery("Time should either start with 'in' or end with 'ago'")
    words = words[1:] if future else words[:-1]
    if len(words) % 2:
        raise InvalidQuery("Invalid relative time: expected pairs of number and unit.")
    units = {
        "yr": 365 * 86400,
        "year": 365 * 86400,
        "week": 7 * 86400,
        "wk": 7 * 86400,
        "day": 86400,
        "d": 86400,
        "hour": 3600,
        "hr": 3600,
        "h": 3600,
        "minute": 60,
        "min": 60,
        "m": 60,
        "second": 1,
        "sec": 1,
        "s": 1,
    }
    seconds = 0.0
    for amount, unit in zip(words[::2], words[1::2], strict=True):
        try:
            seconds += float(amount) * units[unit.rstrip("s") if unit not in units else unit]
        except (ValueError, KeyError) as exc:
            raise InvalidQuery(f"Invalid relative time unit: {unit}") from exc
    delta = timedelta(seconds=min(seconds, 1e10))
    return utcnow() + delta if future else utcnow() - delta


# -- references: one per kind of storage a key can land on ---------------------------------------
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

    def _regex_sql(self, expr: Any, re2_pattern: str, pg_pattern: str) -> Clause:
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

    def __init__(self, compiler: WhereCompiler, column: Any, spec: FieldSpec) -> None:
        super().__init__(compiler)
        self.col = column
        self.spec = spec

    def _operand(self, value: Any) -> Any:
        """The comparable Python value, or NO_MATCH when the types cannot be compared."""
        if self.spec.type == "Pointer" and isinstance(value, str):
            return NO_MATCH  # Parse requires a Pointer, not a bare id
        decoded = query_value(self.spec, value)
        if decoded is NO_MATCH or decoded is None:
            return decoded
        kinds = _SCALAR_KINDS[self.spec.type]
        if not isinstance(decoded, kinds) or (bool not in kinds and isinstance(decoded, bool)):
            return NO_MATCH
        return decoded

    def eq(self, value: Any) -> Clause:
        operand = self._operand(value)
        if operand is NO_MATCH:
            return sa.false()
        if operand is None:
            return self.col.is_(None)
        return self.col == operand

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
        clause = self.col.in_(wanted) if wanted else sa.false()
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

    def __init__(self, compiler: WhereCompiler, column: Any) -> None:
        super().__init__(compiler)
        self.col = column

    def eq(self, value: Any) -> Clause:
        if value is None:
            return self.col.is_(None)
        if self.c.pg:
            return self.col == _json_literal(value)
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

    def _element_match(self, elem: Any, elem_type: Any, value: Any) -> Clause:
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

    def __init__(self, compiler: WhereCompiler, column: Any, path: list[str]) -> None:
        super().__init__(compiler)
        self.col = column
        self.path = path

    def _pg_path(self, extra: list[str] | None = None) -> Any:
        return sa.literal(self.path + (extra or []), postgresql.ARRAY(sa.Text()))

    def _sqlite_path(self, extra: list[str] | None = None) -> str:
        parts = self.path + (extra or [])
        return "$" + "".join('."' + p.replace('"', '""') + '"' for p in parts)

    def _json(self, extra: list[str] | None = None) -> Any:
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
                return self._json() == _json_literal(value)
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


def order_by(
    compiler: WhereCompiler, schema: ClassSchema, table: sa.Table, order: Any
) -> list[Any]:
    """``"a,-b"`` → ORDER BY terms; nulls sort first ascending, as Mongo does on both backends."""
    if order in (None, ""):
        return [table.c.createdAt.asc(), table.c.objectId.asc()]
    if not isinstance(order, str):
        raise InvalidQuery("order must be a comma-separated string.")
    terms: list[Any] = []
    for raw in order.split(","):
        key = raw.strip()
        descending = key.startswith("-")
        key = key.lstrip("-")
        if not key:
            continue
        if key == "$score":
            raise InvalidQuery("$score ordering needs $text, which is not supported.")
        ref = compiler._ref(_Ctx(compiler.scope, schema, table, 0), key)
        if isinstance(ref, _ColumnRef | _JsonRef):
            expr = ref.col
        elif isinstance(ref, _PathRef):
            expr = ref._json() if compiler.pg else ref._text()
        else:
            continue
        terms.append(expr.desc().nulls_last() if descending else expr.asc().nulls_first())
    terms.append(table.c.objectId.asc())
    return terms
