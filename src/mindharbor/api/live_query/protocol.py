"""The Parse LiveQuery wire protocol: validating client requests and building server messages.

Requests are checked the way Parse Server's JSON schema (``RequestSchema.js``) checks them, with
the same error texts, because the SDKs react to some of them: the JS SDK stops sending
``installationId`` after an ``Additional properties not allowed`` error. Codes:

    1    the request failed validation (shape, types, unknown op)
    2    no such client or subscription (e.g. subscribe before connect)
    3    unknown operation (kept for completeness: validation already rejects unknown ops)
    4    the application id or a key in the request is not valid
    101+ a Parse error from the query or the access rules (102, 105, 111, 119, 209, ...)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

BAD_REQUEST = 1
NO_SUBSCRIPTION = 2
UNKNOWN_OP = 3
INVALID_KEYS = 4
# Not part of Parse's protocol: the server ends a connection whose client cannot keep up.
TOO_SLOW = 100

OPS = ("connect", "subscribe", "update", "unsubscribe")
_CONNECT_KEYS = frozenset(
    {
        "op",
        "applicationId",
        "javascriptKey",
        "masterKey",
        "clientKey",
        "windowsKey",
        "restAPIKey",
        "sessionToken",
        "installationId",
    }
)
_SUBSCRIBE_KEYS = frozenset({"op", "requestId", "query", "sessionToken"})
_QUERY_KEYS = frozenset({"className", "where", "keys", "watch", "include"})
MAX_MESSAGE_CHARS = 1_000_000


class ProtocolError(Exception):
    """A request the server answers with ``{"op": "error", ...}``."""

    def __init__(
        self, code: int, message: str, *, reconnect: bool = True, request_id: Any = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reconnect = reconnect
        self.request_id = request_id


@dataclass(frozen=True)
class Connect:
    application_id: str
    master_key: str | None = None
    client_keys: tuple[str, ...] = ()
    session_token: str | None = None
    installation_id: str | None = None


@dataclass(frozen=True)
class Subscribe:
    """``subscribe`` and ``update`` (which replaces the query of an existing request id)."""

    request_id: int | float
    class_name: str
    where: dict[str, Any]
    keys: tuple[str, ...] | None = None
    watch: tuple[str, ...] | None = None
    session_token: str | None = None
    is_update: bool = False
    include: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Unsubscribe:
    request_id: int | float


Request = Connect | Subscribe | Unsubscribe


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _expect(value: Any, kind: str) -> None:
    if _type_name(value) != kind:
        raise ProtocolError(BAD_REQUEST, f"Invalid type: {_type_name(value)} (expected {kind})")


def _only(data: dict[str, Any], allowed: frozenset[str], required: tuple[str, ...]) -> None:
    for key in required:
        if key not in data:
            raise ProtocolError(BAD_REQUEST, f"Missing required property: {key}")
    if set(data) - allowed:
        raise ProtocolError(BAD_REQUEST, "Additional properties not allowed")


def _optional_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None:
        _expect(value, "string")
    return value


def _string_set(value: Any) -> tuple[str, ...] | None:
    """``keys``/``watch``/``include``: a non-empty array of distinct strings, or absent."""
    if value is None:
        return None
    _expect(value, "array")
    if not value:
        raise ProtocolError(BAD_REQUEST, "Array is too short (0), minimum 1")
    for item in value:
        _expect(item, "string")
    if len(set(value)) != len(value):
        raise ProtocolError(BAD_REQUEST, "Array items are not unique")
    return tuple(value)


def parse(text: str | bytes) -> Request:
    """One client frame → a validated request, or ``ProtocolError``."""
    if len(text) > MAX_MESSAGE_CHARS:
        raise ProtocolError(BAD_REQUEST, "Message is too large", reconnect=False)
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        # Parse Server drops such frames silently; an answer is kinder and leaks nothing.
        raise ProtocolError(BAD_REQUEST, "Invalid JSON", reconnect=False) from exc
    if not isinstance(data, dict):
        raise ProtocolError(BAD_REQUEST, f"Invalid type: {_type_name(data)} (expected object)")
    if "op" not in data:
        raise ProtocolError(BAD_REQUEST, "Missing required property: op")
    op = data["op"]
    if op not in OPS:
        raise ProtocolError(BAD_REQUEST, f"No enum match for: {orjson.dumps(op).decode()}")
    if op == "connect":
        _only(data, _CONNECT_KEYS, ("op", "applicationId"))
        _expect(data["applicationId"], "string")
        keys = [_optional_str(data, k) for k in ("javascriptKey", "clientKey", "restAPIKey")]
        keys.append(_optional_str(data, "windowsKey"))
        return Connect(
            application_id=data["applicationId"],
            master_key=_optional_str(data, "masterKey"),
            client_keys=tuple(k for k in keys if k is not None),
            session_token=_optional_str(data, "sessionToken"),
            installation_id=_optional_str(data, "installationId"),
        )
    if op == "unsubscribe":
        _only(data, frozenset({"op", "requestId"}), ("op", "requestId"))
        _expect(data["requestId"], "number")
        return Unsubscribe(data["requestId"])
    _only(data, _SUBSCRIBE_KEYS, ("op", "requestId", "query"))
    _expect(data["requestId"], "number")
    query = data["query"]
    _expect(query, "object")
    _only(query, _QUERY_KEYS, ("where", "className"))
    _expect(query["className"], "string")
    _expect(query["where"], "object")
    return Subscribe(
        request_id=data["requestId"],
        class_name=query["className"],
        where=query["where"],
        keys=_string_set(query.get("keys")),
        watch=_string_set(query.get("watch")),
        session_token=_optional_str(data, "sessionToken"),
        is_update=op == "update",
        include=_string_set(query.get("include")) or (),
    )


# -- server → client ----------------------------------------------------------------------------
def message(op: str, client_id: str, installation_id: str | None, **extra: Any) -> bytes:
    """A server message; every one carries ``clientId`` and ``installationId`` (Parse does)."""
    body: dict[str, Any] = {"op": op, "clientId": client_id, "installationId": installation_id}
    body.update(extra)
    return orjson.dumps(body)


def error(code: int, text: str, *, reconnect: bool = True, request_id: Any = None) -> bytes:
    body = {"op": "error", "code": code, "error": text, "reconnect": reconnect}
    return orjson.dumps({**body, "requestId": request_id})
