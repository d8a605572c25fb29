"""``<Class>WhereInput`` values → the Parse ``where`` JSON REST takes, as Parse Server maps them.

``{score: {greaterThan: 158}}`` → ``{"score": {"$gt": 158}}``; ``OR``/``AND``/``NOR`` →
``$or``/``$and``/``$nor``; ``id``/``objectId`` take global or plain ids; a Pointer or Relation
field's ``have``/``haveNot`` become ``$inQuery``/``$notInQuery`` on the target class (so
``houses(where: {street: {have: {city: {have: ...}}}})`` is one SQL statement with nested
sub-queries); an Object field's ``{key, value}`` pairs become dot paths. The result goes through
the same compiler, access filter and validation as a REST ``where``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mindharbor.api.graphql.ids import object_id_of
from mindharbor.errors import InvalidQuery
from mindharbor.storage.schema import ClassSchema, FieldSpec

SchemaLookup = Callable[[str], ClassSchema | None]

COMPOUND = {"OR": "$or", "AND": "$and", "NOR": "$nor"}
OPERATORS = {
    "equalTo": "$eq",
    "notEqualTo": "$ne",
    "lessThan": "$lt",
    "lessThanOrEqualTo": "$lte",
    "greaterThan": "$gt",
    "greaterThanOrEqualTo": "$gte",
    "in": "$in",
    "notIn": "$nin",
    "exists": "$exists",
    "inQueryKey": "$select",
    "notInQueryKey": "$dontSelect",
    "containedBy": "$containedBy",
    "contains": "$all",
    "matchesRegex": "$regex",
    "options": "$options",
    "text": "$text",
    "nearSphere": "$nearSphere",
    "maxDistance": "$maxDistance",
    "maxDistanceInRadians": "$maxDistanceInRadians",
    "maxDistanceInMiles": "$maxDistanceInMiles",
    "maxDistanceInKilometers": "$maxDistanceInKilometers",
    "within": "$within",
    "geoWithin": "$geoWithin",
    "geoIntersects": "$geoIntersects",
}
KEY_VALUE_OPS = frozenset(
    {"equalTo", "notEqualTo", "lessThan", "lessThanOrEqualTo", "greaterThan", "in", "notIn"}
    | {"greaterThanOrEqualTo"}
)


def _geo(point: dict[str, Any]) -> dict[str, Any]:
    return {"__type": "GeoPoint", "latitude": point["latitude"], "longitude": point["longitude"]}


def _operand(op: str, value: Any) -> Any:
    """Parse's shapes for the few operators whose GraphQL input is structured differently."""
    if op == "nearSphere":
        return _geo(value)
    if op == "within":
        return {"$box": [_geo(value["box"]["bottomLeft"]), _geo(value["box"]["upperRight"])]}
    if op == "geoWithin":
        if value.get("polygon") is not None:
            return {"$polygon": [_geo(p) for p in value["polygon"]]}
        if value.get("centerSphere") is not None:
            sphere = value["centerSphere"]
            return {"$centerSphere": [_geo(sphere["center"]), sphere["distance"]]}
        return {}
    if op == "geoIntersects":
        return {"$point": _geo(value["point"])} if value.get("point") else {}
    if op == "text":
        search = value["search"]
        out = {"$term": search["term"]}
        for key in ("language", "caseSensitive", "diacriticSensitive"):
            if search.get(key) is not None:
                out[f"${key}"] = search[key]
        return {"$search": out}
    return value


def to_parse_where(where: dict[str, Any] | None, class_name: str, lookup: SchemaLookup) -> dict:
    """The Parse ``where`` for a ``<Class>WhereInput`` value (already coerced by GraphQL)."""
    out: dict[str, Any] = {}
    schema = lookup(class_name)
    for key, value in (where or {}).items():
        if value is None:
            continue
        if key in COMPOUND:
            out[COMPOUND[key]] = [to_parse_where(item, class_name, lookup) for item in value]
        elif key in ("id", "objectId"):
            _merge(out, "objectId", _id_constraints(value, class_name))
        else:
            spec = schema.field(key) if schema is not None else None
            if spec is not None and spec.type in ("Pointer", "Relation"):
                _merge(out, key, _pointer_constraints(value, spec, lookup))
            elif spec is not None and spec.type == "Object":
                for path, constraint in _object_constraints(key, value).items():
                    _merge(out, path, constraint)
            else:
                _merge(out, key, _constraints(value))
    return out


def _merge(out: dict[str, Any], key: str, constraint: dict[str, Any]) -> None:
    if constraint:
        out[key] = {**out.get(key, {}), **constraint}


def _constraints(value: dict[str, Any]) -> dict[str, Any]:
    return {
        OPERATORS[op]: _operand(op, arg)
        for op, arg in value.items()
        if arg is not None and op in OPERATORS
    }


def _id_constraints(value: dict[str, Any], class_name: str) -> dict[str, Any]:
    out = _constraints(value)
    for op, arg in out.items():
        if isinstance(arg, str):
            out[op] = object_id_of(arg, class_name)
        elif isinstance(arg, list):
            out[op] = [object_id_of(v, class_name) if isinstance(v, str) else v for v in arg]
    return out


def _object_constraints(field: str, value: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{meta: {greaterThan: {key: "a.b", value: 1}}}`` → ``{"meta.a.b": {"$gt": 1}}``."""
    out: dict[str, dict[str, Any]] = {}
    for op, arg in value.items():
        if arg is None:
            continue
        if op in KEY_VALUE_OPS:
            pairs = arg if isinstance(arg, list) else [arg]
            for pair in pairs:
                path = f"{field}.{pair['key']}"
                out.setdefault(path, {})[OPERATORS[op]] = pair["value"]
        elif op in OPERATORS:
            out.setdefault(field, {})[OPERATORS[op]] = arg
    return out


def _pointer_constraints(
    value: dict[str, Any], spec: FieldSpec, lookup: SchemaLookup
) -> dict[str, Any]:
    kind, target = spec.type, str(spec.target_class)
    out: dict[str, Any] = {}
    for op, arg in value.items():
        if arg is None:
            continue
        if op in ("have", "haveNot"):
            key = "$inQuery" if op == "have" else "$notInQuery"
            out[key] = {"className": target, "where": to_parse_where(arg, target, lookup)}
        elif op == "exists":
            if kind == "Pointer":
                out["$exists"] = arg
            else:  # a Relation "exists" when it holds at least one object
                key = "$inQuery" if arg else "$notInQuery"
                if key in out:
                    raise InvalidQuery("exists cannot be combined with have/haveNot here.")
                out[key] = {"className": target, "where": {"objectId": {"$exists": True}}}
    return out
