"""The class-independent types of Parse Server's GraphQL schema.

Names, fields and shapes follow Parse Server 9 (``lib/GraphQL/loaders/defaultGraphQLTypes.js``):
the ``ACL`` output and ``ACLInput`` types, one ``<Kind>WhereInput`` of constraint operators per
field type, ``PageInfo``, ``ReadOptionsInput``, the ``Node`` and ``ParseObject`` interfaces.
Per-class types (``GameScore``, ``GameScoreWhereInput`` ...) are built in ``classes.py``.
"""

from __future__ import annotations

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
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLString,
)

from mindharbor.api.graphql.ids import to_global_id
from mindharbor.api.graphql.scalars import (
    AnyScalar,
    BytesScalar,
    DateScalar,
    FileScalar,
    ObjectScalar,
)

# -- files and geo ------------------------------------------------------------------------------
FileInfo = GraphQLObjectType(
    "FileInfo",
    {"name": GraphQLField(GraphQLNonNull(GraphQLString)), "url": GraphQLField(GraphQLString)},
    description="The FileInfo object type is used to return the information about files.",
)
FileInput = GraphQLInputObjectType(
    "FileInput",
    {"file": GraphQLInputField(FileScalar, description="A file already uploaded (its name).")},
    description="Link a file uploaded through `POST /files/{name}`; null unlinks it.",
)
GeoPointInput = GraphQLInputObjectType(
    "GeoPointInput",
    {
        "latitude": GraphQLInputField(GraphQLNonNull(GraphQLFloat)),
        "longitude": GraphQLInputField(GraphQLNonNull(GraphQLFloat)),
    },
)
GeoPoint = GraphQLObjectType(
    "GeoPoint",
    {
        "latitude": GraphQLField(GraphQLNonNull(GraphQLFloat)),
        "longitude": GraphQLField(GraphQLNonNull(GraphQLFloat)),
    },
)
Element = GraphQLObjectType(
    "Element",
    {"value": GraphQLField(GraphQLNonNull(AnyScalar))},
    description="One value of an Array field (objects of a class come as that class's type).",
)

# -- ACL ----------------------------------------------------------------------------------------
UserACL = GraphQLObjectType(
    "UserACL",
    {
        "userId": GraphQLField(GraphQLNonNull(GraphQLID)),
        "read": GraphQLField(GraphQLNonNull(GraphQLBoolean)),
        "write": GraphQLField(GraphQLNonNull(GraphQLBoolean)),
    },
)
RoleACL = GraphQLObjectType(
    "RoleACL",
    {
        "roleName": GraphQLField(GraphQLNonNull(GraphQLID)),
        "read": GraphQLField(GraphQLNonNull(GraphQLBoolean)),
        "write": GraphQLField(GraphQLNonNull(GraphQLBoolean)),
    },
)
PublicACL = GraphQLObjectType(
    "PublicACL", {"read": GraphQLField(GraphQLBoolean), "write": GraphQLField(GraphQLBoolean)}
)


def _acl_users(acl: dict[str, Any], _info: Any) -> list[dict[str, Any]] | None:
    users = [
        {
            "userId": to_global_id("_User", key),
            "read": bool(perms.get("read")),
            "write": bool(perms.get("write")),
        }
        for key, perms in acl.items()
        if key != "*" and not key.startswith("role:")
    ]
    return users or None


def _acl_roles(acl: dict[str, Any], _info: Any) -> list[dict[str, Any]] | None:
    roles = [
        {
            "roleName": key.removeprefix("role:"),
            "read": bool(perms.get("read")),
            "write": bool(perms.get("write")),
        }
        for key, perms in acl.items()
        if key.startswith("role:")
    ]
    return roles or None


def _acl_public(acl: dict[str, Any], _info: Any) -> dict[str, bool] | None:
    perms = acl.get("*")
    if perms is None:
        return None
    return {"read": bool(perms.get("read")), "write": bool(perms.get("write"))}


ACL = GraphQLObjectType(
    "ACL",
    {
        "users": GraphQLField(GraphQLList(GraphQLNonNull(UserACL)), resolve=_acl_users),
        "roles": GraphQLField(GraphQLList(GraphQLNonNull(RoleACL)), resolve=_acl_roles),
        "public": GraphQLField(PublicACL, resolve=_acl_public),
    },
    description="Current access control list of the current object.",
)


def _acl_entry(id_field: str, id_type: GraphQLScalarType) -> dict[str, GraphQLInputField]:
    return {
        id_field: GraphQLInputField(GraphQLNonNull(id_type)),
        "read": GraphQLInputField(GraphQLNonNull(GraphQLBoolean)),
        "write": GraphQLInputField(GraphQLNonNull(GraphQLBoolean)),
    }


UserACLInput = GraphQLInputObjectType("UserACLInput", _acl_entry("userId", GraphQLID))
RoleACLInput = GraphQLInputObjectType("RoleACLInput", _acl_entry("roleName", GraphQLString))
PublicACLInput = GraphQLInputObjectType(
    "PublicACLInput",
    {
        "read": GraphQLInputField(GraphQLNonNull(GraphQLBoolean)),
        "write": GraphQLInputField(GraphQLNonNull(GraphQLBoolean)),
    },
)
ACLInput = GraphQLInputObjectType(
    "ACLInput",
    {
        "users": GraphQLInputField(GraphQLList(GraphQLNonNull(UserACLInput))),
        "roles": GraphQLInputField(GraphQLList(GraphQLNonNull(RoleACLInput))),
        "public": GraphQLInputField(PublicACLInput),
    },
)

# -- constraints --------------------------------------------------------------------------------
SubqueryInput = GraphQLInputObjectType(
    "SubqueryInput",
    {
        "className": GraphQLInputField(GraphQLNonNull(GraphQLString)),
        "where": GraphQLInputField(GraphQLNonNull(ObjectScalar), description="A Parse `where`."),
    },
)
SelectInput = GraphQLInputObjectType(
    "SelectInput",
    {
        "query": GraphQLInputField(GraphQLNonNull(SubqueryInput)),
        "key": GraphQLInputField(GraphQLNonNull(GraphQLString)),
    },
)
SearchInput = GraphQLInputObjectType(
    "SearchInput",
    {
        "term": GraphQLInputField(GraphQLNonNull(GraphQLString)),
        "language": GraphQLInputField(GraphQLString),
        "caseSensitive": GraphQLInputField(GraphQLBoolean),
        "diacriticSensitive": GraphQLInputField(GraphQLBoolean),
    },
)
TextInput = GraphQLInputObjectType(
    "TextInput", {"search": GraphQLInputField(GraphQLNonNull(SearchInput))}
)
BoxInput = GraphQLInputObjectType(
    "BoxInput",
    {
        "bottomLeft": GraphQLInputField(GraphQLNonNull(GeoPointInput)),
        "upperRight": GraphQLInputField(GraphQLNonNull(GeoPointInput)),
    },
)
WithinInput = GraphQLInputObjectType(
    "WithinInput", {"box": GraphQLInputField(GraphQLNonNull(BoxInput))}
)
CenterSphereInput = GraphQLInputObjectType(
    "CenterSphereInput",
    {
        "center": GraphQLInputField(GraphQLNonNull(GeoPointInput)),
        "distance": GraphQLInputField(GraphQLNonNull(GraphQLFloat)),
    },
)
GeoWithinInput = GraphQLInputObjectType(
    "GeoWithinInput",
    {
        "polygon": GraphQLInputField(GraphQLList(GraphQLNonNull(GeoPointInput))),
        "centerSphere": GraphQLInputField(CenterSphereInput),
    },
)
GeoIntersectsInput = GraphQLInputObjectType(
    "GeoIntersectsInput", {"point": GraphQLInputField(GeoPointInput)}
)
KeyValueInput = GraphQLInputObjectType(
    "KeyValueInput",
    {
        "key": GraphQLInputField(GraphQLNonNull(GraphQLString)),
        "value": GraphQLInputField(GraphQLNonNull(AnyScalar)),
    },
)

_COMPARISONS = ("lessThan", "lessThanOrEqualTo", "greaterThan", "greaterThanOrEqualTo")


def _where(
    name: str,
    value: GraphQLInputType,
    *,
    compare: bool = True,
    in_lists: bool = True,
    extra: dict[str, GraphQLInputField] | None = None,
) -> GraphQLInputObjectType:
    fields: dict[str, GraphQLInputField] = {
        "equalTo": GraphQLInputField(value),
        "notEqualTo": GraphQLInputField(value),
    }
    if compare:
        fields.update({op: GraphQLInputField(value) for op in _COMPARISONS})
    if in_lists:
        fields["in"] = GraphQLInputField(GraphQLList(value))
        fields["notIn"] = GraphQLInputField(GraphQLList(value))
    fields["exists"] = GraphQLInputField(GraphQLBoolean)
    fields.update(extra or {})
    fields["inQueryKey"] = GraphQLInputField(SelectInput)
    fields["notInQueryKey"] = GraphQLInputField(SelectInput)
    return GraphQLInputObjectType(
        name,
        fields,
        description=f"The {name} input type is used in operations that involve filtering "
        "objects by a field of this type.",
    )


_REGEX = {
    "matchesRegex": GraphQLInputField(GraphQLString),
    "options": GraphQLInputField(GraphQLString),
}
IdWhereInput = _where("IdWhereInput", GraphQLID)
StringWhereInput = _where(
    "StringWhereInput", GraphQLString, extra={**_REGEX, "text": GraphQLInputField(TextInput)}
)
NumberWhereInput = _where("NumberWhereInput", GraphQLFloat)
BooleanWhereInput = _where("BooleanWhereInput", GraphQLBoolean, compare=False, in_lists=False)
ArrayWhereInput = _where(
    "ArrayWhereInput",
    AnyScalar,
    extra={
        "containedBy": GraphQLInputField(GraphQLList(AnyScalar)),
        "contains": GraphQLInputField(GraphQLList(AnyScalar)),
    },
)
ObjectWhereInput = _where("ObjectWhereInput", KeyValueInput)
DateWhereInput = _where("DateWhereInput", DateScalar)
BytesWhereInput = _where("BytesWhereInput", BytesScalar)
FileWhereInput = _where("FileWhereInput", FileScalar, extra=dict(_REGEX))
GeoPointWhereInput = GraphQLInputObjectType(
    "GeoPointWhereInput",
    {
        "exists": GraphQLInputField(GraphQLBoolean),
        "nearSphere": GraphQLInputField(GeoPointInput),
        "maxDistance": GraphQLInputField(GraphQLFloat),
        "maxDistanceInRadians": GraphQLInputField(GraphQLFloat),
        "maxDistanceInMiles": GraphQLInputField(GraphQLFloat),
        "maxDistanceInKilometers": GraphQLInputField(GraphQLFloat),
        "within": GraphQLInputField(WithinInput),
        "geoWithin": GraphQLInputField(GeoWithinInput),
    },
)
PolygonWhereInput = GraphQLInputObjectType(
    "PolygonWhereInput",
    {
        "exists": GraphQLInputField(GraphQLBoolean),
        "geoIntersects": GraphQLInputField(GeoIntersectsInput),
    },
)
WHERE_INPUTS: dict[str, GraphQLInputObjectType] = {
    "String": StringWhereInput,
    "Number": NumberWhereInput,
    "Boolean": BooleanWhereInput,
    "Array": ArrayWhereInput,
    "Object": ObjectWhereInput,
    "Date": DateWhereInput,
    "Bytes": BytesWhereInput,
    "File": FileWhereInput,
    "GeoPoint": GeoPointWhereInput,
    "Polygon": PolygonWhereInput,
}

# -- queries, pages, interfaces -----------------------------------------------------------------
ReadPreference = GraphQLEnumType(
    "ReadPreference",
    {
        name: GraphQLEnumValue(name)
        for name in ("PRIMARY", "PRIMARY_PREFERRED", "SECONDARY", "SECONDARY_PREFERRED", "NEAREST")
    },
    description="Accepted for compatibility: MindHarbor reads from the primary.",
)
ReadOptionsInput = GraphQLInputObjectType(
    "ReadOptionsInput",
    {
        "readPreference": GraphQLInputField(ReadPreference),
        "includeReadPreference": GraphQLInputField(ReadPreference),
        "subqueryReadPreference": GraphQLInputField(ReadPreference),
    },
)
PageInfo = GraphQLObjectType(
    "PageInfo",
    {
        "hasNextPage": GraphQLField(GraphQLNonNull(GraphQLBoolean)),
        "hasPreviousPage": GraphQLField(GraphQLNonNull(GraphQLBoolean)),
        "startCursor": GraphQLField(GraphQLString),
        "endCursor": GraphQLField(GraphQLString),
    },
)


def connection_args(where: GraphQLInputType, order: GraphQLInputType) -> dict[str, Any]:
    """The arguments of every find (``gameScores(...)``) and Relation field, as in Parse."""
    return {
        "where": GraphQLArgument(where),
        "order": GraphQLArgument(GraphQLList(GraphQLNonNull(order))),
        "skip": GraphQLArgument(GraphQLInt),
        "after": GraphQLArgument(GraphQLString),
        "first": GraphQLArgument(GraphQLInt),
        "before": GraphQLArgument(GraphQLString),
        "last": GraphQLArgument(GraphQLInt),
        "options": GraphQLArgument(ReadOptionsInput),
    }


TYPE_NAMES_KEY = "mindharbor.typeNames"  # schema extension: Parse class name -> GraphQL type


def _type_of_object(value: Any, info: Any, _type: Any) -> str | None:
    """Interfaces and unions name the concrete type from the class the object came from."""
    if isinstance(value, dict):
        class_name = value.get("__className")
        names = (info.schema.extensions or {}).get(TYPE_NAMES_KEY, {})
        return names.get(class_name) if isinstance(class_name, str) else None
    return None


Node = GraphQLInterfaceType(
    "Node",
    {"id": GraphQLField(GraphQLNonNull(GraphQLID), description="The Relay global id.")},
    resolve_type=_type_of_object,
    description="An object with a Relay global id.",
)
ParseObject = GraphQLInterfaceType(
    "ParseObject",
    {
        "objectId": GraphQLField(GraphQLNonNull(GraphQLID)),
        "createdAt": GraphQLField(DateScalar),
        "updatedAt": GraphQLField(DateScalar),
        "ACL": GraphQLField(ACL),
    },
    resolve_type=_type_of_object,
    description="The ParseObject interface type is used as a base type for the auto generated "
    "object types.",
)
resolve_type_of_object = _type_of_object
