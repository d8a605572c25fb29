"""The generated types of one Parse class, named and shaped as Parse Server 9 generates them.

For a class ``GameScore``: the object type ``GameScore`` (``id`` is the Relay global id; fields
in alphabetical order; a Pointer is the target's type, a Relation a ``<Target>Connection``),
``GameScoreConnection``/``GameScoreEdge``, ``GameScoreWhereInput`` (one ``<Kind>WhereInput`` per
field, ``OR``/``AND``/``NOR``), ``GameScoreRelationWhereInput`` (``have``/``haveNot``/``exists``),
the ``GameScoreOrder`` enum (``score_ASC``, ``score_DESC``...),
``Create/UpdateGameScoreFieldsInput``, ``GameScorePointerInput`` (``link``/``createAndLink``),
``GameScoreRelationInput`` (``add``/``remove``/``createAndAdd``) and the
``create/update/delete`` inputs and payloads.

Deliberate differences, all toward accepting what Parse accepts: required fields are not
non-null in inputs (hooks set several of them; the repository answers 142 as REST does) nor in
outputs (a protected field is absent for some callers); ``ACL`` is not a where/order key (the
access filter owns it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLEnumValue,
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
    GraphQLString,
    GraphQLUnionType,
)

from mindharbor.api.graphql import base_types as T
from mindharbor.api.graphql import mutations, resolvers
from mindharbor.api.graphql.naming import Names, graphql_class_name, is_graphql_name, lower_first
from mindharbor.api.graphql.scalars import (
    AnyScalar,
    BytesScalar,
    DateScalar,
    JSONScalar,
    ObjectScalar,
)
from mindharbor.storage.schema import ClassSchema, FieldSpec

OBJECT_FIELDS = frozenset({"id", "objectId", "createdAt", "updatedAt", "ACL"})
UNSORTABLE = frozenset({"Relation", "Array"})
SCALAR_OUTPUTS: dict[str, GraphQLOutputType] = {
    "String": GraphQLString,
    "Number": GraphQLFloat,
    "Boolean": GraphQLBoolean,
    "Object": ObjectScalar,
    "Date": DateScalar,
    "Bytes": BytesScalar,
    "File": T.FileInfo,
    "GeoPoint": T.GeoPoint,
}
SCALAR_INPUTS: dict[str, GraphQLInputType] = {
    "String": GraphQLString,
    "Number": GraphQLFloat,
    "Boolean": GraphQLBoolean,
    "Array": GraphQLList(AnyScalar),
    "Object": ObjectScalar,
    "Date": DateScalar,
    "Bytes": BytesScalar,
    "File": T.FileInput,
    "GeoPoint": T.GeoPointInput,
    "Polygon": GraphQLList(GraphQLNonNull(T.GeoPointInput)),
}


def _describe(spec: FieldSpec) -> str | None:
    parts = [spec.description] if spec.description else []
    if spec.enum:
        parts.append("One of: " + ", ".join(spec.enum) + ".")
    if spec.server:
        parts.append("Set by the server.")
    return " ".join(parts) or None


@dataclass
class ClassTypes:
    """Everything generated for one class."""

    schema: ClassSchema
    name: str
    object: GraphQLObjectType
    connection: GraphQLObjectType
    where: GraphQLInputObjectType
    relation_where: GraphQLInputObjectType
    order: GraphQLEnumType
    create_fields: GraphQLInputObjectType
    update_fields: GraphQLInputObjectType
    pointer_input: GraphQLInputObjectType
    relation_input: GraphQLInputObjectType
    legacy_find_result: GraphQLObjectType
    payload_field: str = ""
    extra: list[Any] = field(default_factory=list)

    def find_args(self) -> dict[str, GraphQLArgument]:
        return T.connection_args(self.where, self.order)


class ClassTypeBuilder:
    """Builds the types of every class; field lists are thunks, so classes may refer to each
    other (and to themselves) in any order."""

    def __init__(self, type_names: Names) -> None:
        self.names = type_names
        self.types: dict[str, ClassTypes] = {}

    def _name(self, preferred: str) -> str:
        return self.names.allocate(preferred, preferred + "_")

    def declare(self, cls: ClassSchema) -> ClassTypes:
        base = graphql_class_name(cls.name)
        name = self.names.allocate(base, cls.name if is_graphql_name(cls.name) else base + "_")
        obj = GraphQLObjectType(
            name,
            lambda: self._object_fields(cls),
            interfaces=[T.ParseObject, T.Node],
            description=cls.description
            or f"The {name} object type is used in operations that involve outputting objects "
            f"of {name} class.",
        )
        edge = GraphQLObjectType(
            self._name(f"{name}Edge"),
            {"node": GraphQLField(obj), "cursor": GraphQLField(GraphQLNonNull(GraphQLString))},
        )
        connection = GraphQLObjectType(
            self._name(f"{name}Connection"),
            {
                "pageInfo": GraphQLField(GraphQLNonNull(T.PageInfo)),
                "edges": GraphQLField(GraphQLList(edge)),
                "count": GraphQLField(
                    GraphQLNonNull(GraphQLInt),
                    description="All matches visible to you, not only this page.",
                ),
            },
        )
        where = GraphQLInputObjectType(
            self._name(f"{name}WhereInput"), lambda: self._where_fields(cls, where)
        )
        relation_where = GraphQLInputObjectType(
            self._name(f"{name}RelationWhereInput"),
            {
                "have": GraphQLInputField(where),
                "haveNot": GraphQLInputField(where),
                "exists": GraphQLInputField(GraphQLBoolean),
            },
        )
        create_fields = GraphQLInputObjectType(
            self._name(f"Create{name}FieldsInput"), lambda: self._input_fields(cls)
        )
        update_fields = GraphQLInputObjectType(
            self._name(f"Update{name}FieldsInput"), lambda: self._input_fields(cls)
        )
        pointer_input = GraphQLInputObjectType(
            self._name(f"{name}PointerInput"),
            {
                "link": GraphQLInputField(GraphQLID, description="A global id or objectId."),
                "createAndLink": GraphQLInputField(create_fields),
            },
        )
        relation_input = GraphQLInputObjectType(
            self._name(f"{name}RelationInput"),
            {
                "add": GraphQLInputField(GraphQLList(GraphQLNonNull(GraphQLID))),
                "remove": GraphQLInputField(GraphQLList(GraphQLNonNull(GraphQLID))),
                "createAndAdd": GraphQLInputField(GraphQLList(GraphQLNonNull(create_fields))),
            },
        )
        legacy = GraphQLObjectType(
            self._name(f"{name}FindResult"),
            {
                "results": GraphQLField(GraphQLNonNull(GraphQLList(GraphQLNonNull(obj)))),
                "count": GraphQLField(GraphQLInt),
            },
            description="Deprecated: the result of the `find<Class>` alias.",
        )
        types = ClassTypes(
            cls,
            name,
            obj,
            connection,
            where,
            relation_where,
            self._order(cls, name),
            create_fields,
            update_fields,
            pointer_input,
            relation_input,
            legacy,
            payload_field=lower_first(name),
        )
        self.types[cls.name] = types
        return types

    # -- object fields --------------------------------------------------------------------------
    def _object_fields(self, cls: ClassSchema) -> dict[str, GraphQLField]:
        fields: dict[str, GraphQLField] = {
            "id": GraphQLField(GraphQLNonNull(GraphQLID), resolve=resolvers.id_resolver(cls.name)),
            "objectId": GraphQLField(GraphQLNonNull(GraphQLID)),
            "createdAt": GraphQLField(DateScalar),
            "updatedAt": GraphQLField(DateScalar),
            "ACL": GraphQLField(T.ACL, resolve=resolvers.acl_resolver),
        }
        if cls.name == "_User":
            fields["authDataResponse"] = GraphQLField(ObjectScalar)
        for name in sorted(cls.fields):
            spec = cls.fields[name]
            if name in fields or not is_graphql_name(name):
                continue
            built = self._output_field(cls, spec)
            if built is not None:
                fields[name] = built
        return fields

    def _output_field(self, cls: ClassSchema, spec: FieldSpec) -> GraphQLField | None:
        description = _describe(spec)
        target = self.types.get(spec.target_class or "")
        if spec.type == "Pointer":
            if target is None:
                return GraphQLField(ObjectScalar, description=description)
            return GraphQLField(
                target.object, resolve=resolvers.pointer_resolver(spec), description=description
            )
        if spec.type == "Relation":
            if target is None:
                return None
            return GraphQLField(
                GraphQLNonNull(target.connection),
                args=target.find_args(),
                resolve=resolvers.relation_resolver(spec, cls.name),
                description=description,
            )
        if spec.type == "Array":
            return GraphQLField(
                GraphQLList(self.array_result),
                resolve=resolvers.array_resolver(spec.name),
                description=description or "Use inline fragments on ArrayResult.",
            )
        if spec.type == "Polygon":
            return GraphQLField(
                GraphQLList(GraphQLNonNull(T.GeoPoint)),
                resolve=resolvers.polygon_resolver(spec.name),
                description=description,
            )
        out = SCALAR_OUTPUTS.get(spec.type, JSONScalar)
        return GraphQLField(out, description=description)

    @property
    def array_result(self) -> GraphQLUnionType:
        union = getattr(self, "_array_result", None)
        if union is None:
            union = GraphQLUnionType(
                "ArrayResult",
                lambda: [T.Element, *(t.object for t in self.types.values())],
                resolve_type=resolvers.array_member_type,
            )
            self._array_result = union
        return union

    # -- inputs ---------------------------------------------------------------------------------
    def _input_fields(self, cls: ClassSchema) -> dict[str, GraphQLInputField]:
        fields: dict[str, GraphQLInputField] = {"ACL": GraphQLInputField(T.ACLInput)}
        if cls.name == "_User":
            fields["password"] = GraphQLInputField(GraphQLString)
        for name in sorted(cls.fields):
            spec = cls.fields[name]
            if name in OBJECT_FIELDS or name in fields or not is_graphql_name(name):
                continue
            target = self.types.get(spec.target_class or "")
            kind: GraphQLInputType | None
            if spec.type == "Pointer":
                kind = target.pointer_input if target else ObjectScalar
            elif spec.type == "Relation":
                kind = target.relation_input if target else None
            else:
                kind = SCALAR_INPUTS.get(spec.type)
            if kind is not None:
                fields[name] = GraphQLInputField(kind, description=_describe(spec))
        return fields

    def _where_fields(
        self, cls: ClassSchema, own: GraphQLInputObjectType
    ) -> dict[str, GraphQLInputField]:
        fields: dict[str, GraphQLInputField] = {
            "id": GraphQLInputField(T.IdWhereInput),
            "objectId": GraphQLInputField(T.IdWhereInput),
            "createdAt": GraphQLInputField(T.DateWhereInput),
            "updatedAt": GraphQLInputField(T.DateWhereInput),
        }
        for name in sorted(cls.fields):
            spec = cls.fields[name]
            if name in fields or name in ("OR", "AND", "NOR") or not is_graphql_name(name):
                continue
            if spec.type in ("Pointer", "Relation"):
                target = self.types.get(spec.target_class or "")
                if target is not None:
                    fields[name] = GraphQLInputField(target.relation_where)
            elif spec.type in T.WHERE_INPUTS:
                fields[name] = GraphQLInputField(T.WHERE_INPUTS[spec.type])
        compound = GraphQLList(GraphQLNonNull(own))
        for op in ("OR", "AND", "NOR"):
            fields[op] = GraphQLInputField(compound)
        last = ("id", "OR", "AND", "NOR")
        ordered = {k: fields[k] for k in sorted(fields) if k not in last}
        return {**ordered, **{k: fields[k] for k in last}}

    def _order(self, cls: ClassSchema, name: str) -> GraphQLEnumType:
        keys = sorted(
            ["objectId", "createdAt", "updatedAt"]
            + [
                n
                for n, spec in cls.fields.items()
                if spec.type not in UNSORTABLE and is_graphql_name(n)
            ]
        )
        values: dict[str, GraphQLEnumValue] = {}
        for key in [*keys, "id"]:
            column = "objectId" if key == "id" else key
            values[f"{key}_ASC"] = GraphQLEnumValue(column)
            values[f"{key}_DESC"] = GraphQLEnumValue(f"-{column}")
        return GraphQLEnumType(self._name(f"{name}Order"), values)

    # -- mutations ------------------------------------------------------------------------------
    def mutation_fields(self, types: ClassTypes) -> dict[str, GraphQLField]:
        """``create<T>``, ``update<T>``, ``delete<T>`` with Relay inputs and payloads."""
        name, payload = types.name, types.payload_field
        client_id = GraphQLInputField(GraphQLString)
        id_in = GraphQLInputField(GraphQLNonNull(GraphQLID), description="Global id or objectId.")
        shapes = {
            "create": (
                {"fields": GraphQLInputField(types.create_fields)},
                mutations.create_resolver,
            ),
            "update": (
                {"id": id_in, "fields": GraphQLInputField(types.update_fields)},
                mutations.update_resolver,
            ),
            "delete": ({"id": id_in}, mutations.delete_resolver),
        }
        out: dict[str, GraphQLField] = {}
        for verb, (inputs, make) in shapes.items():
            title = verb.capitalize()
            input_type = GraphQLInputObjectType(
                self._name(f"{title}{name}Input"), {**inputs, "clientMutationId": client_id}
            )
            payload_type = GraphQLObjectType(
                self._name(f"{title}{name}Payload"),
                {
                    payload: GraphQLField(GraphQLNonNull(types.object)),
                    "clientMutationId": GraphQLField(GraphQLString),
                },
            )
            out[f"{verb}{name}"] = GraphQLField(
                payload_type,
                args={"input": GraphQLArgument(GraphQLNonNull(input_type))},
                resolve=make(types.schema.name, payload),
                description=f"{title} an object of the {types.schema.name} class.",
            )
        return out
