"""Sessions: Parse ``r:`` tokens, stored only as SHA-256 hashes, with absolute and idle expiry.

A stolen database therefore yields no usable token (tokens carry 192 random bits, so a fast hash
suffices). Idle expiry is HIPAA's automatic log-off: staff sessions lapse after 15 idle minutes
and patients' after 30 by default (NIST SP 800-63B AAL2), and every session after 12 hours. The
last-use time is written at most once a minute, so a busy client does not turn reads into writes.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine.interfaces import Compiled

from mindharbor.auth.roles import (
    STAFF_ROLES,
    emergency_patients,
    emergency_role,
    held_role_names,
    roles_of,
)
from mindharbor.errors import InvalidSessionToken
from mindharbor.security.auth import Auth
from mindharbor.settings import Settings
from mindharbor.storage.codec import iso, utcnow
from mindharbor.storage.repository import ChangeEvent, Repository

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
    restricted: bool = False,
) -> tuple[str, dict[str, Any]]:
    """A new session for ``user_id``; returns (token, the session as the client sees it)."""
    settings = repo.store.settings
    roles = await roles_of(repo, user_id)
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
        },
    )
    return token, {"objectId": created["objectId"], "expiresAt": expires}


_SESSION_COLUMNS = (
    "objectId",
    "user",
    "expiresAt",
    "restricted",
    "_last_used_at",
    "_idle_minutes",
    "installationId",
)


# The resolve statement compiled for one dialect, by the tables it reads and that dialect. Tables
# are rebuilt when a class's schema changes, so a stale entry is never looked up again; a
# compiled form holds no data, only the statement's SQL and its bound-parameter slots.
_COMPILED: dict[tuple[Any, ...], Compiled] = {}


def _resolve_compiled(repo: Repository, session: sa.Table) -> Compiled:
    """``_build_resolve_statement`` compiled once per (session table, role table, dialect).

    Executing the compiled form skips SQLAlchemy's per-call cache-key lookup; it stays a
    bound-parameter statement (``token_hash``, ``now``), so no input is ever put into the SQL.
    """
    role_schema = repo.schema_or_none("_Role")
    dialect = repo.conn.dialect
    key = (session, None if role_schema is None else repo.table(role_schema), dialect)
    compiled = _COMPILED.get(key)
    if compiled is None:
        if len(_COMPILED) > 32:
            _COMPILED.clear()
        compiled = _COMPILED[key] = _build_resolve_statement(repo, session).compile(dialect=dialect)
    return compiled


def _execute_compiled(
    conn: sa.Connection, compiled: Compiled, params: dict[str, Any]
) -> sa.CursorResult[Any]:
    return conn._execute_compiled(compiled, [params])


def _build_resolve_statement(repo: Repository, session: sa.Table) -> sa.CompoundSelect:
    """Session row, role names and emergency grants for one token hash, in ONE statement.

    Rows are ``(kind, value, <session columns>)``: one ``s`` row carrying the session, then an
    ``r`` row per role held (recursive CTE over the role relations) and an ``e`` row per
    unexpired emergency grant, all keyed on the session's user inside the database. No row: no
    such session. Nothing is cached: every call reads the current session, memberships and
    grants, so a revocation or a role change applies to the very next request in every worker.
    Parameters: ``token_hash`` and ``now``.
    """
    found = (
        sa.select(*(session.c[name] for name in _SESSION_COLUMNS))
        .where(session.c._session_token_hash == sa.bindparam("token_hash", type_=sa.Text))
        .cte("found_session")
    )
    user = sa.select(found.c.user).scalar_subquery()
    blanks = [sa.cast(sa.null(), found.c[name].type).label(name) for name in _SESSION_COLUMNS[1:]]
    parts: list[sa.Select[Any]] = [
        sa.select(
            sa.literal_column("'s'").label("kind"),
            *(found.c[name].label(name) for name in _SESSION_COLUMNS),
        )
    ]
    roles = held_role_names(repo, user)
    if roles is not None:
        parts.append(
            sa.select(sa.literal_column("'r'"), roles.subquery().c.name.label("objectId"), *blanks)
        )
    grants = emergency_patients(user, sa.bindparam("now", type_=sa.DateTime)).subquery()
    parts.append(sa.select(sa.literal_column("'e'"), grants.c.patientId, *blanks))
    return sa.union_all(*parts)


async def resolve(repo: Repository, token: str) -> Auth:
    """The ``Auth`` for a presented token, or 209 for an unknown, expired or idle one.

    One round trip (``_resolve_compiled``), plus the last-used update at most once a minute.
    """
    schema = repo.schema_or_none("_Session")
    if schema is None or not isinstance(token, str) or len(token) > 200:
        raise InvalidSessionToken()
    table = repo.table(schema)
    now = utcnow()
    result = await repo.conn.run_sync(
        _execute_compiled,
        _resolve_compiled(repo, table),
        {"token_hash": token_hash(token), "now": now},
    )
    row: Any = None
    roles: set[str] = set()
    for found in result:
        kind, value = found[0], found[1]  # (kind, objectId, <session columns>)
        if kind == "s":
            row = found._mapping
        elif value:
            roles.add(emergency_role(value) if kind == "e" else value)
    if row is None or row["user"] is None or _expired(row, now):
        raise InvalidSessionToken()
    if now - row["_last_used_at"] > TOUCH_EVERY:
        await repo.conn.execute(
            table.update().where(table.c.objectId == row["objectId"]).values(_last_used_at=now)
        )
    return Auth(
        user_id=row["user"],
        roles=frozenset(roles),
        session_id=row["objectId"],
        installation_id=row["installationId"],
        restricted=bool(row["restricted"]),
    )


def _expired(row: Any, now: datetime) -> bool:
    if row["expiresAt"] is None or row["expiresAt"] <= now:
        return True
    idle = timedelta(minutes=row["_idle_minutes"] or 15)
    return bool(row["_last_used_at"] is None or now - row["_last_used_at"] > idle)


async def revoke_user_sessions(repo: Repository, user_id: str, *, keep: str | None = None) -> int:
    schema = repo.schema_or_none("_Session")
    if schema is None:
        return 0
    table = repo.table(schema)
    cond = table.c.user == user_id
    if keep:
        cond = sa.and_(cond, table.c.objectId != keep)
    ended = list((await repo.conn.execute(sa.select(table.c.objectId).where(cond))).scalars())
    await repo.conn.execute(table.delete().where(cond))
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
    schema = repo.schema_or_none("_Session")
    if schema is not None:
        table = repo.table(schema)
        await repo.conn.execute(table.delete().where(table.c.objectId == session_id))
        _announce_end(repo, session_id, repo.auth.user_id)
