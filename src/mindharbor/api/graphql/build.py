"""The GraphQL schema, generated from the schema registry and the hook registry: Parse Server's
shape, so Parse GraphQL clients work unchanged.

Roots, in Parse's order: ``node``; per class ``<class>(id)`` and ``<classes>(where, order,
skip, first, after, last, before)`` returning a Relay connection; ``health``, ``viewer``,
``class``/``classes``; mutations ``create/update/delete<Class>(input: {...})``, ``signUp``,
``logIn``, ``logInWith``, ``logOut``, ``resetPassword``, ``confirmResetPassword``,
``callCloudCode``, ``createClass``/``updateClass``/``deleteClass``. A deployer's SDL
(``MINDHARBOR_GRAPHQL_SCHEMA``) extends it. MindHarbor's older fields (``get<Type>``,
``find<Type>``, ``me``, ``callFunction``, one mutation per function) remain as deprecated
aliases where their names do not collide with Parse's.

Nothing here names a clinical class: a field added through ``/schemas`` appears with no code
once ``SchemaCache`` sees the registry's fingerprint change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import orjson
from graphql import (
    GraphQLArgument,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLString,
)

from mindharbor.api.graphql import base_types as T
from mindharbor.api.graphql import functions, resolvers, schema_ops, users
from mindharbor.api.graphql.classes import ClassTypeBuilder
from mindharbor.api.graphql.naming import Names, lower_first, pluralize
from mindharbor.api.graphql.scalars import JSONScalar
from mindharbor.storage.schema import ClassSchema

RESERVED_TYPE_NAMES = frozenset(
    {
        "String", "Boolean", "Int", "Float", "ID", "Query", "Mutation", "Subscription",
        "Any", "Object", "Date", "Bytes", "File", "JSON", "Upload", "FileInfo", "FileInput",
        "GeoPoint", "GeoPointInput", "Element", "ArrayResult", "ParseObject", "Node", "PageInfo",
        "ACL", "UserACL", "RoleACL", "PublicACL", "ACLInput", "UserACLInput", "RoleACLInput",
        "PublicACLInput", "SubqueryInput", "SelectInput", "SearchInput", "TextInput",
        "BoxInput", "WithinInput", "CenterSphereInput", "GeoWithinInput", "GeoIntersectsInput",
        "KeyValueInput", "ReadPreference", "ReadOptionsInput", "Viewer", "Class", "SchemaField",
        "CloudCodeFunction", "CallCloudCodeInput", "CallCloudCodePayload", "UserLoginWithInput",
        *(t.name for t in T.WHERE_INPUTS.values()), "IdWhereInput",
        *(f"{verb}Input" for verb in ("SignUp", "LogIn", "LogInWith", "LogOut", "ResetPassword")),
        *(f"{verb}Payload" for verb in ("SignUp", "LogIn", "LogInWith", "LogOut", "ResetPassword")),
        "ConfirmResetPasswordInput", "ConfirmResetPasswordPayload",
        *(f"{v}Class{s}" for v in ("Create", "Update", "Delete") for s in ("Input", "Payload")),
        *(name for name, _ in schema_ops.KINDS.values()),
        *(f"{name}Input" for name, _ in schema_ops.KINDS.values()),
        "PointerFieldInput", "RelationFieldInput", "SchemaFieldInput", "SchemaFieldsInput",
    }
)  # fmt: skip
RESERVED_QUERIES = frozenset({"node", "health", "viewer", "class", "classes", "cloudConfig"})
RESERVED_MUTATIONS = frozenset(
    {
        "signUp", "logIn", "logInWith", "logOut", "resetPassword", "confirmResetPassword",
        "sendVerificationEmail", "challenge", "createFile", "callCloudCode", "createClass",
        "updateClass", "deleteClass", "updateCloudConfig",
    }
)  # fmt: skip
LEGACY = "MindHarbor's older field; use the Parse Server field `{}`."


def parse_order(cls: ClassSchema) -> tuple[bool, str]:
    """Parse's generation order: system classes (``_User``...) first, then by name."""
    return (not cls.name.startswith("_"), cls.name)


class SchemaBuilder:
    """Builds one immutable GraphQLSchema from a snapshot of the registries."""

    def __init__(
        self, classes: list[ClassSchema], functions: Iterable[str], custom_sdl: str | None = None
    ) -> None:
        self.classes = sorted(classes, key=parse_order)
        self.functions = sorted(functions)
        self.custom_sdl = custom_sdl

    def build(self) -> GraphQLSchema:
        builder = ClassTypeBuilder(Names(set(RESERVED_TYPE_NAMES)))
        for cls in self.classes:
            builder.declare(cls)
        custom = functions.custom_root_fields(self.custom_sdl)
        queries = Names(set(RESERVED_QUERIES) | custom["Query"])
        mutations = Names(set(RESERVED_MUTATIONS) | custom["Mutation"])
        query: dict[str, GraphQLField] = {
            "node": GraphQLField(
                T.Node,
                args={"id": GraphQLArgument(GraphQLNonNull(GraphQLID))},
                resolve=resolvers.node,
                description="Any object by its Relay global id.",
            )
        }
        mutation: dict[str, GraphQLField] = {}
        for types in builder.types.values():
            cls_name, get_name = types.schema.name, lower_first(types.name)
            find_name = pluralize(get_name)
            if find_name == get_name:  # an uncountable name ("Data"): Parse has no find then
                find_name = "all" + pluralize(types.name)
            if queries.claim(get_name):
                query[get_name] = GraphQLField(
                    GraphQLNonNull(types.object),
                    args={
                        "id": GraphQLArgument(GraphQLNonNull(GraphQLID)),
                        "options": GraphQLArgument(T.ReadOptionsInput),
                    },
                    resolve=resolvers.get_resolver(cls_name),
                    description=f"One {cls_name} by global id or objectId (101 if not visible).",
                )
            if queries.claim(find_name):
                query[find_name] = GraphQLField(
                    GraphQLNonNull(types.connection),
                    args=types.find_args(),
                    resolve=resolvers.find_resolver(cls_name),
                    description=f"Find {cls_name} objects (as `GET /classes/{cls_name}`).",
                )
            for name, field in builder.mutation_fields(types).items():
                if mutations.claim(name):
                    mutation[name] = field
        extra: list[GraphQLNamedType] = [T.Element]
        schema_queries, schema_mutations, schema_types = schema_ops.schema_operations()
        extra.extend(schema_types)
        query["health"] = schema_queries.pop("health")
        user = builder.types.get("_User")
        if user is not None:
            user_queries, user_mutations = users.user_operations(user.object, user.create_fields)
            query.update(user_queries)
            mutation.update(user_mutations)
        query.update(schema_queries)
        cloud = functions.call_cloud_code_field(self.functions)
        if cloud is not None:
            mutation["callCloudCode"] = cloud
        mutation.update(schema_mutations)
        self._legacy(builder, queries, mutations, query, mutation)
        schema = GraphQLSchema(
            query=GraphQLObjectType("Query", query),
            mutation=GraphQLObjectType("Mutation", mutation),
            types=[*extra, *(t.object for t in builder.types.values())],
            extensions={
                T.TYPE_NAMES_KEY: {name: t.name for name, t in builder.types.items()},
            },
        )
        if self.custom_sdl:
            schema = functions.extend_with_custom(schema, self.custom_sdl)
        return schema

    def _legacy(
        self,
        builder: ClassTypeBuilder,
        queries: Names,
        mutations: Names,
        query: dict[str, GraphQLField],
        mutation: dict[str, GraphQLField],
    ) -> None:
        """The deprecated MindHarbor aliases, wherever their names are still free."""
        find_args = {
            "where": GraphQLArgument(JSONScalar, description="A Parse `where` object, as in REST."),
            "order": GraphQLArgument(GraphQLString, description="e.g. `-createdAt,name`."),
            "limit": GraphQLArgument(GraphQLInt),
            "skip": GraphQLArgument(GraphQLInt),
        }
        for types in builder.types.values():
            cls_name, get_name = types.schema.name, lower_first(types.name)
            if queries.claim(f"get{types.name}"):
                query[f"get{types.name}"] = GraphQLField(
                    types.object,
                    args={"objectId": GraphQLArgument(GraphQLNonNull(GraphQLID))},
                    resolve=resolvers.legacy_get_resolver(cls_name),
                    deprecation_reason=LEGACY.format(get_name),
                )
            if queries.claim(f"find{types.name}"):
                query[f"find{types.name}"] = GraphQLField(
                    types.legacy_find_result,
                    args=dict(find_args),
                    resolve=resolvers.legacy_find_resolver(cls_name),
                    deprecation_reason=LEGACY.format(pluralize(get_name)),
                )
        user = builder.types.get("_User")
        if user is not None and queries.claim("me"):
            query["me"] = GraphQLField(
                user.object, resolve=resolvers.legacy_me, deprecation_reason=LEGACY.format("viewer")
            )
        legacy = functions.legacy_function_fields(self.functions, set(mutations.taken))
        for name, field in legacy.items():
            if mutations.claim(name):
                mutation[name] = field


def fingerprint(classes: list[ClassSchema], functions: Iterable[str], custom: str | None) -> str:
    """A digest of everything the generated schema depends on."""
    data: dict[str, Any] = {
        "classes": {c.name: [c.description, c.to_store()["fields"]] for c in classes},
        "functions": sorted(functions),
        "custom": custom,
    }
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


class SchemaCache:
    """The last generated schema, rebuilt only when the registries' fingerprint changes."""

    def __init__(self, custom_sdl: str | None = None) -> None:
        self.custom_sdl = custom_sdl
        self._key: str | None = None
        self._schema: GraphQLSchema | None = None

    def get(self, classes: list[ClassSchema], functions: Iterable[str]) -> GraphQLSchema:
        functions = list(functions)
        key = fingerprint(classes, functions, self.custom_sdl)
        if self._schema is None or key != self._key:
            self._schema = SchemaBuilder(classes, functions, self.custom_sdl).build()
            self._key = key
        return self._schema
