"""Server-owned fields a client sends anyway: a consistent value is accepted, anything else 119.

Parse apps (and clients built from MindHarbor's template) often send the whole object they
hold, including fields the server decides: a Message's ``from`` (the sender, that is the
caller) and ``sentAt`` (the client's clock), an assessment's ``status: "draft"``. Refusing a
value the server would have written itself breaks those apps for no safety gain; accepting a
different one would let a client forge what the server vouches for. So, for a caller without the
master key, a server-owned field (``server`` in the schema) in the body is:

* dropped when it equals what the server sets in the same write (``server_values``, decided by
  the hooks), so the server's value is stored;
* dropped when it is a valid Date and the server stamps that field in the same write: a
  timestamp the server owns is the server's clock, never the client's (``sentAt``);
* dropped on an update when it equals the stored value (it changes nothing);
* otherwise left in the body, where ``prepare_write`` refuses it with 119 as before.

``_User`` and ``_Session`` keep Parse's rule, any value refused: Parse Server refuses a client's
``emailVerified`` whatever its value ("Clients aren't allowed to manually update email
verification."), and session fields are the server's alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mindharbor.errors import ParseError
from mindharbor.storage.codec import to_column
from mindharbor.storage.schema import ClassSchema, FieldSpec

_MISSING: Any = object()
# Classes where Parse refuses a server-owned field whatever its value.
STRICT_CLASSES = frozenset({"_User", "_Session"})


def _column(spec: FieldSpec, value: Any, class_name: str) -> Any:
    """The stored form of a plain value, or ``_MISSING`` if it is not a valid one."""
    if isinstance(value, dict) and "__op" in value:
        return _MISSING
    try:
        return to_column(spec, value, class_name)
    except ParseError:
        return _MISSING


def _server_specs(schema: ClassSchema, body: dict[str, Any]) -> list[FieldSpec]:
    if schema.name in STRICT_CLASSES:
        return []
    specs = (schema.field(key) for key in body if "." not in key)
    return [spec for spec in specs if spec is not None and spec.server]


def same_as_stored(
    schema: ClassSchema, body: dict[str, Any], existing: dict[str, Any], names: Iterable[str]
) -> frozenset[str]:
    """Which of ``names`` the body sets to exactly their stored value (a change of nothing)."""
    same = set()
    for name in names:
        spec = schema.field(name)
        if spec is None or name not in body:
            continue
        value = _column(spec, body[name], schema.name)
        if value is not _MISSING and value == existing.get(name):
            same.add(name)
    return frozenset(same)


def drop_unchanged(
    schema: ClassSchema, body: dict[str, Any], existing: dict[str, Any], *, trusted: bool
) -> dict[str, Any]:
    """``body`` without the server-owned fields it sets to their stored value (an update)."""
    if trusted:
        return body
    names = [spec.name for spec in _server_specs(schema, body)]
    same = same_as_stored(schema, body, existing, names)
    return {key: value for key, value in body.items() if key not in same} if same else body


def accept_consistent(
    schema: ClassSchema,
    body: dict[str, Any],
    server_values: dict[str, Any],
    *,
    trusted: bool,
) -> None:
    """Drop from ``body`` the server-owned fields the server sets to the same value (or, for a
    Date, stamps with its own clock) in this write."""
    if trusted or not server_values:
        return
    for spec in _server_specs(schema, body):
        if spec.name not in server_values:
            continue
        sent = _column(spec, body[spec.name], schema.name)
        if sent is _MISSING:
            continue
        if spec.type == "Date" or sent == _column(spec, server_values[spec.name], schema.name):
            del body[spec.name]
