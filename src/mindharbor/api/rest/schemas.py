"""``/schemas`` and ``/purge``: the class registry, master key only, Parse's validation errors."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mindharbor.api.rest.reply import Reply
from mindharbor.api.rest.request import ApiRequest
from mindharbor.errors import (
    IncorrectType,
    InvalidClassName,
    InvalidJSON,
    InvalidQuery,
    InvalidSchemaOperation,
    Unauthorized,
)
from mindharbor.security.clp_json import validate_clp
from mindharbor.storage.codec import pointer_target, type_of
from mindharbor.storage.repository import Repository
from mindharbor.storage.schema import (
    SYSTEM_CLASSES,
    ClassSchema,
    FieldSpec,
    check_field_addable,
    check_field_deletable,
    validate_class_name,
    validate_field_name,
)


def _require_master(req: ApiRequest) -> None:
    if not req.auth.is_master:
        raise Unauthorized("unauthorized: master key is required")


def _existing(repo: Repository, name: str) -> ClassSchema:
    schema = repo.schema_or_none(name)
    if schema is None:
        raise InvalidClassName(f"Class {name} does not exist.")
    return schema


async def list_schemas(repo: Repository, req: ApiRequest) -> Reply:
    _require_master(req)
    return Reply({"results": [s.to_parse() for s in repo.store.all_schemas()]})


async def get_schema(repo: Repository, req: ApiRequest) -> Reply:
    _require_master(req)
    return Reply(_existing(repo, req.path_params["className"]).to_parse())


def _type_name(ftype: str | None, target: str | None) -> str:
    return f"{ftype}<{target}>" if ftype == "Pointer" else str(ftype)


def _new_field(class_name: str, fname: str, spec: Any) -> FieldSpec:
    """A field declared through /schemas; its ``defaultValue`` must have the field's type
    (Parse's SchemaController: 111 "schema mismatch for C.f default value; ...")."""
    validate_field_name(fname)
    field = FieldSpec.from_json(fname, spec)
    if field.default is not None:
        got = type_of(field.default)
        got_target = pointer_target(field.default) if got == "Pointer" else None
        if got != field.type or got_target != (field.target_class if got == "Pointer" else None):
            raise IncorrectType(
                f"schema mismatch for {class_name}.{fname} default value; expected "
                f"{_type_name(field.type, field.target_class)} but got "
                f"{_type_name(got, got_target)}"
            )
    return field


def _fields_from_body(body: dict[str, Any]) -> dict[str, Any]:
    fields = body.get("fields", {})
    if not isinstance(fields, dict):
        raise InvalidJSON("fields must be an object.")
    return fields


async def create_schema(repo: Repository, req: ApiRequest) -> Reply:
    _require_master(req)
    name = req.path_params.get("className") or req.body.get("className")
    if req.path_params.get("className") and req.body.get("className") not in (None, name):
        raise InvalidClassName("Class name mismatch between body and path.")
    validate_class_name(str(name))
    if repo.schema_or_none(str(name)) is not None:
        raise InvalidClassName(f"Class {name} already exists.")
    if str(name).startswith("_"):
        raise InvalidClassName(f"Invalid classname: {name}")
    fields: dict[str, FieldSpec] = {}
    for fname, spec in _fields_from_body(req.body).items():
        fields[fname] = _new_field(str(name), fname, spec)
    schema = ClassSchema(
        name=str(name),
        fields=fields,
        clp=validate_clp(req.body.get("classLevelPermissions") or {}, fields),
        indexes=_indexes(req.body.get("indexes"), fields)[0],
    )
    await repo.save_schema(schema, is_new=True)
    return Reply(schema.to_parse())


def _indexes(
    raw: Any, fields: dict[str, FieldSpec], existing: dict[str, dict[str, int]] | None = None
) -> tuple[dict[str, dict[str, int]], list[str]]:
    """The class's indexes after ``raw`` (name → keys, or ``{"__op": "Delete"}``), and the names
    deleted; Parse's checks and messages (PostgresStorageAdapter ``setIndexesWithSchemaFormat``)."""
    out = dict(existing or {})
    deleted: list[str] = []
    if raw is None:
        return out, deleted
    if not isinstance(raw, dict):
        raise InvalidJSON("indexes must be an object.")
    for name, keys in raw.items():
        name = str(name)
        is_delete = isinstance(keys, dict) and keys.get("__op") == "Delete"
        if name in out and not is_delete:
            raise InvalidQuery(f"Index {name} exists, cannot update.")
        if name not in out and is_delete:
            raise InvalidQuery(f"Index {name} does not exist, cannot delete.")
        if is_delete:
            del out[name]
            deleted.append(name)
            continue
        if not isinstance(keys, dict) or not keys:
            raise InvalidJSON(f"Index {name} must name fields.")
        for key, direction in keys.items():
            if key not in fields and key not in ("createdAt", "updatedAt", "objectId"):
                raise InvalidQuery(f"Field {key} does not exist, cannot add index.")
            if direction not in (1, -1):
                raise InvalidJSON(f"Index {name}: direction must be 1 or -1.")
        out[name] = keys
    return out, deleted


async def update_schema(repo: Repository, req: ApiRequest) -> Reply:
    _require_master(req)
    schema = _existing(repo, req.path_params["className"])
    fields = dict(schema.fields)
    for fname, spec in _fields_from_body(req.body).items():
        if isinstance(spec, dict) and spec.get("__op") == "Delete":
            check_field_deletable(schema, fname)
            await repo.drop_column(schema, fname)
            del fields[fname]
            continue
        new_spec = _new_field(schema.name, fname, spec)
        existing = schema.field(fname)
        if (
            existing is not None
            and existing.type == new_spec.type
            and existing.target_class == new_spec.target_class
        ):
            continue  # the SDK resends fields it already saved: a no-op, as in Parse
        check_field_addable(schema, fname, new_spec)
        fields[fname] = new_spec
    clp, custom = schema.clp, schema.custom_clp
    if "classLevelPermissions" in req.body:
        clp, custom = validate_clp(req.body["classLevelPermissions"] or {}, fields), True
    indexes, dropped = _indexes(req.body.get("indexes"), fields, schema.indexes)
    for index_name in dropped:
        await repo.drop_index(schema, index_name)
    updated = replace(schema, fields=fields, clp=clp, indexes=indexes, custom_clp=custom)
    await repo.save_schema(updated, is_new=False)
    return Reply(updated.to_parse())


async def delete_schema(repo: Repository, req: ApiRequest) -> Reply:
    _require_master(req)
    name = req.path_params["className"]
    schema = repo.schema_or_none(name)
    if schema is None:
        return Reply({})
    if schema.builtin or name in SYSTEM_CLASSES:
        raise InvalidSchemaOperation(f"Class {name} is built in and cannot be deleted.")
    count = await repo.count_all(schema)
    if count:
        raise InvalidSchemaOperation(
            f"Class {name} is not empty, contains {count} objects, cannot drop schema."
        )
    await repo.drop_schema(schema)
    return Reply({})


async def purge(repo: Repository, req: ApiRequest) -> Reply:
    _require_master(req)
    schema = repo.schema_or_none(req.path_params["className"])
    if schema is not None:
        await repo.purge(schema)
    return Reply({})
