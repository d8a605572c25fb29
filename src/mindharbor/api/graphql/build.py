"""The GraphQL schema, generated from the schema registry (and the hook registry's functions).

Nothing here names a clinical class: each registered class becomes an object type, a find result
type and an input type, and gets ``get<Type>`` / ``find<Type>`` queries and
``create<Type>`` / ``update<Type>`` / ``delete<Type>`` mutations; every cloud function becomes a
mutation. A field added through ``/schemas`` therefore appears in GraphQL with no code, once
``SchemaCache`` sees the registry's fingerprint change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson
from graphql import (
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLField,
    GraphQLFloat,
    GraphQLID,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLString,
)

from mindharbor.api.graphql import resolvers
from mindharbor.api.graphql.scalars import DateTimeScalar, JSONScalar
from mindharbor.storage.schema import ClassSchema, FieldSpec

GRAPHQL_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
BUILTIN_TYPE_NAMES = frozenset(
    {
        "Query",
        "Mutation",
        "Subscription",
        "JSON",
        "DateTime",
        "GeoPoint",
        "GeoPointInput",
        "FileInfo",
        "String",
        "Int",
        "Float",
        "Boolean",
        "ID",
    }
)

GeoPointType = GraphQLObjectType(
    "GeoPoint",
    {"latitude": GraphQLField(GraphQLFloat), "longitude": GraphQLField(GraphQLFloat)},
)
GeoPointInput = GraphQLInputObjectType(
    "GeoPointInput",
    {
        "latitude": GraphQLInputField(GraphQLNonNull(GraphQLFloat)),
        "longitude": GraphQLInputField(GraphQLNonNull(GraphQLFloat)),
    },
)
FileInfoType = GraphQLObjectType(
    "FileInfo", {"name": GraphQLField(GraphQLString), "url": GraphQLField(GraphQLString)}
)


def is_graphql_name(name: str) -> bool:
    return bool(name) and not name[0].isdigit() and set(name) <= GRAPHQL_NAME_CHARS


@dataclass
class Names:
    """GraphQL type names for classes: ``_User`` is ``User`` unless that name is taken."""

    taken: set[str] = field(default_factory=lambda: set(BUILTIN_TYPE_NAMES))

    def allocate(self, preferred: str, fallback: str) -> str:
        for candidate in (preferred, fallback):
            if candidate not in self.taken and not candidate.startswith("__"):
                self.taken.add(candidate)
                return candidate
        n = 2
        while f"{fallback}{n}" in self.taken:
            n += 1
        self.taken.add(f"{fallback}{n}")
        return f"{fallback}{n}"


@dataclass
class ClassTypes:
    """The generated types of one class."""

    schema: ClassSchema
    name: str
    object: GraphQLObjectType
    find_result: GraphQLObjectType
    input: GraphQLInputObjectType


def find_args() -> dict[str, GraphQLArgument]:
    return {
        "where": GraphQLArgument(JSONScalar, description="A Parse `where` object, as in REST."),
        "order": GraphQLArgument(GraphQLString, description="e.g. `-createdAt,name`."),
        "limit": GraphQLArgument(GraphQLInt),
        "skip": GraphQLArgument(GraphQLInt),
    }


class SchemaBuilder:
    """Builds one immutable GraphQLSchema from a snapshot of the registry."""

    def __init__(self, classes: list[ClassSchema], functions: Iterable[str]) -> None:
        self.classes = sorted(classes, key=lambda c: c.name)
        self.functions = sorted(functions)
        self.types: dict[str, ClassTypes] = {}

    def build(self) -> GraphQLSchema:
        names = Names()
        type_names = {
            c.name: names.allocate(c.name.lstrip("_") or c.name, c.name) for c in self.classes
        }
        for cls in self.classes:
            self._class_types(cls, type_names[cls.name], names)
        query = GraphQLObjectType("Query", self._query_fields)
        mutation = GraphQLObjectType("Mutation", self._mutation_fields)
        return GraphQLSchema(query=query, mutation=mutation)

    # -- per class ------------------------------------------------------------------------------
    def _class_types(self, cls: ClassSchema, name: str, names: Names) -> None:
        obj = GraphQLObjectType(
            name,
            lambda: self._object_fields(cls),
            description=cls.description or f"Objects of the Parse class `{cls.name}`.",
        )
        find_result = GraphQLObjectType(
            names.allocate(f"{name}FindResult", f"{name}FindResult_"),
            {
                "results": GraphQLField(GraphQLNonNull(GraphQLList(GraphQLNonNull(obj)))),
                "count": GraphQLField(
                    GraphQLInt, description="Total matches visible to you (ignores limit)."
                ),
            },
        )
        input_type = GraphQLInputObjectType(
            names.allocate(f"{name}Input", f"{name}Input_"),
            lambda: self._input_fields(cls),
            description=f"Fields to write on `{cls.name}`; null clears a field on update.",
        )
        self.types[cls.name] = ClassTypes(cls, name, obj, find_result, input_type)

    def _object_fields(self, cls: ClassSchema) -> dict[str, GraphQLField]:
        fields: dict[str, GraphQLField] = {
            "objectId": GraphQLField(GraphQLNonNull(GraphQLID)),
            "createdAt": GraphQLField(DateTimeScalar),
            "updatedAt": GraphQLField(DateTimeScalar),
            "ACL": GraphQLField(JSONScalar),
        }
        for spec in cls.fields.values():
            if spec.name in fields or not is_graphql_name(spec.name):
                continue
            built = self._output_field(spec)
            if built is not None:
                fields[spec.name] = built
        return fields

    def _output_field(self, spec: FieldSpec) -> GraphQLField | None:
        description = _describe(spec)
        target = self.types.get(spec.target_class or "")
        if spec.type == "Pointer" and target is not None:
            return GraphQLField(
                target.object,
                resolve=resolvers.pointer_resolver(spec),
                description=description or f"Pointer to {spec.target_class}, resolved.",
            )
        if spec.type == "Relation" and target is not None:
            return GraphQLField(
                target.find_result,
                args=find_args(),
                resolve=resolvers.relation_resolver(spec),
                description=description or f"Relation to {spec.target_class}.",
            )
        outputs: dict[str, GraphQLOutputType] = {
            "String": GraphQLString,
            "Number": GraphQLFloat,
            "Boolean": GraphQLBoolean,
            "Date": DateTimeScalar,
            "GeoPoint": GeoPointType,
            "File": FileInfoType,
            "Bytes": GraphQLString,
        }
        out = outputs.get(spec.type, JSONScalar)
        return GraphQLField(out, resolve=resolvers.value_resolver(spec), description=description)

    def _input_fields(self, cls: ClassSchema) -> dict[str, GraphQLInputField]:
        fields: dict[str, GraphQLInputField] = {"ACL": GraphQLInputField(JSONScalar)}
        for spec in cls.fields.values():
            if spec.name in fields or not is_graphql_name(spec.name):
                continue
            fields[spec.name] = GraphQLInputField(_input_type(spec), description=_describe(spec))
        return fields

    # -- roots ----------------------------------------------------------------------------------
    def _query_fields(self) -> dict[str, GraphQLField]:
        fields: dict[str, GraphQLField] = {}
        for types in self.types.values():
            cls_name = types.schema.name
            fields[f"get{types.name}"] = GraphQLField(
                types.object,
                args={"objectId": GraphQLArgument(GraphQLNonNull(GraphQLID))},
                resolve=resolvers.get_resolver(cls_name),
                description=f"One `{cls_name}` by id (101 when missing or not visible to you).",
            )
            fields[f"find{types.name}"] = GraphQLField(
                types.find_result,
                args=find_args(),
                resolve=resolvers.find_resolver(cls_name),
                description=f"Query `{cls_name}` with a Parse `where`, as `GET /classes`.",
            )
        user = self.types.get("_User")
        if user is not None and "me" not in fields:
            fields["me"] = GraphQLField(
                user.object, resolve=resolvers.me, description="The session's own user."
            )
        return fields

    def _mutation_fields(self) -> dict[str, GraphQLField]:
        fields: dict[str, GraphQLField] = {}
        for types in self.types.values():
            cls_name = types.schema.name
            fields[f"create{types.name}"] = GraphQLField(
                types.object,
                args={"fields": GraphQLArgument(types.input)},
                resolve=resolvers.create_resolver(cls_name),
                description=f"Create a `{cls_name}` (as `POST /classes/{cls_name}`).",
            )
            fields[f"update{types.name}"] = GraphQLField(
                types.object,
                args={
                    "objectId": GraphQLArgument(GraphQLNonNull(GraphQLID)),
                    "fields": GraphQLArgument(GraphQLNonNull(types.input)),
                },
                resolve=resolvers.update_resolver(cls_name),
            )
            fields[f"delete{types.name}"] = GraphQLField(
                GraphQLID,
                args={"objectId": GraphQLArgument(GraphQLNonNull(GraphQLID))},
                resolve=resolvers.delete_resolver(cls_name),
                description="Delete; answers the deleted object's id.",
            )
        params = {"params": GraphQLArgument(JSONScalar, description="The function's parameters.")}
        fields["callFunction"] = GraphQLField(
            JSONScalar,
            args={"name": GraphQLArgument(GraphQLNonNull(GraphQLString)), **params},
            resolve=resolvers.call_function,
            description="Call any cloud function by name (as `POST /functions/{name}`).",
        )
        for name in self.functions:
            if is_graphql_name(name) and name not in fields:
                fields[name] = GraphQLField(
                    JSONScalar,
                    args=dict(params),
                    resolve=resolvers.function_resolver(name),
                    description=f"The `{name}` cloud function; answers its result.",
                )
        return fields


def _describe(spec: FieldSpec) -> str | None:
    parts = [spec.description] if spec.description else []
    if spec.enum:
        parts.append("One of: " + ", ".join(spec.enum) + ".")
    if spec.server:
        parts.append("Set by the server.")
    return " ".join(parts) or None


def _input_type(spec: FieldSpec) -> GraphQLInputType:
    inputs: dict[str, GraphQLInputType] = {
        "String": GraphQLString,
        "Number": GraphQLFloat,
        "Boolean": GraphQLBoolean,
        "Date": DateTimeScalar,
        "Pointer": GraphQLID,
        "GeoPoint": GeoPointInput,
        "Bytes": GraphQLString,
    }
    return inputs.get(spec.type, JSONScalar)


def fingerprint(classes: list[ClassSchema], functions: Iterable[str]) -> str:
    """A digest of everything the generated schema depends on."""
    data = {
        "classes": {c.name: [c.description, c.to_store()["fields"]] for c in classes},
        "functions": sorted(functions),
    }
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


class SchemaCache:
    """The last generated schema, rebuilt only when the registry's fingerprint changes."""

    def __init__(self) -> None:
        self._key: str | None = None
        self._schema: GraphQLSchema | None = None

    def get(self, classes: list[ClassSchema], functions: Iterable[str]) -> GraphQLSchema:
        functions = list(functions)
        key = fingerprint(classes, functions)
        if self._schema is None or key != self._key:
            self._schema = SchemaBuilder(classes, functions).build()
            self._key = key
        return self._schema
