"""The scalars of Parse Server's GraphQL schema (``Any``, ``Object``, ``Date``, ``Bytes``,
``File``) and MindHarbor's older ``JSON`` (kept for the deprecated ``find<Class>`` aliases).

Values leave the repository in Parse's wire encoding; these scalars unwrap it on the way out
(a Date's ``iso``, Bytes' ``base64``) and wrap client input back into it on the way in
(``"2026-01-05T10:00:00.000Z"`` → ``{"__type": "Date", "iso": ...}``), so a resolver hands the
repository exactly what a REST client would have sent.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    GraphQLError,
    GraphQLScalarType,
    ObjectValueNode,
    StringValueNode,
    ValueNode,
)
from graphql.utilities import value_from_ast_untyped


def _untyped(node: ValueNode, variables: dict[str, Any] | None = None) -> Any:
    return value_from_ast_untyped(node, variables)


def _same(value: Any) -> Any:
    return value


AnyScalar = GraphQLScalarType(
    name="Any",
    description="The Any scalar type is used in operations and types that involve any type of "
    "value.",
    serialize=_same,
    parse_value=_same,
    parse_literal=_untyped,
)


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise GraphQLError(f"{value!r} is not a valid Object")
    return value


def _object_literal(node: ValueNode, variables: dict[str, Any] | None = None) -> Any:
    if not isinstance(node, ObjectValueNode):
        raise GraphQLError("Object must be an object literal.", node)
    return value_from_ast_untyped(node, variables)


ObjectScalar = GraphQLScalarType(
    name="Object",
    description="The Object scalar type is used in operations and types that involve objects.",
    serialize=_object,
    parse_value=_object,
    parse_literal=_object_literal,
)

JSONScalar = GraphQLScalarType(
    name="JSON",
    description="Any JSON value (a Parse `where` object, an ACL, an Object or Array field).",
    serialize=_same,
    parse_value=_same,
    parse_literal=_untyped,
)


# -- Date ---------------------------------------------------------------------------------------
def _serialize_date(value: Any) -> str:
    if isinstance(value, dict) and value.get("__type") == "Date":
        value = value.get("iso")
    if isinstance(value, str):
        return value
    raise GraphQLError(f"{value!r} is not a valid Date")


def _parse_date(value: Any) -> dict[str, Any]:
    if isinstance(value, dict) and value.get("__type") == "Date":
        value = value.get("iso")
    if not isinstance(value, str) or not value:
        raise GraphQLError(f"{value!r} is not a valid Date")
    return {"__type": "Date", "iso": value}


def _parse_date_literal(node: ValueNode, variables: dict[str, Any] | None = None) -> Any:
    if isinstance(node, StringValueNode):
        return _parse_date(node.value)
    if isinstance(node, ObjectValueNode):
        return _parse_date(value_from_ast_untyped(node, variables))
    raise GraphQLError("Date must be an ISO 8601 string.", node)


DateScalar = GraphQLScalarType(
    name="Date",
    description="The Date scalar type is used in operations and types that involve dates.",
    serialize=_serialize_date,
    parse_value=_parse_date,
    parse_literal=_parse_date_literal,
)


# -- Bytes --------------------------------------------------------------------------------------
def _serialize_bytes(value: Any) -> str:
    if isinstance(value, dict) and value.get("__type") == "Bytes":
        value = value.get("base64")
    if isinstance(value, str):
        return value
    raise GraphQLError(f"{value!r} is not a valid Bytes")


def _parse_bytes(value: Any) -> dict[str, Any]:
    if isinstance(value, dict) and value.get("__type") == "Bytes":
        value = value.get("base64")
    if not isinstance(value, str):
        raise GraphQLError(f"{value!r} is not a valid Bytes")
    return {"__type": "Bytes", "base64": value}


def _parse_bytes_literal(node: ValueNode, variables: dict[str, Any] | None = None) -> Any:
    return _parse_bytes(value_from_ast_untyped(node, variables))


BytesScalar = GraphQLScalarType(
    name="Bytes",
    description="The Bytes scalar type is used in operations and types that involve base 64 "
    "binary data.",
    serialize=_serialize_bytes,
    parse_value=_parse_bytes,
    parse_literal=_parse_bytes_literal,
)


# -- File ---------------------------------------------------------------------------------------
def _serialize_file(value: Any) -> str:
    if isinstance(value, dict) and value.get("__type") == "File":
        value = value.get("name")
    if isinstance(value, str):
        return value
    raise GraphQLError(f"{value!r} is not a valid File")


def _parse_file(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {"__type": "File", "name": value}
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        out = {"__type": "File", "name": value["name"]}
        if isinstance(value.get("url"), str):
            out["url"] = value["url"]
        return out
    raise GraphQLError(f"{value!r} is not a valid File")


def _parse_file_literal(node: ValueNode, variables: dict[str, Any] | None = None) -> Any:
    return _parse_file(value_from_ast_untyped(node, variables))


FileScalar = GraphQLScalarType(
    name="File",
    description="The File scalar type is used in operations and types that involve files.",
    serialize=_serialize_file,
    parse_value=_parse_file,
    parse_literal=_parse_file_literal,
)
