"""Rows encoded by PostgreSQL: each row of a find as its Parse wire JSON text.

For a plain REST find (no ``include``, no ``keys``), turning rows into Python dicts, formatting
their dates and serialising them again costs more than the query. So PostgreSQL writes each
row's JSON itself, exactly as ``storage/encoder.py`` would (same keys, a missing value omitted,
Pointers, Dates, Relations and Bytes in Parse's encoding, the ACL, the caller's protected fields
left out), and the response embeds the text as it is (``orjson.Fragment``).

A class qualifies when every field is of a kind this module writes (``ENCODED_KINDS``) and it
has no ``File`` field; ``_User`` never does (a user's own row shows its protected fields). A row
whose Array or Object values hold a file reference still goes through the Python encoder, which
signs its URLs (``needs_python``): the check is a substring test on the text.
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa

from mindharbor.storage.schema import ClassSchema

# GeoPoint and Polygon columns hold their wire JSON already (storage/geo.py), as Object does.
_AS_STORED = frozenset({"Object", "Array", "GeoPoint", "Polygon"})
ENCODED_KINDS = frozenset(
    {"String", "Number", "Boolean", "Date", "Pointer", "Relation", "Bytes", *_AS_STORED}
)
_ISO = 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'
_FILE_MARKERS = ('"__type": "File"', '"__type":"File"')
_CHUNK = 90  # concat_ws takes at most 100 arguments


def eligible(schema: ClassSchema) -> bool:
    return schema.name != "_User" and all(
        spec.type in ENCODED_KINDS for spec in schema.fields.values()
    )


def _text(value: str) -> Any:
    return sa.literal(value, sa.Text)


def _json(column: Any) -> Any:
    return sa.cast(sa.func.to_json(column), sa.Text)


def _iso(column: Any) -> Any:
    return sa.func.to_char(column, _ISO)


def _optional(column: Any, piece: Any) -> Any:
    return sa.case((column.is_(None), sa.null()), else_=piece)


def row_json(schema: ClassSchema, table: sa.Table, hidden: frozenset[str]) -> Any:
    """The SQL expression of one row's JSON text (``hidden``: the caller's protected fields)."""
    c = table.c
    parts: list[Any] = [
        _text('"objectId":') + _json(c.objectId),
        _text('"createdAt":"') + _iso(c.createdAt) + _text('"'),
        _text('"updatedAt":"') + _iso(c.updatedAt) + _text('"'),
    ]
    for spec in schema.fields.values():
        name = spec.name
        if name in hidden:
            continue
        key = orjson.dumps(name).decode() + ":"
        if spec.type == "Relation":
            relation = {"__type": "Relation", "className": spec.target_class}
            parts.append(_text(key + orjson.dumps(relation).decode()))
            continue
        col = c[name]
        if spec.type == "Pointer":
            head = '{"__type":"Pointer","className":' + orjson.dumps(spec.target_class).decode()
            piece = _text(key + head + ',"objectId":') + _json(col) + _text("}")
        elif spec.type == "Date":
            piece = _text(key + '{"__type":"Date","iso":"') + _iso(col) + _text('"}')
        elif spec.type == "Bytes":
            piece = _text(key + '{"__type":"Bytes","base64":') + _json(col) + _text("}")
        elif spec.type in _AS_STORED:
            piece = _text(key) + sa.cast(col, sa.Text)
        else:  # String, Number, Boolean
            piece = _text(key) + _json(col)
        parts.append(_optional(col, piece))
    parts.append(_optional(c._acl, _text('"ACL":') + sa.cast(c._acl, sa.Text)))
    return _text("{") + _concat(parts) + _text("}")


def _concat(parts: list[Any]) -> Any:
    while len(parts) > _CHUNK:
        parts = [
            sa.func.concat_ws(",", *parts[i : i + _CHUNK]) for i in range(0, len(parts), _CHUNK)
        ]
    return sa.func.concat_ws(",", *parts)


def needs_python(text: str) -> bool:
    """Whether the row holds a file reference (its URL must be signed for the caller)."""
    return any(marker in text for marker in _FILE_MARKERS)
