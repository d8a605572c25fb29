"""Rules for the identity classes ``_User``, ``_Role`` and ``_Session``, as save hooks.

They apply however a write arrives (``/users``, ``/classes/_User``, ``/batch``, GraphQL later),
because they hang off the one object service rather than a route.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from mindharbor.auth import linking, sessions
from mindharbor.auth.passwords import check_policy, hash_password_async
from mindharbor.auth.roles import validate_role_name
from mindharbor.domain import audit
from mindharbor.errors import (
    EmailTaken,
    InvalidEmail,
    InvalidRoleName,
    PasswordMissing,
    UsernameMissing,
    UsernameTaken,
)
from mindharbor.hooks import AfterSave, DeleteRequest, Hooks, SaveRequest
from mindharbor.security.roles import check_role_change
from mindharbor.storage.codec import utcnow
from mindharbor.storage.identity import username_key
from mindharbor.storage.repository import FindQuery, Repository

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


async def _taken(repo: Repository, field: str, value: str, object_id: str) -> bool:
    found = await repo.system().find(
        "_User", FindQuery(where={field: value, "objectId": {"$ne": object_id}}, limit=1)
    )
    return bool(found.results)


def normalize_email(value: Any) -> str:
    if not isinstance(value, str) or not EMAIL_RE.match(value) or len(value) > 254:
        raise InvalidEmail()
    return value.strip().lower()


async def _check_identity_fields(request: SaveRequest) -> None:
    body, repo = request.body, request.repo
    if "username" in body:
        username = body["username"]
        if not isinstance(username, str) or not username.strip() or len(username) > 128:
            raise UsernameMissing()
        body["username"] = unicodedata.normalize("NFC", username)
        key = username_key(username)
        found = await repo.system().raw_row("_User", "_username_key", key)
        if found is not None and found["objectId"] != request.object_id:
            raise UsernameTaken()
        if await _taken(repo, "username", body["username"], request.object_id):
            raise UsernameTaken()  # an exact legacy name without a key
        request.hidden["_username_key"] = key
    if body.get("email") is not None:
        body["email"] = normalize_email(body["email"])
        if await _taken(repo, "email", body["email"], request.object_id):
            raise EmailTaken()
        if not request.is_new:
            request.server_values["emailVerified"] = False
            request.hidden["_reset_token_hash"] = None


def register(hooks: Hooks) -> None:
    @hooks.on_before_save("_User")
    async def user_before_save(request: SaveRequest) -> None:
        body = request.body
        # Accounts made by single sign-on (the server, with authData) have no password.
        sso = request.auth.is_system and "authData" in body
        if request.is_new and not sso and not body.get("username"):
            raise UsernameMissing()
        await _check_identity_fields(request)
        password = body.pop("password", None)
        if request.is_new and password is None and not sso:
            raise PasswordMissing()
        if password is not None:
            username = body.get("username") or (request.original or {}).get("username")
            check_policy(password, request.repo.store.settings, username)
            request.hidden["_hashed_password"] = await hash_password_async(
                password, request.repo.store.settings
            )
            request.hidden["_password_changed_at"] = utcnow()
            request.hidden["_reset_token_hash"] = None  # an emailed reset link dies with it
            if not request.is_new:
                request.context["password_changed"] = True
        # linkWith / unlink / the anonymous upgrade on the owner's own account (settings).
        await linking.apply_auth_data(request, password_set=password is not None)
        if not request.auth.is_master:
            body.pop("ACL", None)  # account rows are private: the server decides
        if request.is_new:
            request.acl = {
                request.object_id: {"read": True, "write": True},
                "role:admin": {"read": True},
            }

    @hooks.on_after_save("_User")
    async def user_after_save(event: AfterSave) -> None:
        if event.context.get("password_changed"):
            # A changed password ends every other session of the account.
            await sessions.revoke_user_sessions(
                event.repo, event.object_id, keep=event.repo.auth.session_id
            )
            await audit.record(
                event.repo,
                "user.password_change",
                entity_type="_User",
                entity_id=event.object_id,
                summary="Password changed",
            )

    @hooks.on_after_delete("_User")
    async def user_after_delete(request: DeleteRequest) -> None:
        user_id = str(request.row["objectId"])
        await sessions.revoke_user_sessions(request.repo, user_id)
        await audit.record(
            request.repo,
            "user.delete",
            entity_type="_User",
            entity_id=user_id,
            summary="Account deleted",
        )

    @hooks.on_before_save("_Role")
    async def role_before_save(request: SaveRequest) -> None:
        body, original = request.body, request.original
        name = body.get("name") if request.is_new else (original or {}).get("name")
        # Server-managed names first: refused (119) whatever else is wrong with the request.
        check_role_change(request.auth, name, "created" if request.is_new else "changed")
        if request.is_new:
            validate_role_name(name)
            if "ACL" not in body and not request.auth.is_master:
                raise InvalidRoleName("A role must have an ACL.")
        elif "name" in body and body["name"] != name:
            check_role_change(request.auth, body["name"], "given that name")
            raise InvalidRoleName("A role's name cannot be changed.")
        request.context["role_name"] = name

    @hooks.on_before_delete("_Role")
    async def role_before_delete(request: DeleteRequest) -> None:
        check_role_change(request.repo.auth, request.row.get("name"), "deleted")

    @hooks.on_after_save("_Role")
    async def role_after_save(event: AfterSave) -> None:
        name = event.context.get("role_name")
        if event.repo.auth.is_system:
            return  # server flows (sign-up, care-team functions) audit with their own context
        await audit.record(
            event.repo,
            "role.change",
            entity_type="_Role",
            entity_id=event.object_id,
            summary=f"Role {name} changed",
        )
