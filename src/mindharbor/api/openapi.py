"""The OpenAPI 3.1 document of the REST API, generated from the schema registry.

Like the GraphQL schema, nothing here names a clinical class: each registered class gets its
``/classes/{Class}`` paths and JSON Schemas per field type (system classes under their Parse
aliases ``/users``, ``/roles``, ``/sessions``), each cloud function a ``/functions/{name}`` entry.
``GET {mount}/openapi.json`` serves it; ``GET /docs`` renders it with the packaged Swagger UI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mindharbor import __version__
from mindharbor.api.graphql.page import docs_page
from mindharbor.storage.schema import ClassSchema, FieldSpec

if TYPE_CHECKING:
    from mindharbor.app import MindHarbor

REF = "#/components/schemas/"
ALIASES = {"_User": "/users", "_Role": "/roles", "_Session": "/sessions"}
UPDATE_OPS = ["Delete", "Increment", "Add", "AddUnique", "Remove", "AddRelation", "RemoveRelation"]


def ref(name: str) -> dict[str, str]:
    return {"$ref": REF + name}


def _typed(kind: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"__type": {"const": kind}, **properties},
        "required": ["__type", *required],
    }


def base_schemas() -> dict[str, Any]:
    """Parse's typed JSON values and the shared request/response shapes."""
    string = {"type": "string"}
    return {
        "Error": {
            "type": "object",
            "description": "Every failure. `code` is the Parse error code the SDKs switch on "
            "(absent only on 403 `unauthorized`: a bad application id or client key).",
            "properties": {"code": {"type": "integer"}, "error": string},
            "required": ["error"],
        },
        "Date": _typed("Date", {"iso": {"type": "string", "format": "date-time"}}, ["iso"]),
        "Pointer": _typed(
            "Pointer", {"className": string, "objectId": string}, ["className", "objectId"]
        ),
        "Relation": _typed("Relation", {"className": string}, ["className"]),
        "GeoPoint": _typed(
            "GeoPoint",
            {
                "latitude": {"type": "number", "minimum": -90, "maximum": 90},
                "longitude": {"type": "number", "minimum": -180, "maximum": 180},
            },
            ["latitude", "longitude"],
        ),
        "Polygon": _typed(
            "Polygon",
            {
                "coordinates": {
                    "type": "array",
                    "items": {"type": "array", "items": {"type": "number"}},
                }
            },
            ["coordinates"],
        ),
        "File": _typed("File", {"name": string, "url": string}, ["name"]),
        "Bytes": _typed("Bytes", {"base64": string}, ["base64"]),
        "ACL": {
            "type": "object",
            "description": "`*`, a user id or `role:name` → `{read, write}`.",
            "additionalProperties": {
                "type": "object",
                "properties": {"read": {"type": "boolean"}, "write": {"type": "boolean"}},
                "additionalProperties": False,
            },
        },
        "Op": {
            "type": "object",
            "description": 'An update operator, e.g. `{"__op": "Increment", "amount": 1}`.',
            "properties": {"__op": {"enum": UPDATE_OPS}},
            "required": ["__op"],
        },
        "Created": {
            "type": "object",
            "properties": {
                "objectId": string,
                "createdAt": {"type": "string", "format": "date-time"},
            },
            "required": ["objectId", "createdAt"],
        },
        "Updated": {
            "type": "object",
            "properties": {"updatedAt": {"type": "string", "format": "date-time"}},
            "required": ["updatedAt"],
        },
        "Empty": {"type": "object"},
    }


def value_schema(spec: FieldSpec) -> dict[str, Any]:
    """The JSON Schema of one field's value, as REST reads and writes it."""
    out: dict[str, Any]
    if spec.type == "String":
        out = {"type": "string"}
        if spec.enum:
            out["enum"] = list(spec.enum)
    elif spec.type == "Number":
        out = {"type": "number"}
    elif spec.type == "Boolean":
        out = {"type": "boolean"}
    elif spec.type == "Array":
        out = {"type": "array"}
    elif spec.type == "Object":
        out = {"type": "object"}
    elif spec.type in ("Date", "Pointer", "Relation", "GeoPoint", "Polygon", "File", "Bytes"):
        out = ref(spec.type)
    else:
        out = {}
    notes = [spec.description] if spec.description else []
    if spec.target_class:
        notes.append(f"{spec.type} to `{spec.target_class}`.")
    if spec.server:
        notes.append("Set by the server (read-only for clients).")
    if notes:
        out["description"] = " ".join(notes)
    return out


def class_schemas(cls: ClassSchema, name: str) -> dict[str, Any]:
    """``<Class>`` (as read), ``<Class>Write`` (a create/update body), ``<Class>List``."""
    date_time = {"type": "string", "format": "date-time"}
    read: dict[str, Any] = {
        "objectId": {"type": "string"},
        "createdAt": date_time,
        "updatedAt": date_time,
        "ACL": ref("ACL"),
    }
    write: dict[str, Any] = {"ACL": ref("ACL")}
    for spec in cls.fields.values():
        read[spec.name] = value_schema(spec)
        if not spec.server:
            value = value_schema(spec)
            if spec.type == "Relation":
                write[spec.name] = ref("Op")
            else:
                write[spec.name] = {"anyOf": [value, ref("Op")]}
    if cls.name == "_User":
        write["password"] = {"type": "string", "writeOnly": True}
    required = [s.name for s in cls.fields.values() if s.required and s.default is None]
    return {
        name: {
            "type": "object",
            "description": cls.description or f"An object of class `{cls.name}`.",
            "properties": read,
            "required": ["objectId"],
        },
        f"{name}Write": {
            "type": "object",
            "description": "Fields to write. On create, these are required: "
            + (", ".join(required) or "none")
            + ".",
            "properties": write,
            "additionalProperties": False,
        },
        f"{name}List": {
            "type": "object",
            "properties": {
                "results": {"type": "array", "items": ref(name)},
                "count": {"type": "integer"},
            },
            "required": ["results"],
        },
    }


def component_names(classes: list[ClassSchema]) -> dict[str, str]:
    """Component names per class: ``_User`` is ``User`` unless a class is called that."""
    taken = set(base_schemas()) | {c.name for c in classes}
    names: dict[str, str] = {}
    for cls in classes:
        preferred = cls.name.lstrip("_") or cls.name
        names[cls.name] = preferred if preferred == cls.name or preferred not in taken else cls.name
        taken.add(names[cls.name])
    return names


def _json_body(schema: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _responses(ok: dict[str, Any], status: str = "200") -> dict[str, Any]:
    error = {
        "description": "A Parse error.",
        "content": {"application/json": {"schema": ref("Error")}},
    }
    return {
        status: {"description": "Success.", "content": {"application/json": {"schema": ok}}},
        "400": error,
        "403": error,
        "404": error,
    }


FIND_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "where",
        "in": "query",
        "description": "A Parse query object, JSON-encoded.",
        "content": {"application/json": {"schema": {"type": "object"}}},
    },
    {
        "name": "order",
        "in": "query",
        "schema": {"type": "string"},
        "description": "e.g. `-createdAt`.",
    },
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    {"name": "skip", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    {"name": "count", "in": "query", "schema": {"type": "integer", "enum": [0, 1]}},
    {"name": "keys", "in": "query", "schema": {"type": "string"}},
    {"name": "excludeKeys", "in": "query", "schema": {"type": "string"}},
    {"name": "include", "in": "query", "schema": {"type": "string"}},
]
OBJECT_ID = {"name": "objectId", "in": "path", "required": True, "schema": {"type": "string"}}


def class_paths(cls: ClassSchema, name: str) -> dict[str, Any]:
    base = ALIASES.get(cls.name, f"/classes/{cls.name}")
    tag = [cls.name]
    paths: dict[str, Any] = {
        base: {
            "get": {
                "operationId": f"find{name}",
                "summary": f"Query {cls.name}",
                "tags": tag,
                "parameters": FIND_PARAMETERS,
                "responses": _responses(ref(f"{name}List")),
            },
        },
        base + "/{objectId}": {
            "parameters": [OBJECT_ID],
            "get": {
                "operationId": f"get{name}",
                "summary": f"Get one {cls.name}",
                "tags": tag,
                "parameters": [
                    {"name": "include", "in": "query", "schema": {"type": "string"}},
                    {"name": "keys", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": _responses(ref(name)),
            },
            "put": {
                "operationId": f"update{name}",
                "summary": f"Update a {cls.name}",
                "tags": tag,
                "requestBody": _json_body(ref(f"{name}Write")),
                "responses": _responses(ref("Updated")),
            },
            "delete": {
                "operationId": f"delete{name}",
                "summary": f"Delete a {cls.name}",
                "tags": tag,
                "responses": _responses(ref("Empty")),
            },
        },
    }
    if cls.name != "_Session":  # sessions are created by logging in
        summary = "Sign up" if cls.name == "_User" else f"Create a {cls.name}"
        paths[base]["post"] = {
            "operationId": f"create{name}",
            "summary": summary,
            "tags": tag,
            "requestBody": _json_body(ref(f"{name}Write")),
            "responses": _responses(ref("Created"), "201"),
        }
    if cls.name == "_Session":
        del paths[base + "/{objectId}"]["put"]
    return paths


def account_paths(user: str) -> dict[str, Any]:
    credentials = {
        "type": "object",
        "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
        "required": ["username", "password"],
    }
    session_user = {"allOf": [ref(user), {"properties": {"sessionToken": {"type": "string"}}}]}
    login = {
        "summary": "Log in: answers the user and a session token",
        "tags": ["Accounts"],
        "responses": _responses(session_user),
    }
    return {
        "/login": {
            "post": {**login, "operationId": "logIn", "requestBody": _json_body(credentials)},
            "get": {
                **login,
                "operationId": "logInWithQuery",
                "parameters": [
                    {"name": n, "in": "query", "required": True, "schema": {"type": "string"}}
                    for n in ("username", "password")
                ],
            },
        },
        "/logout": {
            "post": {
                "operationId": "logOut",
                "summary": "End the current session",
                "tags": ["Accounts"],
                "responses": _responses(ref("Empty")),
            }
        },
        "/users/me": {
            "get": {
                "operationId": "currentUser",
                "summary": "The session's user",
                "tags": ["Accounts"],
                "responses": _responses(session_user),
            }
        },
    }


def function_paths(functions: list[str]) -> dict[str, Any]:
    return {
        "/functions/{name}": {
            "post": {
                "operationId": "callFunction",
                "summary": "Call a cloud function (the clinical workflows live here)",
                "tags": ["Functions"],
                "parameters": [
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": functions},
                    }
                ],
                "requestBody": _json_body({"type": "object"}, required=False),
                "responses": _responses({"type": "object", "properties": {"result": {}}}),
            }
        }
    }


def batch_paths() -> dict[str, Any]:
    entry = {
        "type": "object",
        "properties": {
            "method": {"enum": ["GET", "POST", "PUT", "DELETE"]},
            "path": {"type": "string"},
            "body": {"type": "object"},
        },
        "required": ["method", "path"],
    }
    result = {
        "type": "object",
        "properties": {"success": {}, "error": ref("Error")},
    }
    body = {
        "type": "object",
        "properties": {
            "requests": {"type": "array", "items": entry},
            "transaction": {"type": "boolean"},
        },
        "required": ["requests"],
    }
    return {
        "/batch": {
            "post": {
                "operationId": "batch",
                "summary": "Several calls in one request (atomic with `transaction: true`)",
                "tags": ["Batch"],
                "requestBody": _json_body(body),
                "responses": _responses({"type": "array", "items": result}),
            }
        }
    }


def build_document(
    classes: list[ClassSchema], functions: list[str], *, mount_path: str
) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document for the current registry."""
    classes = sorted(classes, key=lambda c: c.name)
    schemas = base_schemas()
    names = component_names(classes)
    paths: dict[str, Any] = {}
    for cls in classes:
        schemas.update(class_schemas(cls, names[cls.name]))
        paths.update(class_paths(cls, names[cls.name]))
    if "_User" in names:
        paths.update(account_paths(names["_User"]))
    if functions:
        paths.update(function_paths(sorted(functions)))
    paths.update(batch_paths())
    header = {"type": "apiKey", "in": "header"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "MindHarbor REST API",
            "version": __version__,
            "description": "Parse Server's REST dialect. Every request needs "
            "`X-Parse-Application-Id`; authenticate with `X-Parse-Session-Token` (from "
            "`/login`) or, for administration, `X-Parse-Master-Key`.",
        },
        "servers": [{"url": mount_path.rstrip("/") or "/"}],
        "security": [
            {"ApplicationId": [], "SessionToken": []},
            {"ApplicationId": [], "MasterKey": []},
            {"ApplicationId": []},
        ],
        "tags": [{"name": c.name, "description": c.description or ""} for c in classes],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "ApplicationId": {**header, "name": "X-Parse-Application-Id"},
                "SessionToken": {**header, "name": "X-Parse-Session-Token"},
                "MasterKey": {**header, "name": "X-Parse-Master-Key"},
            },
        },
    }


def routes(server: MindHarbor) -> list[BaseRoute]:
    """``{mount}/openapi.json`` (before the REST catch-all) and the ``/docs`` viewer."""
    mount = server.settings.mount_path.rstrip("/")
    spec_path = f"{mount}/openapi.json"

    async def openapi_json(_request: Request) -> Response:
        store = server.store
        document = build_document(
            store.all_schemas(), sorted(store.hooks.functions), mount_path=mount
        )
        return Response(orjson.dumps(document), media_type="application/json; charset=utf-8")

    async def docs(_request: Request) -> Response:
        return docs_page(spec_path, server.settings.app_id)

    return [
        Route(spec_path, openapi_json, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
