"""``create<Class>`` / ``update<Class>`` / ``delete<Class>``: Parse Server's object mutations.

The ``fields`` input becomes the body REST takes (``to_rest_body``): a Pointer's
``{link: id}`` a Pointer, ``{createAndLink: {...}}`` a nested create in the same transaction;
a Relation's ``add``/``remove``/``createAndAdd`` the ``AddRelation``/``RemoveRelation`` ops;
``ACLInput`` a Parse ACL; ``null`` a ``Delete`` on update. The write then runs through
``Repository.create/update/delete`` with the caller's rights, hooks and audit, like REST.

The payload's object is the write's echo when only ids and dates are selected, else a read
with the caller's rights (a caller who may write but not read gets the echo, never a 101).
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLResolveInfo

from mindharbor.api.graphql.ids import object_id_of
from mindharbor.api.graphql.resolvers import Resolver, child_fields, context_of
from mindharbor.errors import InvalidPointer, ObjectNotFound, OperationForbidden
from mindharbor.storage.repository import Repository

ECHO_FIELDS = frozenset({"id", "objectId", "createdAt", "updatedAt", "__typename"})


def to_parse_acl(value: dict[str, Any]) -> dict[str, Any]:
    """``ACLInput`` → a Parse ACL (user ids may be global ids)."""
    acl: dict[str, Any] = {}
    if value.get("public") is not None:
        acl["*"] = {"read": value["public"]["read"], "write": value["public"]["write"]}
    for rule in value.get("users") or []:
        user = object_id_of(rule["userId"], "_User")
        acl[user] = {"read": rule["read"], "write": rule["write"]}
    for rule in value.get("roles") or []:
        acl[f"role:{rule['roleName']}"] = {"read": rule["read"], "write": rule["write"]}
    # Parse stores only granted rights; a rule granting nothing is no rule.
    return {
        key: {k: True for k, v in perms.items() if v}
        for key, perms in acl.items()
        if any(perms.values())
    }


async def to_rest_body(
    repo: Repository, class_name: str, fields: dict[str, Any] | None, *, update: bool
) -> dict[str, Any]:
    """The REST body for a ``Create/Update<Class>FieldsInput`` value."""
    schema = repo.schema_or_none(class_name)
    body: dict[str, Any] = {}
    for name, value in (fields or {}).items():
        spec = schema.field(name) if schema is not None else None
        if name == "ACL":
            if value is not None:
                body["ACL"] = to_parse_acl(value)
            continue
        if value is None:
            if update:
                body[name] = {"__op": "Delete"}
            continue
        if spec is None:
            body[name] = value  # a pseudo-field such as _User.password
        elif spec.type == "Pointer":
            body[name] = await _pointer(repo, name, str(spec.target_class), value)
        elif spec.type == "Relation":
            body[name] = await _relation(repo, name, str(spec.target_class), value)
        elif spec.type == "GeoPoint":
            body[name] = {"__type": "GeoPoint", **value}
        elif spec.type == "Polygon":
            coordinates = [[p["latitude"], p["longitude"]] for p in value]
            body[name] = {"__type": "Polygon", "coordinates": coordinates}
        elif spec.type == "File":
            file = value.get("file")
            body[name] = {"__op": "Delete"} if file is None and update else file
        else:
            body[name] = value
    return body


def _pointer_to(target: str, object_id: str) -> dict[str, Any]:
    return {"__type": "Pointer", "className": target, "objectId": object_id}


async def _pointer(repo: Repository, field: str, target: str, value: dict[str, Any]) -> Any:
    given = {k: v for k, v in value.items() if v is not None}
    if len(given) != 1:
        raise InvalidPointer(
            f"You need to provide link OR createLink on the pointer mutation of field {field}"
        )
    if "link" in given:
        return _pointer_to(target, object_id_of(given["link"], target))
    created = await repo.create(
        target, await to_rest_body(repo, target, given["createAndLink"], update=False)
    )
    return _pointer_to(target, created["objectId"])


async def _relation(repo: Repository, field: str, target: str, value: dict[str, Any]) -> Any:
    given = {k: v for k, v in value.items() if v is not None}
    if not given:
        raise InvalidPointer(
            f"You need to provide at least one operation on the relation mutation of field {field}"
        )
    added = [_pointer_to(target, object_id_of(i, target)) for i in given.get("add", [])]
    for nested in given.get("createAndAdd", []):
        created = await repo.create(target, await to_rest_body(repo, target, nested, update=False))
        added.append(_pointer_to(target, created["objectId"]))
    ops: list[dict[str, Any]] = []
    if added:
        ops.append({"__op": "AddRelation", "objects": added})
    if given.get("remove"):
        removed = [_pointer_to(target, object_id_of(i, target)) for i in given["remove"]]
        ops.append({"__op": "RemoveRelation", "objects": removed})
    if not ops:
        raise InvalidPointer(
            f"You need to provide at least one operation on the relation mutation of field {field}"
        )
    return ops[0] if len(ops) == 1 else {"__op": "Batch", "ops": ops}


def _object_selection(info: GraphQLResolveInfo, payload_field: str) -> set[str]:
    under = child_fields(info, list(info.field_nodes)).get(payload_field, [])
    return set(child_fields(info, under))


async def _read_back(
    repo: Repository, class_name: str, echo: dict[str, Any], wanted: set[str]
) -> dict[str, Any]:
    if wanted <= ECHO_FIELDS:
        return {**echo, "__className": class_name, "__echo": True}
    try:
        obj = await repo.get(class_name, echo["objectId"])
    except (ObjectNotFound, OperationForbidden):  # may write, may not read: the echo only
        return {**echo, "__className": class_name, "__echo": True}
    return {**obj, "__className": class_name}


def create_resolver(class_name: str, payload_field: str) -> Resolver:
    async def resolve(_root: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> Any:
        ctx = context_of(info)
        wanted = _object_selection(info, payload_field)

        async def write(repo: Repository) -> dict[str, Any]:
            body = await to_rest_body(repo, class_name, input.get("fields"), update=False)
            created = await repo.create(class_name, body)
            echo = {**created, "updatedAt": created["createdAt"]}
            return await _read_back(repo, class_name, echo, wanted)

        obj = await ctx.mutate(write)
        return {payload_field: obj, "clientMutationId": input.get("clientMutationId")}

    return resolve


def update_resolver(class_name: str, payload_field: str) -> Resolver:
    async def resolve(_root: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> Any:
        ctx = context_of(info)
        wanted = _object_selection(info, payload_field)
        object_id = object_id_of(input["id"], class_name)

        async def write(repo: Repository) -> dict[str, Any]:
            body = await to_rest_body(repo, class_name, input.get("fields"), update=True)
            updated = await repo.update(class_name, object_id, body)
            return await _read_back(repo, class_name, {"objectId": object_id, **updated}, wanted)

        obj = await ctx.mutate(write)
        return {payload_field: obj, "clientMutationId": input.get("clientMutationId")}

    return resolve


def delete_resolver(class_name: str, payload_field: str) -> Resolver:
    """Answers the object as it was (Parse does, so a UI can say what it removed)."""

    async def resolve(_root: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> Any:
        ctx = context_of(info)
        wanted = _object_selection(info, payload_field)
        object_id = object_id_of(input["id"], class_name)

        async def write(repo: Repository) -> dict[str, Any]:
            before = await _read_back(repo, class_name, {"objectId": object_id}, wanted)
            await repo.delete(class_name, object_id)
            return before

        obj = await ctx.mutate(write)
        return {payload_field: obj, "clientMutationId": input.get("clientMutationId")}

    return resolve
