"""Query-string and body parameters → typed query options, with Parse's validation errors."""

from __future__ import annotations

from typing import Any

import orjson

from mindharbor.errors import InvalidJSON, InvalidQuery
from mindharbor.settings import Settings
from mindharbor.storage.repository import FindQuery

FIND_PARAMS = frozenset(
    {
        "where",
        "order",
        "limit",
        "skip",
        "keys",
        "excludeKeys",
        "include",
        "includeAll",
        "count",
        "redirectClassNameForKey",
        "readPreference",
        "includeReadPreference",
        "subqueryReadPreference",
        "hint",
        "comment",
        "explain",
    }
)
GET_PARAMS = frozenset(
    {"keys", "include", "excludeKeys", "readPreference", "includeReadPreference"}
)


def _json_param(name: str, value: Any) -> Any:
    if isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise InvalidJSON(f"Invalid JSON in parameter {name}.") from exc
    return value


def _int_param(name: str, value: Any, *, maximum: int) -> int:
    if isinstance(value, str):
        value = value.strip()
        try:
            value = int(value) if value.lstrip("-").isdigit() else float(value)
        except ValueError as exc:
            raise InvalidQuery(f"{name} must be a non-negative integer.") from exc
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidQuery(f"{name} must be a non-negative integer.")
    if isinstance(value, float):
        if not value.is_integer():
            raise InvalidQuery(f"{name} must be a non-negative integer.")
        value = int(value)
    if value < 0:
        raise InvalidQuery(f"{name} must be a non-negative integer.")
    if value > maximum:
        raise InvalidQuery(f"{name} must be at most {maximum}.")
    return int(value)


def _list_param(name: str, value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    raise InvalidQuery(f"{name} must be a comma-separated string.")


def find_query(params: dict[str, Any], settings: Settings) -> FindQuery:
    for key in params:
        if key not in FIND_PARAMS:
            raise InvalidQuery(f"Invalid parameter for query: {key}")
    where = _json_param("where", params.get("where")) or {}
    if not isinstance(where, dict):
        raise InvalidQuery("where must be a JSON object.")
    limit = settings.default_limit
    if params.get("limit") is not None:
        # Parse's maxLimit clamps silently; a negative or non-integer limit is an error.
        limit = min(_int_param("limit", params["limit"], maximum=2**31), settings.max_limit)
    skip = 0
    if params.get("skip") is not None:
        skip = _int_param("skip", params["skip"], maximum=settings.max_skip)
    count = params.get("count") in (1, "1", True, "true")
    include = _list_param("include", params.get("include")) or []
    if params.get("includeAll") in (True, "true", 1, "1"):
        include = ["*"]
    order = params.get("order")
    if isinstance(order, list):
        order = ",".join(str(o) for o in order)
    if order is not None and not isinstance(order, str):
        raise InvalidQuery("order must be a comma-separated string.")
    return FindQuery(
        where=where,
        order=order,
        limit=limit,
        skip=skip,
        keys=_list_param("keys", params.get("keys")),
        exclude_keys=_list_param("excludeKeys", params.get("excludeKeys")),
        include=include,
        count=count,
    )


def get_options(params: dict[str, Any]) -> dict[str, list[str] | None]:
    for key in params:
        if key not in GET_PARAMS:
            raise InvalidQuery("Improper encode of parameter")
    return {
        "keys": _list_param("keys", params.get("keys")),
        "include": _list_param("include", params.get("include")),
        "exclude_keys": _list_param("excludeKeys", params.get("excludeKeys")),
    }
