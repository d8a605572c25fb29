"""Parse's typed JSON ⇄ column values, per field type.

Incoming values are validated against the field's declared type (111 on mismatch) and turned
into what the column stores; outgoing rows are turned back into the wire encoding every face
(REST, GraphQL, LiveQuery) shares. Structured values inside Object and Array fields are stored in
their Parse JSON form, so they round-trip unchanged.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import secrets
import string
from datetime import UTC, datetime
from typing import Any

from mindharbor.errors import IncorrectType, InvalidJSON, InvalidPointer, InvalidQuery
from mindharbor.storage import geo
from mindharbor.storage.schema import FieldSpec

_ID_ALPHABET = string.ascii_letters + string.digits
MAX_NUMBER = 2.0**63


OBJECT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def is_object_id(value: object) -> bool:
    return isinstance(value, str) and OBJECT_ID_RE.match(value) is not None


def new_object_id() -> str:
    """Ten random alphanumerics, as Parse generates them (about 59 bits of entropy)."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))


def utcnow() -> datetime:
    """Now, naive UTC, truncated to the millisecond Parse's encoding carries."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def parse_iso(value: Any) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise IncorrectType("Invalid date.")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise IncorrectType(f"Invalid date: {value!r}") from exc
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


def iso(value: datetime) -> str:
    if value.tzinfo is None and value.year >= 1000:  # the stored kind: isoformat is faster
        return value.isoformat(timespec="milliseconds") + "Z"
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def type_of(value: Any) -> str | None:
    """The Parse type a plain JSON value implies, for schema-on-write (None: no field)."""
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int | float):
        return "Number"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, dict):
        kind = value.get("__type")
        if kind in ("Date", "Pointer", "File", "GeoPoint", "Polygon", "Bytes", "Relation"):
            return str(kind)
        op = value.get("__op")
        if op == "Increment":
            return "Number"
        if op in ("Add", "AddUnique", "Remove"):
            return "Array"
        if op in ("AddRelation", "RemoveRelation", "Batch"):
            return "Relation"
        if op == "Delete":
            return None
        return "Object"
    return None


def pointer_target(value: Any) -> str | None:
    if isinstance(value, dict):
        if value.get("__type") == "Pointer":
            return value.get("className")
        if value.get("__op") in ("AddRelation", "RemoveRelation"):
            objs = value.get("objects") or [{}]
            return objs[0].get("className") if isinstance(objs[0], dict) else None
        if value.get("__op") == "Batch":
            ops = value.get("ops") or [{}]
            return pointer_target(ops[0])
        if value.get("__type") == "Relation":
            return value.get("className")
    return None


def check_number(value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IncorrectType("expected a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise IncorrectType("numbers must be finite")
    if abs(value) > MAX_NUMBER:
        raise IncorrectType("number out of range")
    return value


def pointer_id(value: Any, target: str | None) -> str:
    """The objectId of a Pointer value, checking its class against the field's target."""
    if not isinstance(value, dict) or value.get("__type") != "Pointer":
        raise IncorrectType(f"expected a Pointer<{target}>")
    object_id = value.get("objectId")
    if not isinstance(object_id, str) or not object_id or len(object_id) > 32:
        raise InvalidPointer("Pointer objectId must be a non-empty string.")
    if target is not None and value.get("className") != target:
        raise IncorrectType(
            f"expected a Pointer<{target}> but got Pointer<{value.get('className')}>"
        )
    return object_id


def check_json_value(value: Any, depth: int = 0) -> Any:
    """Validate a value stored inside an Object/Array: no ``$`` or ``__`` keys, bounded depth."""
    if depth > 32:
        raise InvalidJSON("Object nesting is too deep.")
    if isinstance(value, dict):
        kind = value.get("__type")
        for key, item in value.items():
            if not isinstance(key, str) or key.startswith("$") or "." in key or "\x00" in key:
                raise InvalidJSON(f"Invalid key name in object: {key!r}")
            if key.startswith("__") and not (key == "__type" and kind):
                raise InvalidJSON(f"Invalid key name in object: {key!r}")
            check_json_value(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_json_value(item, depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise IncorrectType("numbers must be finite")
    elif isinstance(value, str):
        check_text(value)
    return value


def check_text(value: str) -> str:
    """PostgreSQL text cannot hold NUL; refuse it on both backends so they behave alike."""
    if "\x00" in value:
        raise InvalidJSON("Strings may not contain NUL characters.")
    return value


def to_column(spec: FieldSpec, value: Any, class_name: str) -> Any:
    """Validate a plain (non-operator) value for a field and return what the column stores."""
    if value is None:
        return None
    mismatch = IncorrectType(
        f"schema mismatch for {class_name}.{spec.name}; expected {spec.type} but got "
        f"{type_of(value) or type(value).__name__}"
    )
    match spec.type:
        case "String":
            if not isinstance(value, str):
                raise mismatch
            check_text(value)
            if spec.enum and value not in spec.enum:
                raise IncorrectType(f"{spec.name} must be one of {', '.join(spec.enum)}")
            return value
        case "Number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise mismatch
            return check_number(value)
        case "Boolean":
            if not isinstance(value, bool):
                raise mismatch
            return value
        case "Date":
            if isinstance(value, dict) and value.get("__type") == "Date":
                return parse_iso(value.get("iso"))
            raise mismatch
        case "Pointer":
            if not (isinstance(value, dict) and value.get("__type") == "Pointer"):
                raise mismatch
            return pointer_id(value, spec.target_class)
        case "Bytes":
            if not (isinstance(value, dict) and value.get("__type") == "Bytes"):
                raise mismatch
            data = value.get("base64")
            try:
                base64.b64decode(data or "", validate=True)
            except (binascii.Error, TypeError) as exc:
                raise IncorrectType("Bytes must be base64") from exc
            return data
        case "Array":
            if not isinstance(value, list):
                raise mismatch
            return check_json_value(value)
        case "Object":
            if not isinstance(value, dict) or "__type" in value:
                raise mismatch
            return check_json_value(value)
        case "File":
            if not (isinstance(value, dict) and value.get("__type") == "File"):
                raise mismatch
            name = value.get("name")
            if not isinstance(name, str) or not name or len(name) > 256:
                raise IncorrectType("File needs a name")
            return {"__type": "File", "name": name}
        case "GeoPoint":
            if not (isinstance(value, dict) and value.get("__type") == "GeoPoint"):
                raise mismatch
            return geo.check_geopoint(value)
        case "Polygon":
            if not (isinstance(value, dict) and value.get("__type") == "Polygon"):
                raise mismatch
            return geo.check_polygon(value)
    raise mismatch


def from_column(spec: FieldSpec, value: Any, server_url: str = "") -> Any:
    """The wire encoding of a stored column value."""
    if value is None:
        return None
    match spec.type:
        case "Number":
            return (
                int(value)
                if isinstance(value, float) and value.is_integer() and abs(value) < 2**53
                else value
            )
        case "Date":
            return {"__type": "Date", "iso": iso(value)}
        case "Pointer":
            return {"__type": "Pointer", "className": spec.target_class, "objectId": value}
        case "Bytes":
            return {"__type": "Bytes", "base64": value}
        case "File":
            return {
                "__type": "File",
                "name": value["name"],
                "url": f"{server_url}/files/{value['name']}",
            }
    return value


def query_value(spec: FieldSpec | None, value: Any) -> Any:
    """A comparison operand in a ``where``: decode Dates and Pointers, pass scalars through."""
    if isinstance(value, dict):
        kind = value.get("__type")
        if kind == "Date":
            return parse_iso(value.get("iso"))
        if kind == "Pointer":
            target = spec.target_class if spec is not None and spec.type == "Pointer" else None
            try:
                return pointer_id(value, target)
            except IncorrectType:
                return _NO_MATCH
        if "$relativeTime" in value:
            raise InvalidQuery("$relativeTime is only supported with $lt/$lte/$gt/$gte on dates")
    if isinstance(value, str) and "\x00" in value:
        raise InvalidQuery("Strings may not contain NUL characters.")
    return value


class _NoMatch:
    """Sentinel for an operand that can match nothing (a pointer to another class)."""

    __slots__ = ()


_NO_MATCH = _NoMatch()
NO_MATCH: Any = _NO_MATCH


# Which Python operand types a column of each Parse type can be compared with: a comparison
# between different types matches nothing (Mongo's semantics), in SQL and in the LiveQuery
# matcher alike.
SCALAR_KINDS: dict[str, tuple[type, ...]] = {
    "String": (str,),
    "Pointer": (str,),
    "Bytes": (str,),
    "Number": (int, float),
    "Boolean": (bool,),
    "Date": (datetime,),
}


def scalar_operand(spec: FieldSpec, value: Any) -> Any:
    """A ``where`` operand for a scalar field (``spec.type`` in ``SCALAR_KINDS``): the value to
    compare with, None for ``null``, or NO_MATCH when its type cannot be compared."""
    if spec.type == "Pointer" and isinstance(value, str):
        return NO_MATCH  # Parse requires a Pointer, not a bare id
    decoded = query_value(spec, value)
    if decoded is NO_MATCH or decoded is None:
        return decoded
    kinds = SCALAR_KINDS[spec.type]
    if not isinstance(decoded, kinds) or (bool not in kinds and isinstance(decoded, bool)):
        return NO_MATCH
    return decoded
