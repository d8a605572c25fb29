"""Role membership: the identities a user's requests carry.

A user holds a role when it is in the role's ``users`` relation, or holds a role listed in its
``roles`` relation (Parse: ``roles`` names the roles that inherit this role's rights). Which role
names the server manages, and who may change them, is decided in ``security/roles.py``.
"""

from __future__ import annotations

import re

from mindharbor.errors import InvalidRoleName, ObjectNotFound
from mindharbor.security.acl import validate_acl
from mindharbor.security.roles import (
    BUILTIN_ROLES,
    STAFF_ROLES,
    care_team_role,
    emergency_role,
)
from mindharbor.storage.identity import held_role_names, roles_of
from mindharbor.storage.repository import FindQuery, Repository

__all__ = [
    "BUILTIN_ROLES",
    "STAFF_ROLES",
    "care_team_role",
    "emergency_role",
    "held_role_names",
    "roles_of",
]
ROLE_NAME_RE = re.compile(r"^[A-Za-z0-9_ -]{1,128}$")


def validate_role_name(name: object) -> str:
    if not isinstance(name, str) or not ROLE_NAME_RE.match(name):
        raise InvalidRoleName(
            "A role's name can be only contain alphanumeric characters, _, -, and spaces."
        )
    return name


async def role_id(repo: Repository, name: str) -> str | None:
    found = await repo.system().find("_Role", FindQuery(where={"name": name}, limit=1))
    return found.results[0]["objectId"] if found.results else None


async def ensure_role(repo: Repository, name: str, acl: dict[str, dict[str, bool]]) -> str:
    existing = await role_id(repo, name)
    if existing is not None:
        return existing
    created = await repo.system().create("_Role", {"name": name, "ACL": validate_acl(acl)})
    return str(created["objectId"])


async def set_membership(repo: Repository, role_name: str, user_id: str, *, member: bool) -> None:
    role = await role_id(repo, role_name)
    if role is None:
        raise ObjectNotFound(f"Role {role_name} does not exist.")
    op = "AddRelation" if member else "RemoveRelation"
    pointer = {"__type": "Pointer", "className": "_User", "objectId": user_id}
    await repo.system().update("_Role", role, {"users": {"__op": op, "objects": [pointer]}})


async def ensure_builtin_roles(repo: Repository) -> None:
    for name in BUILTIN_ROLES:
        await ensure_role(repo, name, {"role:admin": {"read": True, "write": True}})
