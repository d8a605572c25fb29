"""Built-in role membership: the one audited way to give or take a standing role.

The built-in roles (``security/roles.py``) are server-managed: ``/roles`` refuses every change to
them, for everyone. An admin (or the master key) changes who holds them here, and each change is
audited in the same transaction. An admin cannot take the admin role from itself (a clinic must
never lock itself out by accident); another admin or the master key can.
"""

from __future__ import annotations

from typing import Any

from mindharbor.auth.roles import roles_of, set_membership
from mindharbor.domain import audit
from mindharbor.errors import ObjectNotFound, OperationForbidden, ScriptFailed
from mindharbor.hooks import FunctionRequest, Hooks
from mindharbor.security.roles import BUILTIN_ROLES, is_admin
from mindharbor.storage.codec import is_object_id
from mindharbor.storage.repository import Repository


def check_role_grant(request: FunctionRequest, *, grant: bool) -> tuple[str, str]:
    """(user id, role) of a valid grant/revoke by an admin; 119/141 otherwise."""
    auth = request.auth
    if not is_admin(auth):
        raise OperationForbidden("Only an admin changes who holds a built-in role.")
    user_id, role = request.params.get("userId"), request.params.get("role")
    if not isinstance(user_id, str) or not is_object_id(user_id):
        raise ScriptFailed("userId is required.")
    if role not in BUILTIN_ROLES:
        raise ScriptFailed("role must be one of " + ", ".join(BUILTIN_ROLES))
    if not grant and role == "admin" and user_id == auth.user_id:
        raise OperationForbidden("An admin cannot remove its own admin role.")
    return user_id, str(role)


async def do_change_role(repo: Repository, user_id: str, role: str, *, grant: bool) -> bool:
    """Add or remove the membership; returns whether anything changed."""
    if await repo.system().raw_row("_User", "objectId", user_id) is None:
        raise ObjectNotFound("User not found.")
    held = role in await roles_of(repo.system(), user_id)
    if held == grant:
        return False
    await set_membership(repo, role, user_id, member=grant)
    await audit.record(
        repo,
        "role.grant" if grant else "role.revoke",
        entity_type="_User",
        entity_id=user_id,
        summary=f"Role {role} {'granted' if grant else 'revoked'}",
        metadata={"role": role},
    )
    return True


async def my_roles(request: FunctionRequest) -> dict[str, Any]:
    """``myRoles``: the built-in roles the caller holds, so an app can choose what to offer (the
    role rows themselves are for admins). Offering is all it decides: every action is checked
    again by the server."""
    if request.auth.user_id is None:
        raise ScriptFailed("Sign in first.")
    return {"roles": sorted(set(BUILTIN_ROLES) & request.auth.roles)}


def register(hooks: Hooks) -> None:
    hooks.function("myRoles")(my_roles)

    @hooks.function("grantRole")
    async def grant_role(request: FunctionRequest) -> dict[str, Any]:
        user_id, role = check_role_grant(request, grant=True)
        changed = await do_change_role(request.repo, user_id, role, grant=True)
        return {"userId": user_id, "role": role, "member": True, "changed": changed}

    @hooks.function("revokeRole")
    async def revoke_role(request: FunctionRequest) -> dict[str, Any]:
        user_id, role = check_role_grant(request, grant=False)
        changed = await do_change_role(request.repo, user_id, role, grant=False)
        return {"userId": user_id, "role": role, "member": False, "changed": changed}
