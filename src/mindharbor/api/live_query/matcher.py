"""Parse ``where`` evaluated in memory against one stored row, for live-query events.

This is the second evaluator of the one query language; ``mindharbor.storage.where`` is the
first. Both must give the same answer for every object, so this module follows the compiler's
structure reference by reference (``_MissingRef``, ``_ColumnRef``, ``_ArrayRef``, ``_JsonRef``,
``_PathRef``) and a property-based test (tests/live_query/test_matcher_agreement.py) runs
generated objects and queries through both on SQLite and PostgreSQL.

It works on stored rows, as the compiler does: Pointer columns hold the objectId, Dates are naive
UTC datetimes, Object and Array columns hold Parse JSON. The semantics that follow from Mongo:
equality on an array means "contains", ``$ne``/``$nin``/``$nor`` match a missing field, a field
the class does not have behaves as missing, and a comparison between different types matches
nothing. Compilation happens once per subscription (``compile_where``) and raises the same Parse
errors the SQL compiler would (102, 105, 111, 119), so a bad subscription is refused up front.

Geo operators run the exact tests of ``mindharbor.storage.geo``, the very code SQLite's registered
functions run and PostgreSQL's SQL mirrors. Left out, as Parse's LiveQuery leaves them out:
``$inQuery``/``$notInQuery``/``$select``/``$dontSelect``/``$relatedTo`` and Relation fields (they
need the database), ``$text``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import re2

from mindharbor.errors import InvalidKeyName, InvalidQuery, OperationForbidden
from mindharbor.storage import geo, regex
from mindharbor.storage.codec import (
    NO_MATCH,
    SCALAR_KINDS,
    parse_iso,
    scalar_operand,
)
from mindharbor.storage.schema import FIELD_NAME_RE, ClassSchema, FieldSpec

# The compiler's relative-time parser, shared so "in 2 days" means the same thing in both.
from mindharbor.storage.where import _relative_time, count_terms

Row = Mapping[str, Any]
Predicate = Callable[[Row], bool]

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$lt": operator.lt,
    "$lte": operator.le,
    "$gt": operator.gt,
    "$gte": operator.ge,
}
_SUBQUERY_OPS = frozenset({"$inQuery", "$notInQuery", "$select", "$dontSelect"})
_KNOWN_OPS = frozenset(
    {*_COMPARE, "$eq", "$ne", "$in", "$nin", "$exists", "$all", "$containedBy", "$regex"}
    | {"$options"}
    | _SUBQUERY_OPS
    | geo.GEO_OPS
)
_SYSTEM_SPECS = {
    "objectId": FieldSpec("objectId", "String"),
    "createdAt": FieldSpec("createdAt", "Date"),
    "updatedAt": FieldSpec("updatedAt", "Date"),
}


class Limits(Protocol):
    """The query limits both evaluators enforce (``Settings`` provides them)."""

    max_query_depth: int
    max_in_list: int
    max_regex_length: int
    max_query_terms: int


def _always(_: Row) -> bool:
    return True


def _never(_: Row) -> bool:
    return False


def _const(value: bool) -> Predicate:
    return _always if value else _never


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values as the databases compare them: booleans are not numbers,
    numbers compare by value, object key order does not matter."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) or _is_number(b):
        return _is_number(a) and _is_number(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def _regex_search(pattern: str) -> Callable[[Any], bool]:
    compiled = re2.compile(pattern)
    return lambda value: isinstance(value, str) and compiled.search(value) is not None


def compile_where(
    schema: ClassSchema,
    where: Any,
    limits: Limits,
    protected: frozenset[str] = frozenset(),
) -> Predicate:
    """A predicate over stored rows of ``schema``; raises the Parse error SQL would raise."""
    if isinstance(where, dict):
        count_terms(where, limits.max_query_terms)
    return _Compiler(schema, limits, protected).where(where, 0)


_ALWAYS_NAMED = frozenset({"objectId", "createdAt", "updatedAt", "ACL", "className"})


def check_field_names(names: tuple[str, ...] | None, protected: frozenset[str], what: str) -> None:
    """``keys``/``watch`` as ``where`` treats its keys: internal columns (``_rperm``, hashes)
    are refused with 105; for ``watch``, a protected field is refused with 119, since an update
    that fires only when it changes would tell its value's changes."""
    for name in names or ():
        if name in _ALWAYS_NAMED:
            continue
        head = name.partition(".")[0]
        if not FIELD_NAME_RE.match(head):
            raise InvalidKeyName(f"Invalid key name in {what}: {name}")
        if what == "watch" and head in protected:
            raise OperationForbidden(f"Permission denied to watch protected field {head}.")


def matches(schema: ClassSchema, where: Any, row: Row | None, limits: Limits, **kw: Any) -> bool:
    """Convenience: compile and evaluate once (a missing row matches nothing)."""
    return row is not None and compile_where(schema, where, limits, **kw)(row)


class _Compiler:
    def __init__(self, schema: ClassSchema, limits: Limits, protected: frozenset[str]) -> None:
        self.schema = schema
        self.limits = limits
        self.protected = protected

    def where(self, where: Any, depth: int) -> Predicate:
        if where is None:
            return _always
        if not isinstance(where, dict):
            raise InvalidQuery("where must be a JSON object.")
        if depth > self.limits.max_query_depth:
            raise InvalidQuery(
                f"Query is nested more than {self.limits.max_query_depth} levels deep."
            )
        parts = [self._top_level(key, value, depth) for key, value in where.items()]
        return lambda row: all(p(row) for p in parts)

    def _top_level(self, key: str, value: Any, depth: int) -> Predicate:
        if key in ("$or", "$and", "$nor"):
            if not isinstance(value, list) or not value:
                raise InvalidQuery(f"Bad {key} format - use an array value.")
            subs = [self.where(sub, depth + 1) for sub in value]
            if key == "$or":
                return lambda row: any(p(row) for p in subs)
            if key == "$and":
                return lambda row: all(p(row) for p in subs)
            return lambda row: not any(p(row) for p in subs)
        if key == "$relatedTo":
            raise InvalidQuery("$relatedTo is not supported in live queries.")
        if key.startswith("$"):
            raise InvalidKeyName(f"Invalid key name: {key}")
        ref = self._ref(key)
        if isinstance(value, dict) and any(k.startswith("$") for k in value):
            if not all(k.startswith("$") for k in value):
                raise InvalidQuery(f"Cannot mix operators and values for key {key}.")
            return self._operators(ref, key, value)
        return ref.eq(value)

    def _ref(self, key: str) -> _Ref:
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
            return _ColumnRef(head, _SYSTEM_SPECS[head])
        if head in self.protected:
            # Refused, not ignored, as in SQL: a $regex probe could otherwise read the value.
            raise OperationForbidden(f"Permission denied to query on protected field {head}.")
        spec = self.schema.field(head)
        if spec is None:
            return _MissingRef()
        if rest:
            path = rest.split(".")
            if not all(part and not part.startswith("$") for part in path):
                raise InvalidKeyName(f"Invalid key name: {key}")
            if spec.type != "Object":
                raise InvalidQuery(f"Dot notation is only supported on Object fields ({key}).")
            return _PathRef(head, path)
        if spec.type == "Relation":
            raise InvalidQuery("Relation fields cannot be queried in live queries.")
        if spec.type in SCALAR_KINDS:
            return _ColumnRef(head, spec)
        if spec.type == "Array":
            return _ArrayRef(head)
        return _JsonRef(head)

    def _operators(self, ref: _Ref, key: str, ops: dict[str, Any]) -> Predicate:
        parts: list[Predicate] = []
        if any(op in geo.GEO_OPS for op in ops):
            parts.append(self._geo(ref, key, ops))
        for op, arg in ops.items():
            if op == "$text":  # a rank needs the whole class: Parse's LiveQuery has none either
                raise InvalidQuery("$text is not supported in live queries.")
            if op not in _KNOWN_OPS:
                raise InvalidQuery(f"Unsupported query operator: {op}")
            if op in geo.GEO_OPS:
                continue
            if op in _COMPARE:
                parts.append(self._compare(ref, op, arg))
            elif op == "$eq":
                parts.append(ref.eq(arg))
            elif op == "$ne":
                parts.append(ref.ne(arg))
            elif op in ("$in", "$nin"):
                found = ref.in_(self._list(op, arg))
                parts.append(found if op == "$in" else _negate(found))
            elif op == "$exists":
                if not isinstance(arg, bool):
                    raise InvalidQuery("$exists takes a boolean.")
                exists = ref.exists()
                parts.append(exists if arg else _negate(exists))
            elif op == "$all":
                parts.append(ref.all(self._list(op, arg), self.limits.max_regex_length))
            elif op == "$containedBy":
                parts.append(ref.contained_by(self._list(op, arg)))
            elif op == "$regex":
                options = regex.check_options(arg, ops.get("$options"))
                re2_pattern, _ = regex.normalize(arg, options, self.limits.max_regex_length)
                parts.append(ref.regex(re2_pattern))
            elif op == "$options":
                if "$regex" not in ops:
                    raise InvalidQuery("$options needs $regex.")
            else:
                raise InvalidQuery(f"{op} is not supported in live queries.")
        return lambda row: all(p(row) for p in parts)

    def _geo(self, ref: _Ref, key: str, ops: dict[str, Any]) -> Predicate:
        """As the SQL compiler: a missing field matches nothing, another type is 102."""
        field_type: str | None = None
        if not isinstance(ref, _MissingRef):
            spec = self.schema.field(key) if "." not in key else None
            field_type = spec.type if spec is not None else "other"
        constraints = geo.parse_ops(field_type, ops)
        if field_type is None or not isinstance(ref, _JsonRef):
            return _never
        name = ref.name
        return lambda row: all(geo.matches(c, row.get(name)) for c in constraints)

    def _compare(self, ref: _Ref, op: str, arg: Any) -> Predicate:
        if isinstance(arg, dict) and "$relativeTime" in arg:
            text = arg["$relativeTime"]
            _relative_time(text)  # validate now; "now" moves, so resolve at each event
            return lambda row: ref.compare(op, _relative_time(text))(row)
        return ref.compare(op, arg)

    def _list(self, op: str, arg: Any) -> list[Any]:
        if not isinstance(arg, list):
            raise InvalidQuery(f"bad {op} value; must be an array")
        if len(arg) > self.limits.max_in_list:
            raise InvalidQuery(f"{op} takes at most {self.limits.max_in_list} values.")
        return arg


def _negate(predicate: Predicate) -> Predicate:
    return lambda row: not predicate(row)


# -- references: one per kind of storage a key can land on, as in storage/where.py -------------
class _Ref:
    def unsupported(self, what: str) -> InvalidQuery:
        return InvalidQuery(f"{what} is not supported on this field type.")

    def eq(self, value: Any) -> Predicate:
        raise self.unsupported("Equality")

    def ne(self, value: Any) -> Predicate:
        return _negate(self.eq(value))

    def compare(self, op: str, value: Any) -> Predicate:
        raise self.unsupported(f"Comparison {_sql_op(op)}")

    def in_(self, values: list[Any]) -> Predicate:
        parts = [self.eq(v) for v in values]
        return lambda row: any(p(row) for p in parts)

    def exists(self) -> Predicate:
        raise self.unsupported("$exists")

    def all(self, values: list[Any], max_regex_length: int) -> Predicate:
        raise self.unsupported("$all")

    def contained_by(self, values: list[Any]) -> Predicate:
        raise self.unsupported("$containedBy")

    def regex(self, re2_pattern: str) -> Predicate:
        raise self.unsupported("$regex")


def _sql_op(op: str) -> str:
    return {"$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}[op]


class _MissingRef(_Ref):
    """A field the class does not have: every row lacks it."""

    def eq(self, value: Any) -> Predicate:
        return _const(value is None)

    def compare(self, op: str, value: Any) -> Predicate:
        return _never

    def exists(self) -> Predicate:
        return _never

    def all(self, values: list[Any], max_regex_length: int) -> Predicate:
        return _never

    def contained_by(self, values: list[Any]) -> Predicate:
        return _always

    def regex(self, re2_pattern: str) -> Predicate:
        return _never


class _ColumnRef(_Ref):
    """A scalar column: String, Number, Boolean, Date, Pointer (the objectId), Bytes."""

    def __init__(self, name: str, spec: FieldSpec) -> None:
        self.name = name
        self.spec = spec

    def _operand(self, value: Any) -> Any:
        return scalar_operand(self.spec, value)

    def _value(self, row: Row) -> Any:
        return row.get(self.name)

    def eq(self, value: Any) -> Predicate:
        operand = self._operand(value)
        if operand is NO_MATCH:
            return _never
        if operand is None:
            return lambda row: self._value(row) is None
        return lambda row: _scalar_equal(self._value(row), operand)

    def ne(self, value: Any) -> Predicate:
        operand = self._operand(value)
        if operand is NO_MATCH:
            return _always
        if operand is None:
            return lambda row: self._value(row) is not None
        return lambda row: not _scalar_equal(self._value(row), operand)

    def compare(self, op: str, value: Any) -> Predicate:
        operand = self._operand(value)
        if operand is NO_MATCH or operand is None:
            return _never
        test = _COMPARE[op]

        def check(row: Row) -> bool:
            current = self._value(row)
            return current is not None and bool(test(current, operand))

        return check

    def in_(self, values: list[Any]) -> Predicate:
        operands = [self._operand(v) for v in values]
        wanted = [o for o in operands if o is not NO_MATCH and o is not None]
        with_none = any(o is None for o in operands)

        def check(row: Row) -> bool:
            current = self._value(row)
            if current is None:
                return with_none
            return any(_scalar_equal(current, w) for w in wanted)

        return check

    def exists(self) -> Predicate:
        return lambda row: self._value(row) is not None

    def regex(self, re2_pattern: str) -> Predicate:
        if self.spec.type != "String":
            return _never
        search = _regex_search(re2_pattern)
        return lambda row: search(self._value(row))


def _scalar_equal(current: Any, operand: Any) -> bool:
    if current is None:
        return False
    if isinstance(operand, bool) or isinstance(current, bool):
        return bool(current) == operand if isinstance(operand, bool) else False
    return bool(current == operand)


class _JsonRef(_Ref):
    """A whole Object/File/GeoPoint/Polygon column: equality and existence only."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _value(self, row: Row) -> Any:
        return row.get(self.name)

    def eq(self, value: Any) -> Predicate:
        if value is None:
            return lambda row: self._value(row) is None
        if isinstance(value, dict) and value.get("__type") == "Polygon":
            value = geo.polygon_operand(value)
        return lambda row: self._value(row) is not None and json_equal(self._value(row), value)

    def ne(self, value: Any) -> Predicate:
        if value is None:
            return lambda row: self._value(row) is not None
        equal = self.eq(value)
        return lambda row: self._value(row) is None or not equal(row)

    def exists(self) -> Predicate:
        return lambda row: self._value(row) is not None


def _element_equal(element: Any, value: Any) -> bool:
    """Does one array element equal a scalar operand ("array contains value")?"""
    if isinstance(value, dict) and value.get("__type") == "Pointer":
        return (
            isinstance(element, dict)
            and element.get("objectId") == str(value.get("objectId"))
            and element.get("className") == str(value.get("className"))
        )
    if isinstance(value, dict) and value.get("__type") == "Date":
        return isinstance(element, dict) and element.get("iso") == str(value.get("iso"))
    return json_equal(element, value)


class _ArrayRef(_JsonRef):
    """An Array column: a scalar operand means "some element equals it", as in Mongo."""

    def _elements(self, row: Row) -> list[Any] | None:
        value = self._value(row)
        return value if isinstance(value, list) else None

    def _any_element(self, value: Any) -> Predicate:
        def check(row: Row) -> bool:
            elements = self._elements(row)
            return elements is not None and any(_element_equal(e, value) for e in elements)

        return check

    def eq(self, value: Any) -> Predicate:
        if value is None or isinstance(value, list):
            return super().eq(value)
        return self._any_element(value)

    def in_(self, values: list[Any]) -> Predicate:
        parts = [self._any_element(v) for v in values if v is not None]
        return lambda row: any(p(row) for p in parts)

    def all(self, values: list[Any], max_regex_length: int) -> Predicate:
        parts: list[Predicate] = []
        for value in values:
            if isinstance(value, dict) and "$regex" in value:
                pattern, _ = regex.normalize(str(value["$regex"]), "", max_regex_length)
                parts.append(self.regex(pattern))
            else:
                parts.append(self._any_element(value))
        return lambda row: self._value(row) is not None and all(p(row) for p in parts)

    def contained_by(self, values: list[Any]) -> Predicate:
        def check(row: Row) -> bool:
            elements = self._elements(row)
            if elements is None:
                return self._value(row) is None
            return all(any(_element_equal(e, v) for v in values) for e in elements)

        return check

    def regex(self, re2_pattern: str) -> Predicate:
        search = _regex_search(re2_pattern)

        def check(row: Row) -> bool:
            elements = self._elements(row)
            return elements is not None and any(search(e) for e in elements)

        return check


_MISSING: Any = object()


class _PathRef(_Ref):
    """``field.a.b`` inside an Object column; compares only values of the operand's JSON type."""

    def __init__(self, name: str, path: list[str]) -> None:
        self.name = name
        self.path = path

    def _at(self, row: Row, extra: tuple[str, ...] = ()) -> Any:
        node = row.get(self.name)
        for part in (*self.path, *extra):
            if not isinstance(node, dict) or part not in node:
                return _MISSING
            node = node[part]
        return node

    def _present(self, row: Row) -> bool:
        found = self._at(row)
        return found is not _MISSING and found is not None

    def _typed(self, value: Any) -> Callable[[Any], Any] | None:
        """A function from the value at the path to something comparable with the operand
        (or ``_MISSING`` when the JSON types differ); None when the operand is not scalar."""
        if isinstance(value, dict) and value.get("__type") == "Pointer":
            return lambda node: (
                node.get("objectId") if isinstance(node, dict) and "objectId" in node else _MISSING
            )
        if isinstance(value, dict) and value.get("__type") == "Date":
            parse_iso(value.get("iso"))  # validate, as the compiler does
            return lambda node: (
                node.get("iso") if isinstance(node, dict) and "iso" in node else _MISSING
            )
        if isinstance(value, bool):
            return lambda node: node if isinstance(node, bool) else _MISSING
        if _is_number(value):
            return lambda node: node if _is_number(node) else _MISSING
        if isinstance(value, str):
            return lambda node: node if isinstance(node, str) else _MISSING
        return None

    @staticmethod
    def _operand(value: Any) -> Any:
        if isinstance(value, dict) and value.get("__type") == "Pointer":
            return str(value.get("objectId"))
        if isinstance(value, dict) and value.get("__type") == "Date":
            return str(value.get("iso"))
        return value

    def eq(self, value: Any) -> Predicate:
        if value is None:
            return lambda row: not self._present(row)
        typed = self._typed(value)
        if typed is None:
            return lambda row: self._present(row) and json_equal(self._at(row), value)
        operand = self._operand(value)

        def check(row: Row) -> bool:
            found = self._at(row)
            if found is _MISSING:
                return False
            comparable = typed(found)
            return comparable is not _MISSING and json_equal(comparable, operand)

        return check

    def ne(self, value: Any) -> Predicate:
        equal = self.eq(value)
        return lambda row: not self._present(row) or not equal(row)

    def compare(self, op: str, value: Any) -> Predicate:
        typed = self._typed(value)
        if typed is None or isinstance(value, bool):
            return _never
        operand = self._operand(value)
        test = _COMPARE[op]

        def check(row: Row) -> bool:
            found = self._at(row)
            if found is _MISSING:
                return False
            comparable = typed(found)
            same_kind = type(comparable) is type(operand) or (
                _is_number(comparable) and _is_number(operand)
            )
            return comparable is not _MISSING and same_kind and bool(test(comparable, operand))

        return check

    def exists(self) -> Predicate:
        return self._present

    def regex(self, re2_pattern: str) -> Predicate:
        search = _regex_search(re2_pattern)
        return lambda row: search(self._at(row))
