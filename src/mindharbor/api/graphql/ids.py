"""Relay global ids and connection cursors, exactly as Parse Server's GraphQL API encodes them.

A global id is ``base64("<ParseClassName>:<objectId>")`` (``R2FtZVNjb3JlOjZtdGlNcmtXNnY=`` is
``GameScore:6mtiMrkW6v``); every argument that takes an id accepts either form, as Parse does.
A cursor is ``base64("arrayconnection:<offset>")``. Both decode without padding too, since
clients copy them from documentation and logs with the ``=`` trimmed.

Cloud code that receives an id from a GraphQL client decodes it with ``from_global_id`` (the
Python counterpart of graphql-relay's ``fromGlobalId`` that Parse's guide tells JS code to use).
"""

from __future__ import annotations

import base64
import binascii

CURSOR_PREFIX = "arrayconnection:"


def _unbase64(value: str) -> str | None:
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
        return raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None


def _base64(value: str) -> str:
    return base64.b64encode(value.encode("utf-8")).decode("ascii")


def to_global_id(class_name: str, object_id: str) -> str:
    """The Relay id of one object: base64 of ``ClassName:objectId``."""
    return _base64(f"{class_name}:{object_id}")


def from_global_id(value: str) -> tuple[str, str] | None:
    """``(class name, objectId)`` of a global id; None when ``value`` is not one."""
    if not isinstance(value, str) or not value:
        return None
    decoded = _unbase64(value)
    if decoded is None or ":" not in decoded:
        return None
    class_name, _, object_id = decoded.partition(":")
    if not class_name or not object_id:
        return None
    return class_name, object_id


def object_id_of(value: str, class_name: str) -> str:
    """The objectId ``value`` names in ``class_name``: a global id of that class is decoded,
    anything else is taken as an objectId already (as Parse: "either the global or the object
    id")."""
    decoded = from_global_id(value)
    if decoded is not None and decoded[0] == class_name:
        return decoded[1]
    return value


def offset_to_cursor(offset: int) -> str:
    return _base64(f"{CURSOR_PREFIX}{offset}")


def cursor_to_offset(cursor: str) -> int | None:
    """The offset a cursor stands for; None for anything that is not a cursor."""
    decoded = _unbase64(cursor) if isinstance(cursor, str) else None
    if decoded is None or not decoded.startswith(CURSOR_PREFIX):
        return None
    digits = decoded[len(CURSOR_PREFIX) :]
    if not digits.isdigit() or len(digits) > 12:
        return None
    return int(digits)
