"""Read resolvers: each decodes GraphQL arguments into the repository call REST makes.

Objects leave the repository in Parse's wire encoding (the JSON REST answers) and are tagged
with ``__className`` for interfaces and unions. ``connection`` is Parse Server's
``findObjects``: ``skip``/``first``/``after``/``last``/``before`` become one ``skip`` and
``limit`` (``last`` without ``first`` costs a count first), cursors are offsets, and ``count``
is asked of the database only when selected. Every read goes through ``Context.run`` and so
through the repository's access filter, protected fields and read audit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLResolveInfo,
    InlineFragmentNode,
)

from mindharbor.api.graphql.base_types import resolve_type_of_object
from mindharbor.api.graphql.context import Context
from mindharbor.api.graphql.ids import (
    cursor_to_offset,
    from_global_id,
    object_id_of,
    offset_to_cursor,
    to_global_id,
)
from mindharbor.api.graphql.where import to_parse_where
from mindharbor.api.rest.params import find_query
from mindharbor.errors import InvalidQuery, ObjectNotFound
from mindharbor.storage.repository import FindQuery, Repository
from mindharbor.storage.schema import FieldSpec

Resolver = Callable[..., Any]
PUBLIC_ACL = {"*": {"read": True, "write": True}}


def context_of(info: GraphQLResolveInfo) -> Context:
    ctx = info.context
    assert isinstance(ctx, Context)
    return ctx


def child_fields(info: GraphQLResolveInfo, nodes: list[FieldNode]) -> dict[str, list[FieldNode]]:
    """The fields selected under ``nodes``, by field name (aliases and fragments resolved)."""
    found: dict[str, list[FieldNode]] = {}

    def walk(selections: Any, seen: frozenset[str]) -> None:
        for node in selections:
            if isinstance(node, FieldNode):
                found.setdefault(node.name.value, []).append(node)
            elif isinstance(node, InlineFragmentNode):
                walk(node.selection_set.selections, seen)
            elif isinstance(node, FragmentSpreadNode) and node.name.value not in seen:
                fragment = info.fragments.get(node.name.value)
                if fragment is not None:
                    walk(fragment.selection_set.selections, seen | {node.name.value})

    for node in nodes:
        if node.selection_set is not None:
            walk(node.selection_set.selections, frozenset())
    return found


def tag(objects: list[dict[str, Any]], class_name: str) -> list[dict[str, Any]]:
    for obj in objects:
        obj["__className"] = class_name
    return objects


# -- field values -------------------------------------------------------------------------------
def id_resolver(class_name: str) -> Resolver:
    def resolve(obj: dict[str, Any], _info: GraphQLResolveInfo) -> str:
        return to_global_id(class_name, obj["objectId"])

    return resolve


def acl_resolver(obj: dict[str, Any], _info: GraphQLResolveInfo) -> Any:
    """The object's ACL; a stored row without one is public (``permission_lists(None)``). An
    echo of a write the caller may not read back has no ACL to show."""
    acl = obj.get("ACL")
    if acl is None:
        return None if obj.get("__echo") else PUBLIC_ACL
    return acl


def polygon_resolver(name: str) -> Resolver:
    def resolve(obj: dict[str, Any], _info: GraphQLResolveInfo) -> Any:
        value = obj.get(name)
        if not isinstance(value, dict) or not isinstance(value.get("coordinates"), list):
            return None
        return [{"latitude": c[0], "longitude": c[1]} for c in value["coordinates"]]

    return resolve


def array_resolver(name: str) -> Resolver:
    """Array elements as ``Element {value}``; a full object of a class as that class's type."""

    def resolve(obj: dict[str, Any], _info: GraphQLResolveInfo) -> Any:
        value = obj.get(name)
        if not isinstance(value, list):
            return None
        out: list[Any] = []
        for item in value:
            if (
                isinstance(item, dict)
                and item.get("__type") == "Object"
                and isinstance(item.get("className"), str)
                and isinstance(item.get("objectId"), str)
            ):
                out.append({**item, "__className": item["className"]})
            else:
                out.append({"value": item})
        return out

    return resolve


def array_member_type(value: Any, info: GraphQLResolveInfo, _type: Any) -> str | None:
    if isinstance(value, dict) and "__className" in value:
        return resolve_type_of_object(value, info, _type)
    return "Element"


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
        return await context_of(info).loader.load(str(target), object_id)

    return resolve


def relation_resolver(spec: FieldSpec, owner_class: str) -> Resolver:
    name, target = spec.name, str(spec.target_class)

    async def resolve(obj: dict[str, Any], info: GraphQLResolveInfo, **args: Any) -> Any:
        owner = {"__type": "Pointer", "className": owner_class, "objectId": obj["objectId"]}
        base = {"$relatedTo": {"object": owner, "key": name}}
        return await connection(info, target, args, base)

    return resolve


# -- connections --------------------------------------------------------------------------------
def window(args: dict[str, Any], max_limit: int) -> tuple[int, int | None, bool]:
    """(skip, limit, count first) from Relay arguments, as Parse's ``calculateSkipAndLimit``."""
    skip = 0
    limit: int | None = None
    precount = False
    if args.get("skip") is not None:
        if args["skip"] < 0:
            raise InvalidQuery("Skip should be a positive number")
        skip = args["skip"]
    if args.get("after") is not None:
        after = cursor_to_offset(args["after"])
        if after is None:
            raise InvalidQuery("After is not a valid cursor")
        skip += after + 1
    if args.get("first") is not None:
        if args["first"] < 0:
            raise InvalidQuery("First should be a positive number")
        limit = args["first"]
    if args.get("before") is not None:
        before = cursor_to_offset(args["before"])
        if before is None:
            raise InvalidQuery("Before is not a valid cursor")
        if skip >= before:
            limit = 0
        elif limit is None or skip + limit > before:
            limit = before - skip
    if args.get("last") is not None:
        last = args["last"]
        if last < 0:
            raise InvalidQuery("Last should be a positive number")
        last = min(last, max_limit)
        if limit is not None:
            if last < limit:
                skip += limit - last
                limit = last
        elif last == 0:
            limit = 0
        else:
            limit, precount = last, True
    return skip, limit, precount


async def connection(
    info: GraphQLResolveInfo,
    class_name: str,
    args: dict[str, Any],
    base_where: dict[str, Any] | None = None,
) -> dict[str, Any]:
    ctx = context_of(info)
    wanted = child_fields(info, list(info.field_nodes))
    page = child_fields(info, wanted.get("pageInfo", []))
    where = {**to_parse_where(args.get("where"), class_name, ctx.repo.schema_or_none)}
    if base_where:
        where.update(base_where)
    order = ",".join(args["order"]) if args.get("order") else None
    skip, limit, precount = window(args, ctx.settings.max_limit)
    counted = "count" in wanted or "hasPreviousPage" in page or "hasNextPage" in page
    pre: int | None = None
    if precount:
        query = find_query({"where": where, "limit": 0, "count": True}, ctx.settings)
        pre = (await ctx.run(lambda repo: repo.find(class_name, query))).count or 0
        if skip + (limit or 0) < pre:
            skip = pre - (limit or 0)
    fetch = "edges" in wanted or "pageInfo" in wanted
    params: dict[str, Any] = {"where": where, "skip": skip, "count": counted and not precount}
    params["limit"] = (ctx.settings.default_limit if limit is None else limit) if fetch else 0
    if order and params["limit"]:
        params["order"] = order
    query = find_query(params, ctx.settings)
    result = await ctx.run(lambda repo: repo.find(class_name, query))
    count = pre if pre is not None else result.count
    results = tag(result.results, class_name)
    edges = [{"cursor": offset_to_cursor(skip + n), "node": node} for n, node in enumerate(results)]
    total = count or 0
    page_info = {
        "hasPreviousPage": bool(total > 0 and skip > 0),
        "startCursor": offset_to_cursor(skip),
        "endCursor": offset_to_cursor(skip + (len(results) or 1) - 1),
        "hasNextPage": total > skip + len(results),
    }
    return {"edges": edges, "pageInfo": page_info, "count": count}


def find_resolver(class_name: str) -> Resolver:
    async def resolve(_root: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
        return await connection(info, class_name, args)

    return resolve


# -- single objects -----------------------------------------------------------------------------
async def get_object(ctx: Context, class_name: str, object_id: str) -> dict[str, Any]:
    obj = await ctx.run(lambda repo: repo.get(class_name, object_id))
    obj["__className"] = class_name
    return obj


def get_resolver(class_name: str) -> Resolver:
    async def resolve(_root: Any, info: GraphQLResolveInfo, id: str, **_: Any) -> Any:
        return await get_object(context_of(info), class_name, object_id_of(id, class_name))

    return resolve


async def node(_root: Any, info: GraphQLResolveInfo, id: str) -> Any:
    """Any object by its global id; 101 when it is not one, or names nothing you may read."""
    decoded = from_global_id(id)
    ctx = context_of(info)
    if decoded is None or ctx.repo.schema_or_none(decoded[0]) is None:
        raise ObjectNotFound()
    return await get_object(ctx, decoded[0], decoded[1])


# -- deprecated MindHarbor aliases (getX / findX / me) -------------------------------------------
def legacy_get_resolver(class_name: str) -> Resolver:
    async def resolve(_root: Any, info: GraphQLResolveInfo, objectId: str) -> Any:
        return await get_object(context_of(info), class_name, objectId)

    return resolve


def legacy_find_resolver(class_name: str) -> Resolver:
    async def resolve(_root: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
        ctx = context_of(info)
        wanted = child_fields(info, list(info.field_nodes))
        params: dict[str, Any] = {k: v for k, v in args.items() if v is not None}
        if "count" in wanted:
            params["count"] = True
            if "results" not in wanted:
                params["limit"] = 0
        query: FindQuery = find_query(params, ctx.settings)

        async def find(repo: Repository) -> Any:
            return await repo.find(class_name, query)

        result = await ctx.run(find)
        return {"results": tag(result.results, class_name), "count": result.count}

    return resolve


async def legacy_me(_root: Any, info: GraphQLResolveInfo) -> Any:
    ctx = context_of(info)
    user_id = ctx.repo.auth.user_id
    return None if user_id is None else await get_object(ctx, "_User", user_id)
