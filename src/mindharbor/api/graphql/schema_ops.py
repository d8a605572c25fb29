"""Parse Server's schema operations and health check over GraphQL.

``health``; ``class(name)`` / ``classes``; ``createClass`` / ``updateClass`` / ``deleteClass``
(``schemaFields: {addStrings: [{name}], addPointers: [{name, targetClassName}], remove: ...}``).
Schema operations need the master key (119 otherwise, as Parse answers) and run REST's own
``/schemas`` handlers, so validation, reserved names and the audit are the same.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLString,
)

from mindharbor.api.graphql.resolvers import context_of
from mindharbor.api.rest import schemas
from mindharbor.api.rest.request import ApiRequest
from mindharbor.errors import OperationForbidden
from mindharbor.storage.repository import Repository

# Parse type → (the SchemaField type's name, the SchemaFieldsInput list that adds it).
KINDS = {
    "String": ("SchemaStringField", "addStrings"),
    "Number": ("SchemaNumberField", "addNumbers"),
    "Boolean": ("SchemaBooleanField", "addBooleans"),
    "Array": ("SchemaArrayField", "addArrays"),
    "Object": ("SchemaObjectField", "addObjects"),
    "Date": ("SchemaDateField", "addDates"),
    "File": ("SchemaFileField", "addFiles"),
    "GeoPoint": ("SchemaGeoPointField", "addGeoPoint"),
    "Polygon": ("SchemaPolygonField", "addPolygons"),
    "Bytes": ("SchemaBytesField", "addBytes"),
    "Pointer": ("SchemaPointerField", "addPointers"),
    "Relation": ("SchemaRelationField", "addRelations"),
    "ACL": ("SchemaACLField", None),
}
TARGETED = frozenset({"Pointer", "Relation"})


def _field_type(value: Any, _info: Any, _type: Any) -> str:
    return KINDS.get(value.get("type"), KINDS["String"])[0]


def _class_out(parse_schema: dict[str, Any]) -> dict[str, Any]:
    fields = [
        {"name": name, "type": spec["type"], "targetClassName": spec.get("targetClass")}
        for name, spec in parse_schema["fields"].items()
    ]
    return {"name": parse_schema["className"], "schemaFields": fields}


def _rest_fields(schema_fields: dict[str, Any] | None) -> dict[str, Any]:
    """``SchemaFieldsInput`` → the ``fields`` of a ``/schemas`` body."""
    out: dict[str, Any] = {}
    for kind, (_name, input_name) in KINDS.items():
        given = (schema_fields or {}).get(input_name) if input_name else None
        if given is None:
            continue
        for entry in given if isinstance(given, list) else [given]:
            spec = {"type": kind}
            if kind in TARGETED:
                spec["targetClass"] = entry["targetClassName"]
            out[entry["name"]] = spec
    for entry in (schema_fields or {}).get("remove") or []:
        out[entry["name"]] = {"__op": "Delete"}
    return out


def _request(repo: Repository, method: str, name: str, body: dict[str, Any]) -> ApiRequest:
    if not repo.auth.is_master:
        raise OperationForbidden("unauthorized: master key is required")
    return ApiRequest(
        method=method,
        path=f"/schemas/{name}",
        body=body,
        auth=repo.auth,
        path_params={"className": name},
    )


# -- resolvers ----------------------------------------------------------------------------------
def health(_root: Any, _info: GraphQLResolveInfo) -> bool:
    return True


async def get_class(_root: Any, info: GraphQLResolveInfo, name: str) -> Any:
    async def read(repo: Repository) -> Any:
        return (await schemas.get_schema(repo, _request(repo, "GET", name, {}))).body

    return _class_out(await context_of(info).run(read))


async def list_classes(_root: Any, info: GraphQLResolveInfo) -> Any:
    async def read(repo: Repository) -> Any:
        return (await schemas.list_schemas(repo, _request(repo, "GET", "", {}))).body

    return [_class_out(s) for s in (await context_of(info).run(read))["results"]]


def _writer(method: str) -> Any:
    handler = {
        "POST": schemas.create_schema,
        "PUT": schemas.update_schema,
        "DELETE": schemas.delete_schema,
    }[method]

    async def resolve(_root: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> Any:
        name = input["name"]

        async def write(repo: Repository) -> Any:
            body: dict[str, Any] = {"className": name}
            if method != "DELETE":
                body["fields"] = _rest_fields(input.get("schemaFields"))
                return (await handler(repo, _request(repo, method, name, body))).body
            before = (await schemas.get_schema(repo, _request(repo, "GET", name, {}))).body
            await handler(repo, _request(repo, method, name, body))
            return before

        out = _class_out(await context_of(info).mutate(write))
        return {"class": out, "clientMutationId": input.get("clientMutationId")}

    return resolve


# -- schema -------------------------------------------------------------------------------------
def schema_operations() -> tuple[
    dict[str, GraphQLField], dict[str, GraphQLField], list[GraphQLNamedType]
]:
    """(queries, mutations, field types): health and Parse's class management."""
    name = {"name": GraphQLField(GraphQLNonNull(GraphQLString))}
    target = {"targetClassName": GraphQLField(GraphQLNonNull(GraphQLString))}
    interface = GraphQLInterfaceType("SchemaField", name, resolve_type=_field_type)
    outputs: list[GraphQLNamedType] = []
    for kind, (type_name, _input) in KINDS.items():
        fields = {**name, **target} if kind in TARGETED else dict(name)
        outputs.append(GraphQLObjectType(type_name, fields, interfaces=[interface]))
    class_type = GraphQLObjectType(
        "Class",
        {
            **name,
            "schemaFields": GraphQLField(GraphQLNonNull(GraphQLList(GraphQLNonNull(interface)))),
        },
    )
    name_in = {"name": GraphQLInputField(GraphQLNonNull(GraphQLString))}
    targeted_in = {**name_in, "targetClassName": GraphQLInputField(GraphQLNonNull(GraphQLString))}
    inputs: dict[str, GraphQLInputField] = {}
    for kind, (type_name, input_name) in KINDS.items():
        if input_name is None:
            continue
        if kind in TARGETED:
            entry = GraphQLInputObjectType(f"{kind}FieldInput", targeted_in)
        else:
            entry = GraphQLInputObjectType(f"{type_name}Input", name_in)
        many = kind != "GeoPoint"  # a class has at most one GeoPoint field, as in Parse
        inputs[input_name] = GraphQLInputField(
            GraphQLList(GraphQLNonNull(entry)) if many else entry
        )
    remove = GraphQLInputObjectType("SchemaFieldInput", name_in)
    inputs["remove"] = GraphQLInputField(GraphQLList(GraphQLNonNull(remove)))
    fields_input = GraphQLInputObjectType("SchemaFieldsInput", inputs)

    def mutation(verb: str, method: str, with_fields: bool) -> GraphQLField:
        in_fields = dict(name_in)
        if with_fields:
            in_fields["schemaFields"] = GraphQLInputField(fields_input)
        in_fields["clientMutationId"] = GraphQLInputField(GraphQLString)
        payload = GraphQLObjectType(
            f"{verb}ClassPayload",
            {
                "class": GraphQLField(GraphQLNonNull(class_type)),
                "clientMutationId": GraphQLField(GraphQLString),
            },
        )
        input_type = GraphQLInputObjectType(f"{verb}ClassInput", in_fields)
        return GraphQLField(
            payload,
            args={"input": GraphQLArgument(GraphQLNonNull(input_type))},
            resolve=_writer(method),
            description=f"{verb} a class (as `{method} /schemas/{{className}}`; master key).",
        )

    queries = {
        "health": GraphQLField(GraphQLNonNull(GraphQLBoolean), resolve=health),
        "class": GraphQLField(
            GraphQLNonNull(class_type),
            args={"name": GraphQLArgument(GraphQLNonNull(GraphQLString))},
            resolve=get_class,
            description="One class's schema (master key).",
        ),
        "classes": GraphQLField(
            GraphQLNonNull(GraphQLList(GraphQLNonNull(class_type))),
            resolve=list_classes,
            description="Every class's schema (master key).",
        ),
    }
    mutations = {
        "createClass": mutation("Create", "POST", True),
        "updateClass": mutation("Update", "PUT", True),
        "deleteClass": mutation("Delete", "DELETE", False),
    }
    return queries, mutations, outputs
