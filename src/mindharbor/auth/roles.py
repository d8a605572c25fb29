"""Role membership: the identities a user's requests carry.

A user holds a role when it is in the role's ``users`` relation, or holds a role listed in its
``roles`` relation (Parse: ``roles`` names the roles that inherit this role's rights). Resolution
is done per request from the database, so a change (a provider leaving a care team) takes effect
on the very next request in every worker; nothing has to be invalidated.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from mindharbor.errors import InvalidRoleName, ObjectNotFound
from mindharbor.security.acl import validate_acl
from mindharbor.storage.codec import utcnow
from mindharbor.storage.repository import FindQuery, Repository
from mindharbor.storage.system_tables import emergency_grant_table

BUILTIN_ROLES = ("patient", "provider", "admin", "compliance")
STAFF_ROLES = frozenset({"provider", "admin", "compliance"})
ROLE_NAME_RE = re.compile(r"^[A-Za-z0-9_ -]{1,128}$")
MAX_ROLE_DEPTH = 16


def care_team_role(patient_profile_id: str) -> str:
    return f"careTeam_{patient_profile_id}"


def validate_role_name(name: object) -> str:
    if not isinstance(name, str) or not ROLE_NAME_RE.match(name):
        raise InvalidRoleName(
            "A role's name can be only contain alphanumeric characters, _, -, and spaces."
        )
    return name


def held_role_names(repo: Repository, user_id: Any) -> sa.Select[Any] | None:
    """One SELECT of the names of every role ``user_id`` (a value or a SQL expression) holds,
    directly or inherited up to ``MAX_ROLE_DEPTH`` levels: a recursive CTE over the ``users``
    and ``roles`` relations of ``_Role``. None when there is no ``_Role`` class yet."""
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
        roles.c.objectId.in_(sa.select(held.c.id)), roles.c.name.is_not(None)
    )


def emergency_patients(user_id: Any, now: Any) -> sa.Select[Any]:
    """Patients the user holds an unexpired emergency ("break the glass") grant for."""
    grants = emergency_grant_table
    return sa.select(grants.c.patientId).where(grants.c.userId == user_id, grants.c.expiresAt > now)


def emergency_role(patient_id: str) -> str:
    return f"emergency_{patient_id}"


# Built statements by the ``_Role`` table version they read (None: no ``_Role`` class yet).
# Reusing one statement object keeps SQLAlchemy's cache key memoized on it; it holds no data.
_STATEMENTS: dict[Any, Any] = {}


def _roles_statement(repo: Repository) -> Any:
    schema = repo.schema_or_none("_Role")
    key = None if schema is None else repo.table(schema)
    stmt = _STATEMENTS.get(key)
    if stmt is None:
        if len(_STATEMENTS) > 32:
            _STATEMENTS.clear()
        user = sa.bindparam("user_id", type_=sa.Text)
        kind: Any = sa.literal_column("'e'").label("kind")
        grants = emergency_patients(user, sa.bindparam("now", type_=sa.DateTime)).add_columns(kind)
        roles = held_role_names(repo, user)
        stmt = (
            grants
            if roles is None
            else sa.union_all(roles.add_columns(sa.literal_column("'r'").label("kind")), grants)
        )
        _STATEMENTS[key] = stmt
    return stmt


async def roles_of(repo: Repository, user_id: str) -> frozenset[str]:
    """Names of every role the user holds, directly or through inheritance, plus a read-only
    ``emergency_<patient>`` role per unexpired emergency grant. One statement, read afresh on
    every call (nothing is cached but the statement's shape)."""
    result = await repo.conn.execute(_roles_statement(repo), {"user_id": user_id, "now": utcnow()})
    names: set[str] = set()
    for value, which in result.all():
        if value:
            names.add(emergency_role(value) if which == "e" else value)
    return frozenset(names)


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
