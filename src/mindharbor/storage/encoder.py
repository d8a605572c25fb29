"""Stored rows → Parse's wire encoding: the one encoder REST, batch, GraphQL and LiveQuery share.

An encoder is made for one caller (its protected fields and its signed file URLs differ) and
holds, per class, a plan computed once per schema version: which columns to emit, under what
kind. Hidden columns (``_``-prefixed) and the caller's protected fields never leave; a user's
own ``_User`` row is the exception for protected fields (people may read their own email).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mindharbor.security.auth import Auth
from mindharbor.security.roles import may_receive_file_urls
from mindharbor.storage.codec import from_column, iso
from mindharbor.storage.schema import ClassSchema
from mindharbor.storage.triggers import FileRefs

_FILE_HOLDING_TYPES = frozenset({"File", "Array", "Object"})
# Kinds emitted inline (same result as ``from_column``, without its dispatch).
_POINTER, _DATE, _PLAIN, _RELATION, _OTHER, _FILES = range(6)
_KINDS = {"Pointer": _POINTER, "Date": _DATE, "String": _PLAIN, "Boolean": _PLAIN}

Plan = tuple[tuple[str, int, Any], ...]  # (field name, kind, spec or target class)
_PLANS: dict[int, tuple[ClassSchema, Plan]] = {}


def _plan(schema: ClassSchema) -> Plan:
    """The class's emit plan, built once per schema object (a changed class is a new one)."""
    cached = _PLANS.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    steps: list[tuple[str, int, Any]] = []
    for spec in schema.fields.values():
        if spec.type == "Relation":
            steps.append((spec.name, _RELATION, spec.target_class))
        elif spec.type in _KINDS:
            kind = _KINDS[spec.type]
            steps.append((spec.name, kind, spec.target_class if kind == _POINTER else spec))
        elif spec.type in _FILE_HOLDING_TYPES:
            steps.append((spec.name, _FILES, spec))
        else:
            steps.append((spec.name, _OTHER, spec))
    plan = tuple(steps)
    if len(_PLANS) > 512:
        _PLANS.clear()
    _PLANS[id(schema)] = (schema, plan)
    return plan


def without_files(value: Any) -> Any:
    """``value`` with every File reference left out (for a reader who gets no file URLs); None
    when nothing else was in it (the field is then left out too)."""
    kept = _strip_files(value)
    return None if kept != value and not kept else kept


def _strip_files(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get("__type") == "File":
            return None
        return {k: v for k, v in ((k, _strip_files(v)) for k, v in value.items()) if v is not None}
    if isinstance(value, list):
        return [v for v in (_strip_files(item) for item in value) if v is not None]
    return value


def file_urls_allowed(auth: Auth, schema: ClassSchema, row: dict[str, Any]) -> bool:
    """Whether this reader gets the row's files (``security.roles.may_receive_file_urls``); the
    row's ``patient`` is a column value or, in PostgreSQL-written JSON, a Pointer."""
    spec = schema.fields.get("patient")
    if spec is None or spec.target_class != "PatientProfile":
        return True
    patient = row.get("patient")
    if isinstance(patient, dict):
        patient = patient.get("objectId")
    return may_receive_file_urls(auth, patient if isinstance(patient, str) else None)


class ParseEncoder:
    """Encodes rows for one caller."""

    __slots__ = ("auth", "files", "protected")

    def __init__(
        self,
        auth: Auth,
        files: FileRefs | None,
        protected: Callable[[ClassSchema], frozenset[str]],
    ) -> None:
        self.auth = auth
        self.files = files
        self.protected = protected

    def encode(self, schema: ClassSchema, row: dict[str, Any]) -> dict[str, Any]:
        hidden = self.protected(schema)
        if hidden and schema.name == "_User" and row["objectId"] == self.auth.user_id:
            hidden = frozenset()
        out: dict[str, Any] = {
            "objectId": row["objectId"],
            "createdAt": iso(row["createdAt"]),
            "updatedAt": iso(row["updatedAt"]),
        }
        files = self.files
        files_allowed: bool | None = None
        for name, kind, extra in _plan(schema):
            if hidden and name in hidden:
                continue
            if kind == _RELATION:
                out[name] = {"__type": "Relation", "className": extra}
                continue
            value = row.get(name)
            if value is None:
                continue
            if kind == _PLAIN:
                out[name] = value
            elif kind == _POINTER:
                out[name] = {"__type": "Pointer", "className": extra, "objectId": value}
            elif kind == _DATE:
                out[name] = {"__type": "Date", "iso": iso(value)}
            elif kind == _FILES:
                # Signed, expiring URLs are minted here, for a row the caller was allowed to
                # read, so every face (REST, include, GraphQL, LiveQuery) gets them.
                encoded = from_column(extra, value)
                if files is None:
                    out[name] = encoded
                    continue
                if files_allowed is None:
                    files_allowed = file_urls_allowed(self.auth, schema, row)
                if files_allowed:
                    out[name] = files.sign_refs(encoded, self.auth)
                elif (kept := without_files(encoded)) is not None:
                    out[name] = kept
            else:
                out[name] = from_column(extra, value)
        acl = row.get("_acl")
        if acl is not None:
            out["ACL"] = acl
        return out
