"""Parse's account linking: ``linkWith`` / unlink of ``authData`` providers, and anonymous users.

Each is off by default and a setting (``MINDHARBOR_AUTH_LINKING``, ``MINDHARBOR_ANONYMOUS_USERS``;
``MINDHARBOR_PARSE_COMPAT`` turns both on); the permission rules are in ``security/profile.py``.

* Link: a signed-in user saves its own ``_User`` with ``{"authData": {"<provider>": {...}}}``
  (the SDK's ``user.linkWith``). The entry is validated by the configured provider, and an
  identity another account already uses answers 208, as Parse. An entry equal to the stored one
  (the SDK sends the whole ``authData`` back) changes nothing and is not re-validated.
* Unlink: ``{"authData": {"<provider>": null}}`` (the SDK's ``_unlinkFrom``). The last way into
  an account (no password, no other provider) cannot be unlinked: the account would be lost.
* Anonymous users: ``POST /users`` with ``{"authData": {"anonymous": {"id": "<uuid>"}}}`` logs
  in the account holding that id, or creates one. Such an account holds no role (it can read
  nothing clinical); it is upgraded by saving a username and password or by linking a provider
  (the SDK sends ``authData.anonymous: null`` with them), and then becomes a patient, as a
  self sign-up would.

Every link, unlink, anonymous sign-up and upgrade is audited (provider names only).
"""

from __future__ import annotations

import secrets
from typing import Any

from mindharbor.auth.roles import set_membership
from mindharbor.domain import audit
from mindharbor.errors import (
    AccountAlreadyLinked,
    OperationForbidden,
    ParseError,
    UnsupportedService,
)
from mindharbor.hooks import SaveRequest
from mindharbor.security.profile import check_anonymous_login, check_linking
from mindharbor.storage import auth_identities
from mindharbor.storage.repository import Repository

ANONYMOUS = "anonymous"


async def anonymous_user(repo: Repository, data: Any) -> tuple[str, bool]:
    """(the account of this anonymous id, whether it was just created)."""
    check_anonymous_login(repo.store.settings)
    subject = data.get("id") if isinstance(data, dict) else None
    if not isinstance(subject, str) or not 8 <= len(subject) <= 128:
        raise UnsupportedService("This authentication method is unsupported.")
    user_id = await auth_identities.holder(repo, ANONYMOUS, subject)
    if user_id is not None:
        return user_id, False
    if not repo.store.settings.allow_patient_signup:
        raise OperationForbidden("Self sign-up is disabled on this server.")

    async def create() -> str:
        body = {
            "username": f"anon_{secrets.token_hex(8)}",
            "authData": {ANONYMOUS: {"id": subject}},
        }
        return str((await repo.system().create("_User", body))["objectId"])

    user_id, created = await auth_identities.create_unless_held(repo, ANONYMOUS, subject, create)
    if not created:
        return user_id, False
    await audit.record(
        repo,
        "user.signup",
        entity_type="_User",
        entity_id=user_id,
        actor=user_id,
        summary="Anonymous account created",
        metadata={"provider": ANONYMOUS},
    )
    return user_id, True


async def apply_auth_data(request: SaveRequest, password_set: bool) -> None:
    """A client's ``authData`` on an update of its own account: links, unlinks and the
    anonymous upgrade, turned into a server value. Master-key and server writes are left
    as they are; anything else stays refused by the field's ``server`` flag."""
    repo, body = request.repo, request.body
    if request.is_new or repo.auth.is_master or repo.auth.user_id != request.object_id:
        return
    stored: dict[str, Any] = dict((request.original or {}).get("authData") or {})
    current = dict(stored)
    if "authData" in body:
        wanted = body.pop("authData")
        if not isinstance(wanted, dict):
            raise UnsupportedService("This authentication method is unsupported.")
        for name, entry in wanted.items():
            await _apply_entry(repo, request.object_id, current, str(name), entry)
    upgrading = ANONYMOUS in stored and (ANONYMOUS not in current or password_set)
    if upgrading:
        await _upgrade(request, current, password_set)
    if current != stored:
        request.server_values["authData"] = current or None
        await _audit_changes(repo, request.object_id, stored, current, password_set)


async def _apply_entry(
    repo: Repository, user_id: str, current: dict[str, Any], name: str, entry: Any
) -> None:
    if entry is None:
        if name in current and name != ANONYMOUS:
            check_linking(repo.store.settings, name)
        current.pop(name, None)
        return
    if current.get(name) == entry:
        return  # the stored entry sent back unchanged (the SDK sends all of authData)
    check_linking(repo.store.settings, name)
    services = repo.store.services
    provider = services.providers.get(name) if services is not None else None
    if provider is None:
        raise UnsupportedService(f"This authentication method is unsupported: {name}")
    try:
        identity = await provider.validate(entry if isinstance(entry, dict) else {})
        holder = await auth_identities.holder(repo, name, identity.subject)
        if holder is not None and holder != user_id:
            raise AccountAlreadyLinked()
    except ParseError as exc:
        exc.rollback_audit = {
            "action": "account.link_failure",
            "entity_type": "_User",
            "entity_id": user_id,
            "summary": f"Linking {name} refused",
            "metadata": {"provider": name},
        }
        raise
    current[name] = {"id": identity.subject}


async def _upgrade(request: SaveRequest, current: dict[str, Any], password_set: bool) -> None:
    """An anonymous account becomes a real one: it needs a password or a linked provider."""
    current.pop(ANONYMOUS, None)
    if not password_set and not current:
        raise OperationForbidden(
            "An anonymous account is upgraded with a username and password or a linked provider."
        )
    repo = request.repo
    if not repo.store.settings.allow_patient_signup:
        raise OperationForbidden("Self sign-up is disabled on this server.")
    await set_membership(repo, "patient", request.object_id, member=True)
    await audit.record(
        repo,
        "user.upgrade",
        entity_type="_User",
        entity_id=request.object_id,
        actor=request.object_id,
        summary="Anonymous account upgraded",
        metadata={"password": password_set, "providers": sorted(current)},
    )


async def check_way_in(repo: Repository, user_id: str, auth_data: dict[str, Any]) -> None:
    """Refuse an unlink that leaves an account no way to log in."""
    row = await repo.system().raw_row("_User", "objectId", user_id)
    if not auth_data and not (row or {}).get("_hashed_password"):
        raise OperationForbidden("The last way to log in to an account cannot be unlinked.")


async def _audit_changes(
    repo: Repository,
    user_id: str,
    before: dict[str, Any],
    after: dict[str, Any],
    password_set: bool,
) -> None:
    for name in sorted(set(before) | set(after)):
        if name == ANONYMOUS or before.get(name) == after.get(name):
            continue
        linked = name in after
        if not linked and not password_set:
            await check_way_in(repo, user_id, after)
        await audit.record(
            repo,
            "account.link" if linked else "account.unlink",
            entity_type="_User",
            entity_id=user_id,
            actor=user_id,
            summary=f"{'Linked' if linked else 'Unlinked'} {name}",
            metadata={"provider": name},
        )
