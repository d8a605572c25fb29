"""Parse ``where`` JSON → one SQLAlchemy boolean expression, for SQLite and PostgreSQL alike.

Semantics follow Parse Server on Mongo (which the SDKs were written against): equality on an array
field means "contains", ``$ne``/``$nin`` also match rows where the field is missing, a field the
class does not have behaves as missing, and a comparison between different types matches nothing
rather than failing. Sub-queries (``$inQuery``, ``$select``, ``$relatedTo``) compile to SQL
sub-selects that carry the inner class's own access filter, checked with the caller's rights.
Geo operators compile through ``storage/geo_sql.py`` (an indexed box, then the exact test); a
top-level ``$nearSphere`` orders the results by distance unless the query gives an order.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa

from mindharbor.errors import InvalidKeyName, InvalidQuery, OperationForbidden
from mindharbor.storage import geo, geo_sql, regex, textsearch
from mindharbor.storage.codec import SCALAR_KINDS, utcnow
from mindharbor.storage.schema import FIELD_NAME_RE, ClassSchema, FieldSpec
from mindharbor.storage.where_refs import (
    _SQL_FAMILY,
    Clause,
    _ArrayRef,
    _ColumnRef,
    _Ctx,
    _JsonRef,
    _MissingRef,
    _none_of,
    _PathRef,
    _Ref,
    _RelationRef,
)

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
        "$text",
        *geo.GEO_OPS,
    }
)
_SYSTEM_SPECS = {
    "objectId": FieldSpec("objectId", "String"),
    "createdAt": FieldSpec("createdAt", "Date"),
    "updatedAt": FieldSpec("updatedAt", "Date"),
}


class QueryScope(Protocol):
    """What the compiler needs from the repository: schemas, tables and access filters."""

    dialect: str
    max_depth: int
    max_in_list: int
    max_regex_length: int
    max_query_terms: int

    def schema_or_none(self, class_name: str) -> ClassSchema | None: ...
    def table(self, schema: ClassSchema) -> sa.Table: ...
    def join_table(self, schema: ClassSchema, field_name: str) -> sa.Table: ...
    def readable(self, schema: ClassSchema, table: sa.FromClause, op: str = "find") -> Clause: ...
    def protected_fields(self, schema: ClassSchema) -> frozenset[str]: ...


_LIST_OPERATORS = frozenset({"$in", "$nin", "$all", "$containedBy"})


def count_terms(where: Any, limit: int) -> int:
    """The number of constraints in a ``where`` (keys, operators, and/or/nor branches, at any
    depth), counted without compiling anything; 102 as soon as it passes ``limit``. Value lists
    of ``$in``-like operators count once (their length has its own limit), so the cost of a
    query is bounded before its statement is built: a refusal costs microseconds, not the
    seconds of building thousands of terms."""
    count = 0
    stack = [where]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                count += 1
                if count > limit:
                    raise InvalidQuery(f"The query is too complex (more than {limit} terms).")
                if key not in _LIST_OPERATORS and isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(node, list):
            count += len(node)
            if count > limit:
                raise InvalidQuery(f"The query is too complex (more than {limit} terms).")
            stack.extend(item for item in node if isinstance(item, dict | list))
    return count


class WhereCompiler:
    """Compiles one ``where`` (recursively, including sub-queries) for one caller."""

    def __init__(self, scope: QueryScope) -> None:
        self.scope = scope
        self.pg = scope.dialect == "postgresql"
        # The distance of the first top-level $nearSphere: the order when none is given.
        self.near_order: Any = None
        # The rank of the first top-level $text: ``$score`` (order and keys).
        self.text_score: Any = None

    # -- entry points ---------------------------------------------------------------------------
    def compile(
        self, schema: ClassSchema, table: sa.FromClause, where: Any, depth: int = 0
    ) -> Clause:
        if where is None:
            return sa.true()
        if not isinstance(where, dict):
            raise InvalidQuery("where must be a JSON object.")
        if depth == 0:
            count_terms(where, self.scope.max_query_terms)
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
        if spec.type in SCALAR_KINDS:
            return _ColumnRef(self, ctx.table.c[head], spec)
        if spec.type == "Array":
            return _ArrayRef(self, ctx.table.c[head])
        return _JsonRef(self, ctx.table.c[head])

    # -- operators ------------------------------------------------------------------------------
    def _operators(self, ctx: _Ctx, ref: _Ref, key: str, ops: dict[str, Any]) -> Clause:
        clauses: list[Clause] = []
        if any(op in geo.GEO_OPS for op in ops):
            clauses.append(self._geo(ctx, ref, key, ops))
        for op, arg in ops.items():
            if op not in KNOWN_OPS:
                raise InvalidQuery(f"Unsupported query operator: {op}")
            if op in geo.GEO_OPS:
                continue
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
                options = regex.check_options(arg, ops.get("$options"))
                clauses.append(
                    ref.regex(*regex.normalize(arg, options, self.scope.max_regex_length))
                )
            elif op == "$text":
                clauses.append(self._text(ctx, ref, key, arg))
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

    def _geo(self, ctx: _Ctx, ref: _Ref, key: str, ops: dict[str, Any]) -> Clause:
        """Geo operators (storage/geo.py): a missing field matches nothing; a field of another
        type is 102."""
        field_type = _geo_field_type(ctx.schema, ref, key)
        constraints = geo.parse_ops(field_type, ops)
        if field_type is None or not isinstance(ref, _JsonRef):
            return sa.false()
        for constraint in constraints:
            if isinstance(constraint, geo.Near) and ctx.depth == 0 and self.near_order is None:
                self.near_order = geo_sql.distance(ref.col, constraint.lat, constraint.lng, self.pg)
        return sa.and_(*(geo_sql.clause(ref.col, c, self.pg) for c in constraints))

    def _text(self, ctx: _Ctx, ref: _Ref, key: str, arg: Any) -> Clause:
        """``$text`` (storage/textsearch.py) on a String field; a missing field matches nothing."""
        search = textsearch.parse(arg)
        if isinstance(ref, _MissingRef):
            return sa.false()
        if not isinstance(ref, _ColumnRef) or ref.spec.type != "String" or "." in key:
            raise InvalidQuery(f"$text needs a String field ({key}).")
        if ctx.depth == 0 and self.text_score is None:
            self.text_score = textsearch.score(ref.col, search, self.pg)
        return sa.and_(textsearch.clause(ref.col, search, self.pg))

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


def _geo_field_type(schema: ClassSchema, ref: object, key: str) -> str | None:
    """The Parse type geo operators see for ``key``: None when the class has no such field,
    ``"other"`` for dot paths and system fields."""
    if isinstance(ref, _MissingRef):
        return None
    spec = schema.field(key) if "." not in key else None
    return spec.type if spec is not None else "other"


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
_ORDER_ALIASES = {"_created_at": "createdAt", "_updated_at": "updatedAt"}


def field_column(
    compiler: WhereCompiler, schema: ClassSchema, table: sa.Table, key: str
) -> tuple[Any, str] | None:
    """A top-level field's column and Parse type (system fields included; protected fields
    refused as in a where); None: the class has no such field (storage/aggregate.py)."""
    ref = compiler._ref(_Ctx(compiler.scope, schema, table, 0), key)
    if isinstance(ref, _ColumnRef):
        return ref.col, ref.spec.type
    if isinstance(ref, _ArrayRef):
        return ref.col, "Array"
    if isinstance(ref, _MissingRef):
        return None
    raise InvalidQuery(f"{key} cannot be aggregated.")


def order_by(
    compiler: WhereCompiler, schema: ClassSchema, table: sa.Table, order: Any
) -> list[Any]:
    """``"a,-b"`` → ORDER BY terms; nulls sort first ascending, as Mongo does on both backends."""
    if order in (None, "") and compiler.near_order is not None:
        return [compiler.near_order.asc(), table.c.objectId.asc()]
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
        # Parse.com's storage names; Parse Server sorts on them as createdAt / updatedAt.
        key = _ORDER_ALIASES.get(key, key)
        if key == "$score":
            # Parse ranks best first whichever the direction (its sort is ``score DESC``).
            if compiler.text_score is None:
                raise InvalidQuery("$score ordering needs a $text constraint.")
            terms.append(compiler.text_score.desc())
            continue
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
