"""Cloud functions over GraphQL: Parse's ``callCloudCode``, the deployer's custom schema
(``@resolve`` / ``@mock``), and the deprecated MindHarbor entry points.

* ``callCloudCode(input: {functionName: hello, params: {...}})`` answers ``{result}``; the
  ``CloudCodeFunction`` enum lists every registered function (as Parse generates it).
* ``MINDHARBOR_GRAPHQL_SCHEMA`` names a GraphQL SDL file extending the generated schema, as
  Parse's ``graphQLCustomTypeDefs``: a field marked ``@resolve`` (or ``@resolve(to: "fn")``)
  calls the cloud function of its name with the field's arguments as ``params``; ``@mock(with:
  value)`` answers a constant. ``extend type Query { hello: String! @resolve }`` is the example
  of Parse's guide.
* ``callFunction(name, params)`` is MindHarbor's older entry point, kept as a deprecated alias;
  one mutation per function (``publishAssessment(params:)``) stays as a typed shortcut.

Every call runs the hook registry's function in the request's transaction, as
``POST /functions/{name}`` does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLEnumValue,
    GraphQLError,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    GraphQLString,
    ObjectTypeDefinitionNode,
    ObjectTypeExtensionNode,
    OperationType,
    extend_schema,
    parse,
)
from graphql.utilities import value_from_ast_untyped

from mindharbor.api.graphql.naming import is_graphql_name
from mindharbor.api.graphql.resolvers import Resolver, context_of
from mindharbor.api.graphql.scalars import AnyScalar, JSONScalar, ObjectScalar
from mindharbor.errors import InvalidJSON
from mindharbor.hooks import FunctionRequest
from mindharbor.storage.repository import Repository

DIRECTIVES = """
directive @resolve(to: String) on FIELD_DEFINITION
directive @mock(with: Any!) on FIELD_DEFINITION
"""
log = logging.getLogger("mindharbor.graphql")
RESERVED_ENUM_VALUES = frozenset({"true", "false", "null"})


async def call(info: GraphQLResolveInfo, name: str, params: Any) -> Any:
    """Run cloud function ``name`` as the caller, inside the request's transaction."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidJSON("params must be a JSON object.")
    ctx = context_of(info)

    def run(repo: Repository) -> Any:
        request = FunctionRequest(repo, dict(params), {"ip": ctx.client_ip})
        return repo.store.hooks.call_function(name, request)

    if info.operation.operation == OperationType.MUTATION:
        return await ctx.mutate(run)  # a failure rolls back the whole request, as any write
    return await ctx.run(run)


async def call_cloud_code(_root: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> Any:
    result = await call(info, input["functionName"], input.get("params"))
    return {"result": result, "clientMutationId": input.get("clientMutationId")}


def callable_names(functions: Iterable[str]) -> list[str]:
    return sorted(n for n in functions if is_graphql_name(n) and n not in RESERVED_ENUM_VALUES)


def call_cloud_code_field(functions: Iterable[str]) -> GraphQLField | None:
    """Parse's ``callCloudCode`` mutation (absent when no function is registered)."""
    names = callable_names(functions)
    if not names:
        return None
    enum = GraphQLEnumType(
        "CloudCodeFunction",
        {name: GraphQLEnumValue(name) for name in names},
        description="The cloud functions this server registers.",
    )
    input_type = GraphQLInputObjectType(
        "CallCloudCodeInput",
        {
            "functionName": GraphQLInputField(GraphQLNonNull(enum)),
            "params": GraphQLInputField(ObjectScalar),
            "clientMutationId": GraphQLInputField(GraphQLString),
        },
    )
    payload = GraphQLObjectType(
        "CallCloudCodePayload",
        {
            "result": GraphQLField(AnyScalar),
            "clientMutationId": GraphQLField(GraphQLString),
        },
    )
    return GraphQLField(
        payload,
        args={"input": GraphQLArgument(GraphQLNonNull(input_type))},
        resolve=call_cloud_code,
        description="Call a cloud function (as `POST /functions/{name}`).",
    )


# -- deprecated aliases -------------------------------------------------------------------------
LEGACY = "Use callCloudCode(input: {functionName, params}), Parse Server's mutation."


def legacy_function_fields(functions: Iterable[str], taken: set[str]) -> dict[str, GraphQLField]:
    async def call_function(
        _root: Any, info: GraphQLResolveInfo, name: str, params: Any = None
    ) -> Any:
        return await call(info, name, params)

    params = {"params": GraphQLArgument(JSONScalar, description="The function's parameters.")}
    fields = {
        "callFunction": GraphQLField(
            JSONScalar,
            args={"name": GraphQLArgument(GraphQLNonNull(GraphQLString)), **params},
            resolve=call_function,
            deprecation_reason=LEGACY,
        )
    }
    for name in callable_names(functions):
        if name not in taken and name not in fields:
            fields[name] = GraphQLField(
                JSONScalar,
                args=dict(params),
                resolve=_named(name),
                description=f"The `{name}` cloud function; answers its result (MindHarbor's "
                "shortcut for `callCloudCode`).",
            )
    return fields


def _named(name: str) -> Resolver:
    async def resolve(_root: Any, info: GraphQLResolveInfo, params: Any = None) -> Any:
        return await call(info, name, params)

    return resolve


# -- the deployer's schema ----------------------------------------------------------------------
def load_custom_schema(path: Path | None) -> str | None:
    """The SDL of ``MINDHARBOR_GRAPHQL_SCHEMA``, checked for syntax at start-up."""
    if path is None:
        return None
    text = path.read_text(encoding="utf-8")
    parse(DIRECTIVES + text)  # a typo fails the start, not the first request
    return text


def custom_root_fields(sdl: str | None) -> dict[str, set[str]]:
    """The root fields the deployer's SDL defines (``{"Query": {"hello"}}``): they replace any
    generated field of the same name, as Parse's custom type definitions do."""
    out: dict[str, set[str]] = {"Query": set(), "Mutation": set()}
    if not sdl:
        return out
    for definition in parse(DIRECTIVES + sdl).definitions:
        if isinstance(definition, ObjectTypeExtensionNode | ObjectTypeDefinitionNode):
            names = out.get(definition.name.value)
            if names is not None:
                names.update(f.name.value for f in definition.fields or ())
    return out


def extend_with_custom(schema: GraphQLSchema, sdl: str) -> GraphQLSchema:
    """The generated schema extended by the deployer's SDL, ``@resolve``/``@mock`` wired.

    An SDL that does not fit the current classes (it names a class not created yet) is logged
    and left out until it fits: the generated schema keeps serving meanwhile."""
    try:
        extended = extend_schema(schema, parse(DIRECTIVES + sdl))
    except (TypeError, GraphQLError) as exc:
        log.warning("MINDHARBOR_GRAPHQL_SCHEMA is not applied: %s", exc)
        return schema
    for type_ in extended.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        for field_name, field in type_.fields.items():
            node = field.ast_node
            for directive in (node.directives or ()) if node is not None else ():
                given = directive.arguments or ()
                args = {a.name.value: value_from_ast_untyped(a.value) for a in given}
                if directive.name.value == "resolve":
                    field.resolve = _custom(str(args.get("to") or field_name))
                elif directive.name.value == "mock":
                    field.resolve = _mock(args.get("with"))
    return extended


def _custom(function_name: str) -> Resolver:
    async def resolve(_root: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
        return await call(info, function_name, args)

    return resolve


def _mock(value: Any) -> Resolver:
    def resolve(_root: Any, _info: GraphQLResolveInfo, **_args: Any) -> Any:
        return value

    return resolve
