"""Sessions: Parse ``r:`` tokens, stored only as SHA-256 hashes, with absolute and idle expiry.

A stolen database therefore yields no usable token (tokens carry 192 random bits, so a fast hash
suffices). Idle expiry is HIPAA's automatic log-off: staff sessions lapse after 15 idle minutes
and patients' after 30 by default (NIST SP 800-63B AAL2), and every session after 12 hours. The
last-use time is written at most once a minute, off the request path, so a busy client does not
turn reads into writes.

A token is resolved from the worker's identity cache when it can be (no query at all), else from
the database in one statement; ``storage/identity_cache.py`` explains when a cached identity is
dropped (a revocation, role, care-team or grant change announced by any worker, an expiry).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from mindharbor.errors import InvalidSessionToken
from mindharbor.security.auth import Auth
from mindharbor.security.roles import STAFF_ROLES
from mindharbor.settings import Settings
from mindharbor.storage import identity
from mindharbor.storage.codec import iso, utcnow
from mindharbor.storage.identity import Identity, roles_of
from mindharbor.storage.repository import ChangeEvent, Repository

if TYPE_CHECKING:
    from mindharbor.storage.db import Store

TOUCH_EVERY = timedelta(seconds=60)


def new_token() -> str:
    return "r:" + secrets.token_hex(24)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def idle_minutes(settings: Settings, roles: frozenset[str]) -> int:
    if roles & STAFF_ROLES:
        return settings.session_idle_minutes_staff
    return settings.session_idle_minutes_patient


async def create_session(
    repo: Repository,
    user_id: str,
    *,
    action: str,
    provider: str,
    installation_id: str | None,
    mfa_verified: bool = False,
) -> tuple[str, dict[str, Any]]:
    """A new session for ``user_id``; returns (token, the session as the client sees it).

    ``mfa_verified``: the log-in passed the account's second factor. Whether the session is
    *restricted* (may only enrol a second factor) is decided again at every use
    (``is_restricted``), so a session made before MFA became required for the account's role
    is restricted from then on; the stored ``restricted`` field only shows the state at
    creation to the client."""
    settings = repo.store.settings
    roles = await roles_of(repo, user_id)
    restricted = is_restricted(settings, roles, mfa_verified)
    token = new_token()
    now = utcnow()
    expires = now + timedelta(minutes=settings.session_absolute_minutes)
    system = repo.system()
    created = await system.create_with_hidden(
        "_Session",
        {
            "user": {"__type": "Pointer", "className": "_User", "objectId": user_id},
            "installationId": installation_id,
            "expiresAt": {"__type": "Date", "iso": iso(expires)},
            "createdWith": {"action": action, "authProvider": provider},
            "restricted": restricted,
            "ACL": {user_id: {"read": True, "write": True}},
        },
        {
            "_session_token_hash": token_hash(token),
            "_last_used_at": now,
            "_idle_minutes": idle_minutes(settings, roles),
            "_mfa_verified": mfa_verified,
        },
    )
    return token, {"objectId": created["objectId"], "expiresAt": expires, "restricted": restricted}


def mfa_required_roles(settings: Settings) -> frozenset[str]:
    return frozenset(r.strip() for r in settings.mfa_required_roles.split(",") if r.strip())


def is_restricted(settings: Settings, roles: frozenset[str], mfa_verified: bool) -> bool:
    """A session of an account whose roles require a second factor, that has not passed one,
    may do nothing but enrol it."""
    return bool(roles & mfa_required_roles(settings)) and not mfa_verified


def _auth(settings: Settings, found: Identity) -> Auth:
    return Auth(
        user_id=found.user_id,
        roles=found.roles,
        session_id=found.session_id,
        installation_id=found.installation_id,
        restricted=is_restricted(settings, found.roles, found.mfa_verified),
        # The first instant this identity changes by itself: a grant or the session ends.
        valid_until=found.valid_until,
    )


def _well_formed(token: object) -> bool:
    return isinstance(token, str) and 0 < len(token) <= 200


async def authenticate(
    store: Store, token: str, *, touch: bool = True, check_epoch: bool = True
) -> Auth:
    """The ``Auth`` for a presented token, or 209 for an unknown, expired or idle one.

    ``touch``: this use counts as the user's activity (a live query's re-check does not, so an
    open socket never keeps an unattended session alive past its idle timeout).
    ``check_epoch``: on SQLite, compare the identity epoch first (a caller checking many tokens
    at once compares it once itself)."""
    if not _well_formed(token):
        raise InvalidSessionToken()
    cache = store.identities
    hashed = token_hash(token)
    now = utcnow()
    if check_epoch and cache is not None and store.dialect == "sqlite":
        await store.sync_identity_epoch()
    found = cache.get(hashed) if cache is not None else None
    if found is None or now >= found.valid_until or found.idle(now):
        generation = cache.generation if cache is not None else 0
        async with store.read_only(Auth.system()) as repo:
            found = await identity.resolve_token(repo, hashed, now)
        if found is None or found.expired(now):
            if cache is not None:
                cache.drop(hashed)
            raise InvalidSessionToken()
        if cache is not None:
            cache.put(hashed, found, generation)
    if touch and (found.last_used_at is None or now - found.last_used_at > TOUCH_EVERY):
        store.touch_session(found.session_id, now)
        if cache is not None:
            cache.touched(hashed, now)
    return _auth(store.settings, found)


async def resolve(repo: Repository, token: str) -> Auth:
    """``authenticate`` for code that holds a repository (its store's cache and database)."""
    return await authenticate(repo.store, token)


async def revoke_user_sessions(repo: Repository, user_id: str, *, keep: str | None = None) -> int:
    ended = await identity.delete_sessions(repo, user_id=user_id, keep=keep)
    for session_id in ended:
        _announce_end(repo, session_id, user_id)
    return len(ended)


def _announce_end(repo: Repository, session_id: str, user_id: str | None) -> None:
    """Tell live queries after commit, so a revoked session's subscriptions end at once."""
    repo.publish_change(
        ChangeEvent(
            "_Session", "delete", session_id, {"objectId": session_id, "user": user_id}, None
        )
    )


async def revoke_session(repo: Repository, session_id: str) -> None:
    if await identity.delete_sessions(repo, session_id=session_id):
        _announce_end(repo, session_id, repo.auth.user_id)
