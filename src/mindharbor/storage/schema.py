"""The schema registry: Parse classes and fields, loaded from ``schema.json`` and the database.

The shipped model lives in one declarative file (``mindharbor/schema.json``, the seed's JSON form
extended with ``unique``, ``server``, ``enum``, ``indexes`` and CLPs). Classes a deployer adds
through ``/schemas`` are stored in the ``_SCHEMA`` table. Tables, validation and (later) the
GraphQL and OpenAPI schemas all derive from these objects: adding a field is a one-place change.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

from mindharbor.errors import (
    IncorrectType,
    InvalidClassName,
    InvalidJSON,
    InvalidKeyName,
    InvalidSchemaOperation,
)

CLASS_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
# Names JavaScript clients treat specially when they merge objects (prototype pollution): no
# class, field or key anywhere in a stored value may be one (Parse refuses them too).
PROHIBITED_NAMES = frozenset({"__proto__", "constructor", "prototype", "toString"})
FIELD_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")

FIELD_TYPES = frozenset(
    {
        "String",
        "Number",
        "Boolean",
        "Date",
        "File",
        "GeoPoint",
        "Polygon",
        "Array",
        "Object",
        "Pointer",
        "Relation",
        "Bytes",
    }
)
# Every class carries these; they are columns, not schema fields a client may change.
DEFAULT_FIELDS: dict[str, dict[str, Any]] = {
    "objectId": {"type": "String"},
    "createdAt": {"type": "Date"},
    "updatedAt": {"type": "Date"},
    "ACL": {"type": "ACL"},
}
RESERVED_FIELD_NAMES = frozenset({"objectId", "createdAt", "updatedAt", "ACL", "id", "_id"})
# Parse refuses these as column names anywhere (SchemaController ``invalidColumns``): ``length``
# would shadow JavaScript's array-like property in clients.
INVALID_COLUMNS = frozenset({"length"})
SYSTEM_CLASSES = frozenset({"_User", "_Role", "_Session"})
# Keys a client sends that are not columns: hooks consume them (password → a hash, a history
# note → the crisis log's event).
PSEUDO_FIELDS: dict[str, frozenset[str]] = {
    "_User": frozenset({"password"}),
    "CrisisInterventionLog": frozenset({"historyNote"}),
}
CLP_OPERATIONS = ("find", "count", "get", "create", "update", "delete", "addField")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a class, as declared."""

    name: str
    type: str
    target_class: str | None = None
    required: bool = False
    default: Any = None
    unique: bool = False
    server: bool = False  # set only by the server (hooks) or the master key
    enum: tuple[str, ...] | None = None
    description: str | None = None
    builtin: bool = False  # declared in schema.json: cannot be deleted through /schemas

    @property
    def has_column(self) -> bool:
        return self.type != "Relation"

    def to_parse(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.target_class:
            out["targetClass"] = self.target_class
        if self.required:
            out["required"] = True
        if self.default is not None:
            out["defaultValue"] = self.default
        return out

    def to_store(self) -> dict[str, Any]:
        out = self.to_parse()
        for key, value in (("unique", self.unique), ("server", self.server)):
            if value:
                out[key] = True
        if self.enum:
            out["enum"] = list(self.enum)
        if self.description:
            out["description"] = self.description
        return out

    @classmethod
    def from_json(cls, name: str, spec: dict[str, Any], *, builtin: bool = False) -> FieldSpec:
        if not isinstance(spec, dict):
            raise InvalidJSON(f"Field {name} must be an object.")
        ftype = spec.get("type")
        if ftype not in FIELD_TYPES:
            raise IncorrectType(f"invalid field type: {ftype}")
        target = spec.get("targetClass")
        if ftype in ("Pointer", "Relation"):
            if not isinstance(target, str) or not CLASS_NAME_RE.match(target.lstrip("_")):
                raise InvalidClassName(f"type {ftype} needs a class name")
        elif target is not None:
            raise IncorrectType(f"targetClass is only for Pointer and Relation, not {ftype}")
        enum = spec.get("enum")
        return cls(
            name=name,
            type=ftype,
            target_class=target,
            required=bool(spec.get("required", False)),
            default=spec.get("defaultValue"),
            unique=bool(spec.get("unique", False)),
            server=bool(spec.get("server", False)),
            enum=tuple(enum) if enum else None,
            description=spec.get("description"),
            builtin=builtin,
        )


@dataclass(frozen=True, slots=True)
class ClassSchema:
    """A Parse class: its fields, class-level permissions and declared indexes."""

    name: str
    fields: dict[str, FieldSpec]
    clp: dict[str, Any] = field(default_factory=dict)
    indexes: dict[str, dict[str, int]] = field(default_factory=dict)
    builtin: bool = False
    phi: bool = False
    description: str | None = None
    # CLPs of a built-in class come from schema.json unless a deployer set them via /schemas.
    custom_clp: bool = False

    def field(self, name: str) -> FieldSpec | None:
        return self.fields.get(name)

    @property
    def relations(self) -> list[FieldSpec]:
        return [f for f in self.fields.values() if f.type == "Relation"]

    def to_parse(self) -> dict[str, Any]:
        """The schema JSON that ``GET /schemas`` answers."""
        fields = {name: dict(spec) for name, spec in DEFAULT_FIELDS.items()}
        if self.name == "_User":
            fields["password"] = {"type": "String"}
        fields.update({name: f.to_parse() for name, f in self.fields.items()})
        out: dict[str, Any] = {
            "className": self.name,
            "fields": fields,
            "classLevelPermissions": normalized_clp(self.clp),
        }
        # Always, as Parse on PostgreSQL answers (the primary key as Mongo's ``_id_``): the SDK
        # reads ``schema.indexes.<name>`` and would fail on a class without indexes.
        out["indexes"] = {"_id_": {"_id": 1}, **self.indexes}
        return out

    def to_store(self) -> dict[str, Any]:
        return {
            "fields": {name: f.to_store() for name, f in self.fields.items()},
            "classLevelPermissions": self.clp,
            "indexes": self.indexes,
            "builtin": self.builtin,
            "phi": self.phi,
            "description": self.description,
            "customClp": self.custom_clp,
        }

    @classmethod
    def from_store(cls, name: str, data: dict[str, Any]) -> ClassSchema:
        return cls(
            name=name,
            fields={
                fname: FieldSpec.from_json(fname, spec)
                for fname, spec in data.get("fields", {}).items()
            },
            clp=data.get("classLevelPermissions") or {},
            indexes=data.get("indexes") or {},
            builtin=bool(data.get("builtin")),
            custom_clp=bool(data.get("customClp")),
            phi=bool(data.get("phi")),
            description=data.get("description"),
        )

    def with_fields(self, fields: dict[str, FieldSpec]) -> ClassSchema:
        return replace(self, fields=fields)


def normalized_clp(clp: dict[str, Any]) -> dict[str, Any]:
    """CLPs as Parse prints them: every operation present, public when not restricted."""
    out: dict[str, Any] = {op: {"*": True} for op in CLP_OPERATIONS}
    out["protectedFields"] = {"*": []}
    out.update(clp)
    return out


def validate_class_name(name: str) -> str:
    if isinstance(name, str) and name in PROHIBITED_NAMES:
        raise InvalidClassName(f"Invalid classname: {name} is a prohibited name.")
    if not isinstance(name, str) or not CLASS_NAME_RE.match(name):
        raise InvalidClassName(
            f"Invalid classname: {name}, classnames can only have alphanumeric "
            "characters and _, and must start with an alpha character "
        )
    return name


def validate_field_name(name: str) -> str:
    if not isinstance(name, str) or not FIELD_NAME_RE.match(name) or name in INVALID_COLUMNS:
        raise InvalidKeyName(f"Invalid field name: {name}.")
    if name in RESERVED_FIELD_NAMES:
        raise InvalidKeyName(f"field {name} cannot be added")
    if name in PROHIBITED_NAMES:
        raise InvalidKeyName(f"Invalid field name: {name} is a prohibited name.")
    return name


def check_prohibited_keys(value: Any, depth: int = 0) -> None:
    """105 for a prohibited name used as a key anywhere inside a value (Parse's
    ``requestKeywordDenylist``)."""
    if depth > 64:
        return  # deeper nesting is refused by the JSON limits elsewhere
    if isinstance(value, dict):
        for key, item in value.items():
            if key in PROHIBITED_NAMES:
                raise InvalidKeyName(f"Prohibited keyword in request data: {key}.")
            check_prohibited_keys(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_prohibited_keys(item, depth + 1)


def load_builtin_classes() -> list[ClassSchema]:
    """The classes declared in the package's schema.json."""
    raw = json.loads(resources.files("mindharbor").joinpath("schema.json").read_text())
    out = []
    for cls in raw["classes"]:
        fields = {
            name: FieldSpec.from_json(name, spec, builtin=True)
            for name, spec in cls["fields"].items()
        }
        out.append(
            ClassSchema(
                name=cls["className"],
                fields=fields,
                clp=cls.get("classLevelPermissions") or {},
                indexes=cls.get("indexes") or {},
                builtin=True,
                phi=bool(cls.get("phi")),
                description=cls.get("description"),
            )
        )
    return out


def merge_builtin(builtin: ClassSchema, stored: ClassSchema | None) -> ClassSchema:
    """Built-in declarations win; fields a deployer added through /schemas are kept."""
    if stored is None:
        return builtin
    extra = {n: f for n, f in stored.fields.items() if n not in builtin.fields}
    clp = stored.clp if stored.custom_clp else builtin.clp
    return replace(
        builtin, fields={**builtin.fields, **extra}, clp=clp, custom_clp=stored.custom_clp
    )


def check_field_addable(schema: ClassSchema, name: str, spec: FieldSpec) -> None:
    """A field may be added once; re-declaring it with another type is Parse's 255."""
    if schema.field(name) is not None:
        raise InvalidSchemaOperation(f"Field {name} exists, cannot update.")
    del spec  # every type is addable; the argument documents what is being added


def check_one_geopoint(schema: ClassSchema) -> None:
    """Parse allows one GeoPoint field per class (its geo index is per class): 111 otherwise."""
    names = [f.name for f in schema.fields.values() if f.type == "GeoPoint"]
    if len(names) > 1:
        raise IncorrectType(
            f"currently, only one GeoPoint field may exist in an object. Adding {names[1]} "
            f"when {names[0]} already exists."
        )


def check_field_deletable(schema: ClassSchema, name: str) -> None:
    spec = schema.field(name)
    if spec is None:
        raise InvalidSchemaOperation(f"Field {name} does not exist, cannot delete.")
    if spec.builtin:
        raise InvalidSchemaOperation(f"field {name} is a built-in field and cannot be deleted")
