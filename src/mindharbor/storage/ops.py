"""Turn a create/update body into column values: plain values, ``__op`` operators, the ACL.

Runs on the row as read ``FOR UPDATE`` inside the transaction, so ``Increment`` and the array
operators are atomic with respect to concurrent writers on both backends.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import orjson

from mindharbor.errors import (
    IncorrectType,
    InvalidJSON,
    InvalidKeyName,
    OperationForbidden,
    ValidationFailed,
)
from mindharbor.security.acl import ACLJson, permission_lists, validate_acl
from mindharbor.storage.codec import (
    check_json_value,
    check_number,
    from_column,
    pointer_id,
    to_column,
)
from mindharbor.storage.schema import (
    FIELD_NAME_RE,
    INVALID_COLUMNS,
    ClassSchema,
    FieldSpec,
    check_prohibited_keys,
)

IGNORED_KEYS = frozenset({"createdAt", "updatedAt", "className", "__type"})


@dataclass
class RelationChange:
    field_name: str
    add: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)


@dataclass
class PreparedWrite:
    """What a write will change: column values, relation membership and the echo for clients."""

    values: dict[str, Any] = field(default_factory=dict)
    relations: list[RelationChange] = field(default_factory=list)
    echo: dict[str, Any] = field(default_factory=dict)
    acl_set: bool = False


def _canonical(item: Any) -> bytes:
    if isinstance(item, dict) and item.get("__type") == "Pointer":
        item = {
            "__type": "Pointer",
            "className": item.get("className"),
            "objectId": item.get("objectId"),
        }
    return orjson.dumps(item, option=orjson.OPT_SORT_KEYS)


def prepare_write(
    schema: ClassSchema,
    body: dict[str, Any],
    existing: dict[str, Any] | None,
    *,
    trusted: bool,
) -> PreparedWrite:
    """Validate ``body`` against ``schema``; ``trusted`` (master key, server hooks) may set
    server-owned fields."""
    out = PreparedWrite()
    check_prohibited_keys(body)
    for key, value in body.items():
        if key in IGNORED_KEYS:
            continue
        if key == "objectId":
            if existing is not None and value == existing.get("objectId"):
                continue
            raise InvalidKeyName("objectId is an invalid field name.")
        if key == "ACL":
            acl: ACLJson | None = validate_acl(value)
            readers, writers = permission_lists(acl)
            out.values.update({"_acl": acl, "_rperm": readers, "_wperm": writers})
            out.acl_set = True
            continue
        head, dot, rest = key.partition(".")
        if not FIELD_NAME_RE.match(head) or head in INVALID_COLUMNS:
            raise InvalidKeyName(f"Invalid field name: {key}.")
        spec = schema.field(head)
        if spec is None and not dot and _is_unset(value):
            continue  # Parse: null or Delete on a field the class lacks changes nothing
        if spec is None:
            raise InvalidKeyName(f"Invalid field name: {key}.")  # schema-on-write ran before us
        if spec.server and not trusted:
            raise OperationForbidden(f"{head} is set by the server and cannot be written.")
        if dot:
            _apply_path(out, schema.name, spec, key, rest.split("."), value, existing)
        elif isinstance(value, dict) and "__op" in value:
            _apply_op(out, schema, spec, value, existing)
        else:
            out.values[head] = to_column(spec, value, schema.name)
    return out


def _is_unset(value: Any) -> bool:
    """``null`` or ``{"__op": "Delete"}``: a value that gives a field no type."""
    return value is None or (isinstance(value, dict) and value.get("__op") == "Delete")


def _current(out: PreparedWrite, existing: dict[str, Any] | None, name: str) -> Any:
    if name in out.values:
        return out.values[name]
    return existing.get(name) if existing else None


def _apply_op(
    out: PreparedWrite,
    schema: ClassSchema,
    spec: FieldSpec,
    op: dict[str, Any],
    existing: dict[str, Any] | None,
) -> None:
    name, kind = spec.name, op.get("__op")
    if kind == "Delete":
        if spec.type == "Relation":
            raise IncorrectType("Relations cannot be deleted; remove their members.")
        out.values[name] = None
        return
    if kind == "Increment":
        if spec.type != "Number":
            raise IncorrectType(f"Cannot increment a non-number field {name}.")
        amount = check_number(op.get("amount"))
        result = check_number((_current(out, existing, name) or 0) + amount)
        out.values[name] = result
        out.echo[name] = from_column(spec, float(result))
        return
    if kind in ("Add", "AddUnique", "Remove"):
        if spec.type != "Array":
            raise IncorrectType(f"{kind} needs an Array field, {name} is {spec.type}.")
        objects = op.get("objects")
        if not isinstance(objects, list):
            raise InvalidJSON(f"{kind} needs an objects array.")
        check_json_value(objects)
        current = list(_current(out, existing, name) or [])
        if kind == "Add":
            current.extend(objects)
        elif kind == "AddUnique":
            seen = {_canonical(item) for item in current}
            for item in objects:
                if _canonical(item) not in seen:
                    current.append(item)
                    seen.add(_canonical(item))
        else:
            drop = {_canonical(item) for item in objects}
            current = [item for item in current if _canonical(item) not in drop]
        out.values[name] = current
        out.echo[name] = current
        return
    if kind in ("AddRelation", "RemoveRelation", "Batch"):
        if spec.type != "Relation":
            raise IncorrectType(f"{kind} needs a Relation field, {name} is {spec.type}.")
        ops = op.get("ops") if kind == "Batch" else [op]
        if not isinstance(ops, list):
            raise InvalidJSON("Batch needs an ops array.")
        change = RelationChange(name)
        for sub in ops:
            sub_kind = sub.get("__op") if isinstance(sub, dict) else None
            objects = sub.get("objects") if isinstance(sub, dict) else None
            if sub_kind not in ("AddRelation", "RemoveRelation") or not isinstance(objects, list):
                raise InvalidJSON("Relation operations need objects.")
            ids = [pointer_id(obj, spec.target_class) for obj in objects]
            (change.add if sub_kind == "AddRelation" else change.remove).extend(ids)
        out.relations.append(change)
        return
    raise InvalidJSON(f"Unknown operation: {kind!r} on {schema.name}.{name}")


def _apply_path(
    out: PreparedWrite,
    class_name: str,
    spec: FieldSpec,
    key: str,
    path: list[str],
    value: Any,
    existing: dict[str, Any] | None,
) -> None:
    """``"meta.count": {"__op": "Increment"}`` or ``"meta.color": "red"`` inside an Object."""
    if not all(path):
        raise InvalidKeyName(f"Invalid field name: {key}.")
    if spec.type != "Object":  # a path writes an Object: Parse's schema mismatch (111)
        raise IncorrectType(
            f"schema mismatch for {class_name}.{spec.name}; expected {spec.type} but got Object"
        )
    root = copy.deepcopy(_current(out, existing, spec.name) or {})
    node = root
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    leaf = path[-1]
    if isinstance(value, dict) and value.get("__op") == "Increment":
        current = node.get(leaf) or 0
        if not isinstance(current, int | float) or isinstance(current, bool):
            raise IncorrectType(f"Cannot increment {key}: not a number.")
        node[leaf] = check_number(current + check_number(value.get("amount")))
        out.echo[key] = node[leaf]
    elif isinstance(value, dict) and value.get("__op") == "Delete":
        node.pop(leaf, None)
    elif isinstance(value, dict) and "__op" in value:
        raise InvalidJSON(f"Unsupported operation inside an object: {value.get('__op')}")
    else:
        node[leaf] = check_json_value(value)
    out.values[spec.name] = root


def check_required(schema: ClassSchema, row: dict[str, Any]) -> None:
    for spec in schema.fields.values():
        if spec.required and spec.has_column and row.get(spec.name) is None:
            raise ValidationFailed(f"{spec.name} is required")
