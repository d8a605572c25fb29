"""Validation of class-level permissions as a client sends them (``/schemas``, ``Parse.CLP``).

A port of Parse Server's ``validateCLP`` (SchemaController): the same checks in the same order,
the same code (107, invalid JSON) and the same messages, since the Dashboard and the SDKs show
them to the person editing permissions. One deliberate difference: Parse's ``ACL`` entry (a
default ACL for new objects) is refused, because nothing here would apply it and a permission
that is accepted but ignored is worse than one refused.
"""

from __future__ import annotations

import re
from typing import Any

from mindharbor.errors import InvalidJSON
from mindharbor.storage.schema import DEFAULT_FIELDS, FieldSpec

OPERATIONS = ("find", "count", "get", "create", "update", "delete", "addField")
VALID_KEYS = (*OPERATIONS, "readUserFields", "writeUserFields", "protectedFields")
_USER_ID = re.compile(r"^[A-Za-z0-9]{10}$")
_PERMISSION_KEY = re.compile(r"^(pointerFields|\*|requiresAuthentication|role:.*)$")
_PROTECTED_KEY = re.compile(r"^(userField:.*|\*|authenticated|role:.*)$")


def _js(value: Any) -> str:
    """How JavaScript's template strings print a JSON value (Parse's messages use them)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "[object Object]"
    if isinstance(value, list):
        return ",".join(_js(item) for item in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _pointer_field(name: Any, fields: dict[str, FieldSpec], operation: str) -> None:
    spec = fields.get(name) if isinstance(name, str) else None
    if spec is None or not (
        (spec.type == "Pointer" and spec.target_class == "_User") or spec.type == "Array"
    ):
        raise InvalidJSON(
            f"'{_js(name)}' is not a valid column for class level pointer permissions {operation}"
        )


def _protected_fields(operation: dict[str, Any], fields: dict[str, FieldSpec]) -> None:
    for entity, protected in operation.items():
        if not (_PROTECTED_KEY.match(entity) or _USER_ID.match(entity)):
            raise InvalidJSON(f"'{entity}' is not a valid key for class level permissions")
        if not isinstance(protected, list):
            raise InvalidJSON(
                f"'{_js(protected)}' is not a valid value for protectedFields[{entity}] "
                "- expected an array."
            )
        for name in protected:
            if name in DEFAULT_FIELDS:
                raise InvalidJSON(f"Default field '{_js(name)}' can not be protected")
            if name not in fields:
                raise InvalidJSON(f"Field '{_js(name)}' in protectedFields:{entity} does not exist")


def validate_clp(clp: Any, fields: dict[str, FieldSpec]) -> dict[str, Any]:
    """``clp`` if Parse would accept it for a class with ``fields``; else 107 with its message."""
    if not isinstance(clp, dict):
        raise InvalidJSON(f"'{_js(clp)}' is not a valid value for class level permissions")
    for key, operation in clp.items():
        if key not in VALID_KEYS:
            raise InvalidJSON(f"{key} is not a valid operation for class level permissions")
        if key in ("readUserFields", "writeUserFields"):
            if not isinstance(operation, list):
                raise InvalidJSON(
                    f"'{_js(operation)}' is not a valid value for class level permissions "
                    f"{key} - must be an array"
                )
            for name in operation:
                _pointer_field(name, fields, key)
            continue
        if not isinstance(operation, dict):
            raise InvalidJSON(
                f"'{_js(operation)}' is not a valid value for class level permissions "
                f"{key} - must be an object"
            )
        if key == "protectedFields":
            _protected_fields(operation, fields)
            continue
        for entity, permit in operation.items():
            if not (_PERMISSION_KEY.match(entity) or _USER_ID.match(entity)):
                raise InvalidJSON(f"'{entity}' is not a valid key for class level permissions")
            if entity == "pointerFields":
                if not isinstance(permit, list):
                    raise InvalidJSON(
                        f"'{_js(permit)}' is not a valid value for {key}[{entity}] "
                        "- expected an array."
                    )
                for name in permit:
                    _pointer_field(name, fields, "[object Object]")
                continue
            if permit is not True:
                raise InvalidJSON(
                    f"'{_js(permit)}' is not a valid value for class level permissions acl "
                    f"{key}:{entity}"
                )
    return clp
