"""The custom scalars: ``JSON`` (Parse's where/ACL/Object values) and ``DateTime``.

``JSON`` passes Parse's typed JSON through untouched so a ``where`` written for REST works here
verbatim. ``DateTime`` is an ISO 8601 string on the wire; Parse's ``{"__type": "Date"}`` objects
are unwrapped on the way out, and the repository validates what comes in.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError, GraphQLScalarType, StringValueNode, ValueNode
from graphql.utilities import value_from_ast_untyped


def _json_literal(node: ValueNode, variables: dict[str, Any] | None = None) -> Any:
    return value_from_ast_untyped(node, variables)


JSONScalar = GraphQLScalarType(
    name="JSON",
    description="Any JSON value (a Parse `where` object, an ACL, an Object or Array field).",
    serialize=lambda value: value,
    parse_value=lambda value: value,
    parse_literal=_json_literal,
)


def _serialize_date(value: Any) -> str:
    if isinstance(value, dict) and value.get("__type") == "Date":
        return str(value.get("iso"))
    if isinstance(value, str):
        return value
    raise GraphQLError(f"DateTime cannot represent {value!r}")


def _parse_date(value: Any) -> str:
    if not isinstance(value, str):
        raise GraphQLError("DateTime must be an ISO 8601 string.")
    return value


def _parse_date_literal(node: ValueNode, _variables: dict[str, Any] | None = None) -> str:
    if not isinstance(node, StringValueNode):
        raise GraphQLError("DateTime must be an ISO 8601 string.", node)
    return node.value


DateTimeScalar = GraphQLScalarType(
    name="DateTime",
    description="An ISO 8601 instant in UTC, e.g. 2026-01-05T10:00:00.000Z.",
    serialize=_serialize_date,
    parse_value=_parse_date,
    parse_literal=_parse_date_literal,
)
