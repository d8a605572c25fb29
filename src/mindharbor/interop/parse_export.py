"""Reading a Parse export, in any of the forms a Parse app's data leaves its server in.

One file per class, named after it (``PatientProfile.json``, ``_User.ndjson``); relations in
``_Join:<field>:<Class>`` files (``:`` may be written ``-``); the class definitions, when
present, in ``_SCHEMA``. Each file is a JSON document ``{"results": [...]}`` (Parse Dashboard
and Back4app "export data", or ``GET /parse/classes/X``), a JSON array (``mongoexport
--jsonArray``) or one JSON document per line (``mongoexport``; ``COPY (SELECT row_to_json(t)
FROM "_User" t) TO STDOUT`` on Parse's PostgreSQL; MindHarbor's own ``$export`` in the Parse
form). Rows come in three dialects, told apart by their keys:

* **wire** — Parse's REST encoding: ``objectId``, ``createdAt``, ``ACL``, ``{"__type": ...}``;
* **mongo** — Parse's MongoDB storage: ``_id``, ``_created_at``, ``_p_<field>: "Class$id"``,
  ``_acl: {id: {"r", "w"}}``, ``{"$date": ...}``, ``_hashed_password``;
* **postgres** — Parse's PostgreSQL tables: ``objectId``, ``_rperm``/``_wperm`` arrays, pointers
  as bare ids (their class comes from ``_SCHEMA`` or MindHarbor's schema).

Only the mongo and postgres forms carry password hashes (``_hashed_password``, bcrypt): a REST or
Dashboard export never does, and its users must reset their passwords.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from mindharbor.storage.schema import ClassSchema

_JOIN_RE = re.compile(r"^_Join[:\-](?P<field>[A-Za-z0-9_]+)[:\-](?P<owner>[A-Za-z0-9_]+)$")
SUFFIXES = (".json", ".ndjson", ".jsonl")


class ExportError(Exception):
    """The export cannot be read at all (the message names the file, never its content)."""


@dataclass
class ClassRows:
    name: str
    rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Export:
    classes: dict[str, ClassRows] = field(default_factory=dict)
    joins: dict[tuple[str, str], list[tuple[str, str]]] = field(default_factory=dict)
    schema: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # class -> fields

    @property
    def total(self) -> int:
        return sum(len(c.rows) for c in self.classes.values()) + sum(
            len(j) for j in self.joins.values()
        )


def _documents(path: Path) -> list[Any]:
    raw = path.read_bytes()
    try:
        whole = orjson.loads(raw)
    except orjson.JSONDecodeError:
        whole = None
    if isinstance(whole, dict) and isinstance(whole.get("results"), list):
        return list(whole["results"])
    if isinstance(whole, list):
        return whole
    if isinstance(whole, dict):
        return [whole]
    docs = []
    for number, line in enumerate(raw.splitlines(), 1):
        if line.strip():
            try:
                docs.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise ExportError(f"{path.name}: line {number} is not JSON") from exc
    return docs


def _files(source: Path) -> Iterator[Path]:
    if source.is_file():
        yield source
        return
    if not source.is_dir():
        raise ExportError(f"{source} does not exist")
    for path in sorted(source.iterdir()):
        if path.is_file() and path.suffix in SUFFIXES and path.name != "manifest.json":
            yield path


def read_export(source: Path) -> Export:
    export = Export()
    for path in _files(source):
        stem = path.name
        for suffix in SUFFIXES:
            if stem.endswith(suffix):
                stem = stem[: -len(suffix)]
        docs = _documents(path)
        join = _JOIN_RE.match(stem)
        if join:
            pairs = export.joins.setdefault((join["field"], join["owner"]), [])
            for doc in docs:
                if isinstance(doc, dict) and doc.get("owningId") and doc.get("relatedId"):
                    pairs.append((str(doc["owningId"]), str(doc["relatedId"])))
            continue
        if stem == "_SCHEMA":
            for doc in docs:
                _read_schema_row(export, doc)
            continue
        rows = export.classes.setdefault(stem, ClassRows(stem)).rows
        rows.extend(d for d in docs if isinstance(d, dict))
    return export


def _read_schema_row(export: Export, doc: Any) -> None:
    if not isinstance(doc, dict):
        return
    if "className" in doc and isinstance(doc.get("schema"), dict):  # PostgreSQL _SCHEMA table
        fields = doc["schema"].get("fields") or {}
        export.schema[str(doc["className"])] = {k: dict(v) for k, v in fields.items()}
        return
    name = doc.get("_id")
    if not isinstance(name, str):
        return
    fields = {}
    for key, kind in doc.items():  # MongoDB _SCHEMA: {"field": "string" | "*Target" | ...}
        if key.startswith("_") or not isinstance(kind, str):
            continue
        if kind.startswith("*"):
            fields[key] = {"type": "Pointer", "targetClass": kind[1:]}
        elif kind.startswith("relation<"):
            fields[key] = {"type": "Relation", "targetClass": kind[9:-1]}
        else:
            fields[key] = {"type": kind[:1].upper() + kind[1:].lower()}
            if kind == "geopoint":
                fields[key]["type"] = "GeoPoint"
    export.schema[name] = fields


# -- one row → (objectId, createdAt, updatedAt, ACL, wire fields, hidden) --------------------------
@dataclass
class Row:
    object_id: str
    created_at: datetime | None
    updated_at: datetime | None
    acl: dict[str, dict[str, bool]] | None
    acl_given: bool
    fields: dict[str, Any]
    hidden: dict[str, Any]
    dropped: list[str]


HIDDEN_KEPT = frozenset({"_hashed_password"})


def _to_datetime(value: Any) -> datetime | None:
    if isinstance(value, dict):
        if value.get("__type") == "Date":
            value = value.get("iso")
        elif "$date" in value:
            value = value["$date"]
            if isinstance(value, dict) and "$numberLong" in value:
                return datetime.fromtimestamp(int(value["$numberLong"]) / 1000, UTC).replace(
                    tzinfo=None
                )
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, UTC).replace(tzinfo=None)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)
    return None


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _acl_from_lists(rperm: Any, wperm: Any) -> dict[str, dict[str, bool]] | None:
    if rperm is None and wperm is None:
        return None
    acl: dict[str, dict[str, bool]] = {}
    for who in rperm or []:
        acl.setdefault(str(who), {})["read"] = True
    for who in wperm or []:
        acl.setdefault(str(who), {})["write"] = True
    return acl


def _plain(value: Any) -> Any:
    """MongoDB extended JSON ({"$date"}, {"$numberInt"}, ...) → plain / Parse wire values."""
    if isinstance(value, dict):
        if "$date" in value:
            moment = _to_datetime(value)
            return {"__type": "Date", "iso": _iso(moment)} if moment else None
        for key in ("$numberInt", "$numberLong"):
            if key in value:
                return int(value[key])
        if "$numberDouble" in value:
            return float(value["$numberDouble"])
        if "$oid" in value:
            return str(value["$oid"])
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _typed(spec: dict[str, Any] | None, value: Any) -> Any:
    """A stored (mongo / postgres) column value in the wire encoding of its declared type."""
    value = _plain(value)
    kind = (spec or {}).get("type")
    if value is None or kind is None:
        return value
    if kind == "Date" and not isinstance(value, dict):
        moment = _to_datetime(value)
        return {"__type": "Date", "iso": _iso(moment)} if moment else value
    if kind == "Pointer" and isinstance(value, str):
        target, sep, oid = value.partition("$")
        if sep:
            return {"__type": "Pointer", "className": target, "objectId": oid}
        return {
            "__type": "Pointer",
            "className": (spec or {}).get("targetClass"),
            "objectId": value,
        }
    if kind == "File" and isinstance(value, str):
        return {"__type": "File", "name": value}
    if kind == "GeoPoint" and isinstance(value, list) and len(value) == 2:
        return {"__type": "GeoPoint", "longitude": value[0], "latitude": value[1]}
    if kind in ("GeoPoint", "Polygon"):
        return _geo(kind, value)
    return value


_PAIR_RE = re.compile(r"\(\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*\)")


def _geo(kind: str, value: Any) -> Any:
    """PostgreSQL's ``point`` ``"(lng,lat)"`` and ``polygon`` ``"((lng,lat),...)"`` text, and
    MongoDB's GeoJSON polygon (``[lng, lat]`` rings), in Parse's wire form."""
    pairs: list[tuple[float, float]] = []
    if isinstance(value, str):
        pairs = [(float(x), float(y)) for x, y in _PAIR_RE.findall(value)]
    elif isinstance(value, dict) and value.get("type") == "Polygon":
        rings = value.get("coordinates")
        if isinstance(rings, list) and rings and isinstance(rings[0], list):
            pairs = [(float(p[0]), float(p[1])) for p in rings[0] if isinstance(p, list)]
    if kind == "GeoPoint" and len(pairs) == 1:
        return {"__type": "GeoPoint", "latitude": pairs[0][1], "longitude": pairs[0][0]}
    if kind == "Polygon" and pairs:
        return {"__type": "Polygon", "coordinates": [[lat, lng] for lng, lat in pairs]}
    return value


def normalize(row: dict[str, Any], schema: dict[str, dict[str, Any]]) -> Row:
    """One exported row in the wire form, whatever dialect it came in."""
    if "_id" in row:
        return _mongo(row, schema)
    if "_rperm" in row or "_wperm" in row or ("_hashed_password" in row and "ACL" not in row):
        return _postgres(row, schema)
    return _wire(row)


def _split(row: dict[str, Any], skip: set[str]) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    fields: dict[str, Any] = {}
    hidden: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in row.items():
        if key in skip:
            continue
        if key.startswith("_"):
            if key in HIDDEN_KEPT and isinstance(value, str):
                hidden[key] = value
            elif not key.startswith("_p_"):
                dropped.append(key)
            continue
        fields[key] = value
    return fields, hidden, dropped


def _wire(row: dict[str, Any]) -> Row:
    fields, hidden, dropped = _split(row, {"objectId", "createdAt", "updatedAt", "ACL"})
    for key in ("sessionToken", "password"):
        if key in fields:
            fields.pop(key)
            dropped.append(key)
    acl = row.get("ACL") if isinstance(row.get("ACL"), dict) else None
    return Row(
        str(row.get("objectId") or ""),
        _to_datetime(row.get("createdAt")),
        _to_datetime(row.get("updatedAt")),
        acl,
        "ACL" in row,
        fields,
        hidden,
        dropped,
    )


def _mongo(row: dict[str, Any], schema: dict[str, dict[str, Any]]) -> Row:
    skip = {"_id", "_created_at", "_updated_at", "_acl", "_rperm", "_wperm"}
    fields, hidden, dropped = _split(row, skip)
    typed = {k: _typed(schema.get(k), v) for k, v in fields.items()}
    for key, value in row.items():
        if key.startswith("_p_") and isinstance(value, str):
            typed[key[3:]] = _typed({"type": "Pointer"}, value)
    acl: dict[str, dict[str, bool]] | None = None
    if isinstance(row.get("_acl"), dict):
        acl = {
            str(who): {
                **({"read": True} if perms.get("r") else {}),
                **({"write": True} if perms.get("w") else {}),
            }
            for who, perms in row["_acl"].items()
            if isinstance(perms, dict)
        }
    elif "_rperm" in row or "_wperm" in row:
        acl = _acl_from_lists(row.get("_rperm"), row.get("_wperm"))
    given = "_acl" in row or "_rperm" in row or "_wperm" in row
    return Row(
        str(row["_id"]),
        _to_datetime(row.get("_created_at")),
        _to_datetime(row.get("_updated_at")),
        acl,
        given,
        typed,
        hidden,
        dropped,
    )


def _postgres(row: dict[str, Any], schema: dict[str, dict[str, Any]]) -> Row:
    skip = {"objectId", "createdAt", "updatedAt", "_rperm", "_wperm", "ACL"}
    fields, hidden, dropped = _split(row, skip)
    typed = {k: _typed(schema.get(k), v) for k, v in fields.items() if v is not None}
    acl = _acl_from_lists(row.get("_rperm"), row.get("_wperm"))
    return Row(
        str(row.get("objectId") or ""),
        _to_datetime(row.get("createdAt")),
        _to_datetime(row.get("updatedAt")),
        acl,
        True,
        typed,
        hidden,
        dropped,
    )


def field_specs(
    export: Export, target: ClassSchema | None, class_name: str
) -> dict[str, dict[str, Any]]:
    """What each column holds: the export's own ``_SCHEMA`` first, else MindHarbor's schema."""
    specs: dict[str, dict[str, Any]] = {}
    if target is not None:
        specs.update({name: spec.to_parse() for name, spec in target.fields.items()})
    specs.update(export.schema.get(class_name, {}))
    return specs
