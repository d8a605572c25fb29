"""Resolvers: each one decodes GraphQL arguments into the same repository call REST makes.

Values leave the repository in Parse's wire encoding (the one REST answers with); the resolvers
only unwrap it for GraphQL (a Date's ``iso``, a Pointer's target object). Arguments are turned
into the REST shapes (``find_query`` validates them with REST's own rules), so both faces share
ACLs, CLPs, hooks, limits and audit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from graphql import FieldNode, FragmentSpreadNode, GraphQLResolveInfo, InlineFragmentNode

from mindharbor.api.graphql.context import Context
from mindharbor.api.rest.params import find_query
from mindharbor.errors import InvalidJSON, ObjectNotFound
from mindharbor.hooks import FunctionRequest
from mindharbor.storage.repository import Repository
from mindharbor.storage.schema import FieldSpec

Resolver = Callable[..., Any]
ECHO_FIELDS = frozenset({"objectId", "createdAt", "updatedAt", "__typename"})


def _ctx(info: GraphQLResolveInfo) -> Context:
    ctx = info.context
    assert isinstance(ctx, Context)
    return ctx


def selected(info: GraphQLResolveInfo) -> set[str]:
    """Names selected directly under the current field (fragments expanded)."""
    names: set[str] = set()

    def walk(selections: Any, seen: frozenset[str]) -> None:
        for node in selections:
            if isinstance(node, FieldNode):
                names.add(node.name.value)
            elif isinstance(node, InlineFragmentNode):
                walk(node.selection_set.selections, seen)
            elif isinstance(node, FragmentSpreadNode) and node.name.value not in seen:
                fragment = info.fragments.get(node.name.value)
                if fragment is not None:
                    walk(fragment.selection_set.selections, seen | {node.name.value})

    for field_node in info.field_nodes:
        if field_node.selection_set is not None:
            walk(field_node.selection_set.selections, frozenset())
    return names


# -- field values -------------------------------------------------------------------------------
def value_resolver(spec: FieldSpec) -> Resolver:
    name = spec.name

    def resolve(obj: dict[str, Any], _info: GraphQLResolveInfo) -> Any:
        value = obj.get(name)
        if isinstance(value, dict):
            kind = value.get("__type")
            if kind == "Date":
                return value.get("iso")
            if kind == "Bytes":
                return value.get("base64")
        return value

    return resolve


def pointer_resolver(spec: FieldSpec) -> Resolver:
    """A pointer becomes its target object, loaded in a batch with every sibling row's; null
    when the target is gone or invisible to the caller (as REST's ``include`` leaves it)."""
    name, target = spec.name, spec.target_class

    async def resolve(obj: dict[str, Any], info: GraphQLResolveInfo) -> dict[str, Any] | None:
        value = obj.get(name)
        if not isinstance(value, dict) or value.get("className") != target:
            return None
        object_id = value.get("objectId")
        if not isinstance(object_id, str):
            return None
        return await _ctx(info).loader.load(str(target), object_id)

    return resolve


def relation_resolver(spec: FieldSpec) -> Resolver:
    name, target = spec.name, str(spec.target_class)

    async def resolve(obj: dict[str, Any], info: GraphQLResolveInfo, **args: Any) -> Any:
        owner_class = obj.get("__className")
        if owner_class is None:
            return None
        owner = {"__type": "Pointer", "className": owner_class, "objectId": obj["objectId"]}
        where: dict[str, Any] = {"$relatedTo": {"object": owner, "key": name}}
        extra = args.get("where")
        if extra:
            where = {"$and": [where, extra]}
        return await _find(info, target, {**args, "where": where})

    return resolve


# -- queries ------------------------------------------------------------------------------------
async def _find(info: GraphQLResolveInfo, class_name: str, args: dict[str, Any]) -> Any:
    ctx = _ctx(info)
    wanted = selected(info)
    params: dict[str, Any] = {k: v for k, v in args.items() if v is not None}
    if "count" in wanted:
        params["count"] = True
        if "results" not in wanted:
            params["limit"] = 0
    query = find_query(params, ctx.settings)
    result = await ctx.run(lambda repo: repo.find(class_name, query))
    for obj in result.results:
        obj["__className"] = class_name
    return {"results": result.results, "count": result.count}


def find_resolver(class_name: str) -> Resolver:
    async def resolve(_root: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
        return await _find(info, class_name, args)

    return resolve


async def _get(ctx: Context, class_name: str, object_id: str) -> dict[str, Any]:
    obj = await ctx.run(lambda repo: repo.get(class_name, object_id))
    obj["__className"] = class_name
    return obj


def get_resolver(class_name: str) -> Resolver:
    async def resolve(_root: Any, info: GraphQLResolveInfo, objectId: str) -> Any:
        return await _get(_ctx(info), class_name, objectId)

    return resolve


async def me(_root: Any, info: GraphQLResolveInfo) -> Any:
    ctx = _ctx(info)
    user_id = ctx.repo.auth.user_id
    return None if user_id is None else await _get(ctx, "_User", user_id)


# -- mutations ----------------------------------------------------------------------------------
def to_body(repo: Repository, class_name: str, fields: dict[str, Any], *, update: bool) -> dict:
    """GraphQL input → the REST body: typed wrappers for Date/Pointer/Bytes/GeoPoint; a null
    clears the field on update (``Delete`` op) and is left out on create."""
    schema = repo.schema_or_none(class_name)
    body: dict[str, Any] = {}
    for name, value in fields.items():
        spec = schema.field(name) if schema is not None else None
        if value is None:
            if update:
                body[name] = {"__op": "Delete"}
            continue
        if spec is None:
            body[name] = value
        elif spec.type == "Date":
            body[name] = {"__type": "Date", "iso": value}
        elif spec.type == "Pointer":
            body[name] = {"__type": "Pointer", "className": spec.target_class, "objectId": value}
        elif spec.type == "Bytes":
            body[name] = {"__type": "Bytes", "base64": value}
        elif spec.type == "GeoPoint":
            body[name] = {"__type": "GeoPoint", **value}
        else:
            body[name] = value
    return body


async def _answer(
    ctx: Context, info: GraphQLResolveInfo, class_name: str, echo: dict[str, Any]
) -> dict[str, Any]:
    """The written object: the write's echo when that is all that was asked for, else a read
    (with the caller's rights, so a write-only caller gets the echo and a 101 nowhere)."""
    if selected(info) <= ECHO_FIELDS:
        return {**echo, "__className": class_name}
    try:
        return await _get(ctx, class_name, echo["objectId"])
    except ObjectNotFound:
        return {**echo, "__className": class_name}


def create_resolver(class_name: str) -> Resolver:
    async def resolve(_root: Any, info: GraphQLResolveInfo, fields: Any = None) -> Any:
        ctx = _ctx(info)
        body = to_body(ctx.repo, class_name, dict(fields or {}), update=False)
        created = await ctx.mutate(lambda repo: repo.create(class_name, body))
        return await _answer(ctx, info, class_name, created)

    return resolve


def update_resolver(class_name: str) -> Resolver:
    async def resolve(_root: Any, info: GraphQLResolveInfo, objectId: str, fields: Any) -> Any:
        ctx = _ctx(info)
        body = to_body(ctx.repo, class_name, dict(fields), update=True)
        updated = await ctx.mutate(lambda repo: repo.update(class_name, objectId, body))
        return await _answer(ctx, info, class_name, {"objectId": objectId, **updated})

    return resolve


def delete_resolver(class_name: str) -> Resolver:
    async def resolve(_root: Any, info: GraphQLResolveInfo, objectId: str) -> str:
        await _ctx(info).mutate(lambda repo: repo.delete(class_name, objectId))
        return objectId

    return resolve


async def _call(info: GraphQLResolveInfo, name: str, params: Any) -> Any:
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidJSON("params must be a JSON object.")
    ctx = _ctx(info)

    def call(repo: Repository) -> Awaitable[Any]:
        request = FunctionRequest(repo, dict(params), {"ip": ctx.client_ip})
        return repo.store.hooks.call_function(name, request)

    return await ctx.mutate(call)


def function_resolver(name: str) -> Resolver:
    async def resolve(_root: Any, info: GraphQLResolveInfo, params: Any = None) -> Any:
        return await _call(info, name, params)

    return resolve


async def call_function(_root: Any, info: GraphQLResolveInfo, name: str, params: Any = None) -> Any:
    return await _call(info, name, params)
