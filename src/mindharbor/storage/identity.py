"""Identity in SQL: sessions, role closures and emergency grants, and telling every worker when
they change.

Everything a request's identity is made of is read here, in one statement per token
(``resolve_token``), and every change to it is announced here (``announce``), inside the
changing transaction: on PostgreSQL a ``NOTIFY`` that the database delivers at commit to every
listening worker of every server (``storage/identity_cache.py``), on SQLite a bump of one
epoch row that every process compares before trusting its cache. The announcing worker also
drops its own cached copies right after the commit, so it refuses a revoked token at once.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine.interfaces import Compiled

from mindharbor.security.roles import EMERGENCY_PREFIX, emergency_role
from mindharbor.storage.codec import utcnow
from mindharbor.storage.system_tables import emergency_grant_table, identity_epoch_table

if TYPE_CHECKING:
    from mindharbor.storage.repo_base import RepositoryBase
    from mindharbor.storage.repository import Repository

MAX_ROLE_DEPTH = 16
CHANNEL = "mindharbor_identity"
# Scopes of an announcement: every identity, one user's sessions, or one session.
EVERYONE = "*"


def username_key(username: str) -> str:
    """What makes two usernames one account: NFKC (compatibility forms folded: an NFD "é" and
    a precomposed one, a full-width letter and its ASCII form) and case-folded."""
    return unicodedata.normalize("NFKC", username).casefold()


async def backfill_username_keys(conn: Any, user_table: sa.Table) -> int:
    """Give accounts made before usernames were normalised their key, oldest first; a name
    that clashes with an older one keeps none (it still logs in by its exact name)."""
    missing = (
        await conn.execute(
            sa.select(user_table.c.objectId, user_table.c.username)
            .where(user_table.c._username_key.is_(None), user_table.c.username.is_not(None))
            .order_by(user_table.c.createdAt)
        )
    ).all()
    if not missing:
        return 0
    taken = set(
        (
            await conn.execute(
                sa.select(user_table.c._username_key).where(user_table.c._username_key.is_not(None))
            )
        ).scalars()
    )
    filled = 0
    for object_id, username in missing:
        key = username_key(username)
        if key in taken:
            continue
        taken.add(key)
        await conn.execute(
            user_table.update().where(user_table.c.objectId == object_id).values(_username_key=key)
        )
        filled += 1
    return filled


def user_scope(user_id: str) -> str:
    return f"u:{user_id}"


def session_scope(session_id: str) -> str:
    return f"s:{session_id}"


@dataclass(frozen=True, slots=True)
class Identity:
    """What a session token stands for, as stored, at the time it was read."""

    session_id: str
    user_id: str
    roles: frozenset[str]  # held roles, transitively, plus ``emergency_<patient>`` per grant
    installation_id: str | None
    expires_at: datetime
    last_used_at: datetime | None
    idle_minutes: int
    mfa_verified: bool
    valid_until: datetime  # the session's end or the first grant's end, whichever is first

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at or self.idle(now)

    def idle(self, now: datetime) -> bool:
        last = self.last_used_at
        return last is None or (now - last).total_seconds() > 60 * (self.idle_minutes or 15)


# -- roles ---------------------------------------------------------------------------------------
def held_role_names(repo: Repository, user_id: Any) -> sa.Select[Any] | None:
    """One SELECT of the names of every role ``user_id`` (a value or a SQL expression) holds,
    directly or inherited up to ``MAX_ROLE_DEPTH`` levels: a recursive CTE over the ``users``
    and ``roles`` relations of ``_Role``. None when there is no ``_Role`` class yet.

    ``emergency_*`` identities come only from the grant table: a stored role of that name (made
    before the names were reserved) confers nothing."""
    schema = repo.schema_or_none("_Role")
    if schema is None:
        return None
    roles = repo.table(schema)
    users = repo.join_table(schema, "users")
    inherits = repo.join_table(schema, "roles")
    held = (
        sa.select(users.c.owningId.label("id"), sa.literal_column("0").label("depth"))
        .where(users.c.relatedId == user_id)
        .cte("held_roles", recursive=True)
    )
    # UNION (not ALL) on (id, depth) and the depth bound end the recursion even on a cycle.
    held = held.union(
        sa.select(inherits.c.owningId, held.c.depth + 1).where(
            inherits.c.relatedId == held.c.id, held.c.depth < MAX_ROLE_DEPTH
        )
    )
    return sa.select(roles.c.name).where(
        roles.c.objectId.in_(sa.select(held.c.id)),
        roles.c.name.is_not(None),
        sa.func.substr(roles.c.name, 1, len(EMERGENCY_PREFIX)) != EMERGENCY_PREFIX,
    )


def emergency_patients(user_id: Any, now: Any) -> sa.Select[Any]:
    """Patients the user holds an unexpired emergency ("break the glass") grant for."""
    grants = emergency_grant_table
    return sa.select(grants.c.patientId, grants.c.expiresAt).where(
        grants.c.userId == user_id, grants.c.expiresAt > now
    )


# Built statements by the ``_Role`` table version they read (None: no ``_Role`` class yet).
_ROLE_STATEMENTS: dict[Any, Any] = {}


def _roles_statement(repo: Repository) -> Any:
    schema = repo.schema_or_none("_Role")
    key = None if schema is None else repo.table(schema)
    stmt = _ROLE_STATEMENTS.get(key)
    if stmt is None:
        if len(_ROLE_STATEMENTS) > 32:
            _ROLE_STATEMENTS.clear()
        user = sa.bindparam("user_id", type_=sa.Text)
        kind: Any = sa.literal_column("'e'").label("kind")
        grants = emergency_patients(user, sa.bindparam("now", type_=sa.DateTime))
        grants = grants.with_only_columns(
            grants.selected_columns.patientId, kind, grants.selected_columns.expiresAt
        )
        roles = held_role_names(repo, user)
        stmt = (
            grants
            if roles is None
            else sa.union_all(
                roles.add_columns(
                    sa.literal_column("'r'").label("kind"),
                    sa.cast(sa.null(), sa.DateTime).label("expiresAt"),
                ),
                grants,
            )
        )
        _ROLE_STATEMENTS[key] = stmt
    return stmt


async def roles_of(repo: Repository, user_id: str) -> frozenset[str]:
    """Names of every role the user holds, directly or through inheritance, plus a read-only
    ``emergency_<patient>`` role per unexpired emergency grant, in one statement; kept in the
    worker's identity cache (dropped by the same change events as sessions, never used past a
    grant's end) unless this transaction has itself changed identities."""
    cache = None if repo.identity_changed else repo.store.identities
    now = utcnow()
    generation = cache.generation if cache is not None else 0
    if cache is not None:
        found = cache.get_roles(user_id, now)
        if found is not None:
            return found
    result = await repo.conn.execute(_roles_statement(repo), {"user_id": user_id, "now": now})
    names: set[str] = set()
    ends: list[datetime] = []
    for value, which, ends_at in result.all():
        if value:
            names.add(emergency_role(value) if which == "e" else value)
            if ends_at is not None:
                ends.append(ends_at)
    held = frozenset(names)
    if cache is not None:
        cache.put_roles(user_id, held, min(ends) if ends else None, generation)
    return held


# -- sessions ------------------------------------------------------------------------------------
_SESSION_COLUMNS = (
    "objectId",
    "user",
    "expiresAt",
    "_last_used_at",
    "_idle_minutes",
    "installationId",
    "_mfa_verified",
)
# The resolve statement compiled for one dialect, by the tables it reads and that dialect. Tables
# are rebuilt when a class's schema changes, so a stale entry is never looked up again; a
# compiled form holds no data, only the statement's SQL and its bound-parameter slots.
_COMPILED: dict[tuple[Any, ...], Compiled] = {}


def _resolve_compiled(repo: Repository, session: sa.Table) -> Compiled:
    """``_build_resolve_statement`` compiled once per (session table, role table, dialect);
    executed with bound parameters (``token_hash``, ``now``): no input is put into the SQL."""
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
    unexpired emergency grant (its expiry where the session row has ``expiresAt``), all keyed on
    the session's user inside the database. No row: no such session.
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
    grant_columns = [
        grants.c.expiresAt.label(name) if name == "expiresAt" else blank
        for name, blank in zip(_SESSION_COLUMNS[1:], blanks, strict=True)
    ]
    parts.append(sa.select(sa.literal_column("'e'"), grants.c.patientId, *grant_columns))
    return sa.union_all(*parts)


async def resolve_token(repo: Repository, token_hash: str, now: datetime) -> Identity | None:
    """The stored identity of a token hash (None: unknown), in one round trip. Expiry is the
    caller's decision (``Identity.expired``)."""
    schema = repo.schema_or_none("_Session")
    if schema is None:
        return None
    result = await repo.conn.run_sync(
        _execute_compiled,
        _resolve_compiled(repo, repo.table(schema)),
        {"token_hash": token_hash, "now": now},
    )
    row: Any = None
    roles: set[str] = set()
    grant_ends: list[datetime] = []
    for found in result:
        kind, value = found[0], found[1]  # (kind, objectId, <session columns>)
        if kind == "s":
            row = found._mapping
        elif value and kind == "e":
            roles.add(emergency_role(value))
            grant_ends.append(found._mapping["expiresAt"])
        elif value:
            roles.add(value)
    if row is None or row["user"] is None or row["expiresAt"] is None:
        return None
    return Identity(
        session_id=row["objectId"],
        user_id=row["user"],
        roles=frozenset(roles),
        installation_id=row["installationId"],
        expires_at=row["expiresAt"],
        last_used_at=row["_last_used_at"],
        idle_minutes=int(row["_idle_minutes"] or 15),
        mfa_verified=bool(row["_mfa_verified"]),
        valid_until=min([row["expiresAt"], *grant_ends]),
    )


def touch_statement(repo: Repository) -> Any:
    """``UPDATE _Session SET _last_used_at = :at WHERE objectId = :id`` (executed many)."""
    table = repo.table(repo.schema_or_none("_Session"))  # type: ignore[arg-type]
    return (
        table.update()
        .where(table.c.objectId == sa.bindparam("sid"))
        .values(_last_used_at=sa.bindparam("at"))
    )


async def touch_session(repo: Repository, session_id: str, at: datetime) -> None:
    await repo.conn.execute(touch_statement(repo), {"sid": session_id, "at": at})


async def delete_sessions(
    repo: Repository,
    *,
    user_id: str | None = None,
    session_id: str | None = None,
    keep: str | None = None,
) -> list[str]:
    """Delete a user's sessions (but ``keep``) or one session; returns the ids deleted, and
    announces each, so every worker stops honouring them when this transaction commits."""
    schema = repo.schema_or_none("_Session")
    if schema is None:
        return []
    table = repo.table(schema)
    cond = table.c.objectId == session_id if session_id is not None else table.c.user == user_id
    if keep:
        cond = sa.and_(cond, table.c.objectId != keep)
    ended = list((await repo.conn.execute(sa.select(table.c.objectId).where(cond))).scalars())
    if ended:
        await repo.conn.execute(table.delete().where(table.c.objectId.in_(ended)))
        await announce(repo, *(session_scope(s) for s in ended))
    return ended


# -- emergency grants ------------------------------------------------------------------------------
async def insert_grant(
    repo: Repository,
    *,
    grant_id: str,
    user_id: str,
    patient_id: str,
    reason: str,
    created_at: datetime,
    expires_at: datetime,
) -> None:
    await repo.conn.execute(
        emergency_grant_table.insert().values(
            objectId=grant_id,
            userId=user_id,
            patientId=patient_id,
            reason=reason,
            createdAt=created_at,
            expiresAt=expires_at,
        )
    )
    await announce(repo, user_scope(user_id))


async def recent_grants(repo: Repository, limit: int = 500) -> list[dict[str, Any]]:
    grants = emergency_grant_table
    stmt = sa.select(grants).order_by(grants.c.createdAt.desc()).limit(limit)
    return [dict(r) for r in (await repo.conn.execute(stmt)).mappings()]


# -- announcing changes ---------------------------------------------------------------------------
async def announce(repo: RepositoryBase, *scopes: str) -> None:
    """Tell every worker, at this transaction's commit, that these identities changed.

    PostgreSQL: ``pg_notify`` in the transaction (delivered only if it commits, in commit
    order). SQLite: the epoch row is bumped in the transaction. Either way this worker forgets
    its own copies right after the commit."""
    if not scopes:
        return
    begin = getattr(repo.conn, "ensure_transaction", None)
    if begin is not None:
        await begin()  # a NOTIFY outside the transaction would be delivered before the change
    if repo.dialect == "postgresql":
        payload = EVERYONE if EVERYONE in scopes else " ".join(sorted(set(scopes)))
        if len(payload) > 7000:  # NOTIFY payloads stop at 8000 bytes
            payload = EVERYONE
        await repo.conn.execute(
            sa.select(sa.func.pg_notify(CHANNEL, sa.bindparam("payload", payload, sa.Text)))
        )
    else:
        await repo.conn.execute(
            identity_epoch_table.update().values(epoch=identity_epoch_table.c.epoch + 1)
        )
    repo.identity_changed = True
    cache = repo.store.identities
    if cache is not None:
        repo.after_commit.append(lambda: cache.invalidate(scopes))


async def announce_out_of_band(conn: Any, dialect: str) -> None:
    """For a change made outside the object service (an operator's SQL, a restore): every
    worker forgets every cached identity when ``conn``'s transaction commits."""
    if dialect == "postgresql":
        await conn.execute(sa.select(sa.func.pg_notify(CHANNEL, EVERYONE)))
    else:
        await conn.execute(
            identity_epoch_table.update().values(epoch=identity_epoch_table.c.epoch + 1)
        )


async def read_epoch(conn: Any) -> int:
    """SQLite: the identity epoch other processes bump (0 before the first change)."""
    value = await conn.scalar(sa.select(identity_epoch_table.c.epoch))
    return int(value or 0)
