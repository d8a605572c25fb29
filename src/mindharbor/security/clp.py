"""Class-level permissions, in Parse's format, checked before any row is touched.

``check_operation`` answers "may this caller run ``op`` on this class at all?" and, for pointer
permissions (``pointerFields`` / ``readUserFields`` / ``writeUserFields``), which pointer fields
must point at the caller: the repository turns that into a SQL predicate, so a CLP never filters
rows in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mindharbor.errors import OperationForbidden
from mindharbor.security.auth import Auth
from mindharbor.storage.schema import ClassSchema

READ_OPS = frozenset({"find", "get", "count"})


@dataclass(frozen=True, slots=True)
class ClassGrant:
    """The outcome of a CLP check: allowed, possibly only on rows whose pointers name the user."""

    pointer_fields: tuple[str, ...] | None = None  # None: no row restriction from the CLP


UNRESTRICTED = ClassGrant()


def check_operation(auth: Auth, schema: ClassSchema, op: str) -> ClassGrant:
    if auth.is_master:
        return UNRESTRICTED
    clp: dict[str, Any] = schema.clp
    perms = clp.get(op)
    if perms is None:
        return UNRESTRICTED  # Parse: an operation absent from the CLP is public
    if perms.get("*"):
        return UNRESTRICTED
    if auth.user_id and perms.get("requiresAuthentication"):
        return UNRESTRICTED
    if any(perms.get(identity) for identity in auth.identities if identity != "*"):
        return UNRESTRICTED
    pointer_fields = list(perms.get("pointerFields") or [])
    user_fields_key = "readUserFields" if op in READ_OPS else "writeUserFields"
    if op not in ("create", "addField"):
        pointer_fields += list(clp.get(user_fields_key) or [])
    if pointer_fields and auth.user_id:
        return ClassGrant(pointer_fields=tuple(pointer_fields))
    if perms.get("requiresAuthentication") and not auth.user_id:
        raise OperationForbidden("Permission denied, user needs to be authenticated.")
    raise OperationForbidden(f"Permission denied for action {op} on class {schema.name}.")
