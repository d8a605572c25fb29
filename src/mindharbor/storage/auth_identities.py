"""One account per sign-in identity, enforced by the database.

Every ``authData`` entry of a ``_User`` (``{"<provider>": {"id": "<subject>", ...}}``) is
mirrored into ``_AuthIdentity (provider, subject) -> userId`` by triggers on ``_User``, in the
transaction that writes the user. The primary key makes a second holder of one identity
impossible, whichever face or job writes it: of two concurrent links (or first SSO log-ins) of
one identity, the second waits for the first and fails with a unique violation, which
``storage/dberrors.py`` answers as Parse's 208 "this auth is already used". Nothing is left half
written: the failing transaction rolls back whole.

The triggers are created where missing when the class tables are synced (``Store.migrate``),
then the table is filled from the users already stored; an identity two legacy accounts share
keeps its first holder (by creation time) and the others are counted in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mindharbor.errors import AccountAlreadyLinked
from mindharbor.storage.repository import Repository
from mindharbor.storage.system_tables import auth_identity_table

log = logging.getLogger(__name__)

TABLE = "_AuthIdentity"

_PG_FUNCTION = """CREATE OR REPLACE FUNCTION mindharbor_auth_identity() RETURNS trigger AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN
    DELETE FROM "_AuthIdentity" WHERE "userId" = OLD."objectId";
  END IF;
  IF TG_OP <> 'DELETE' AND jsonb_typeof(NEW."authData") = 'object' THEN
    INSERT INTO "_AuthIdentity" (provider, subject, "userId")
    SELECT e.key, e.value ->> 'id', NEW."objectId"
    FROM jsonb_each(NEW."authData") AS e
    WHERE jsonb_typeof(e.value) = 'object' AND e.value ->> 'id' IS NOT NULL;
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql"""
_PG_TRIGGER = """CREATE TRIGGER auth_identity AFTER INSERT OR UPDATE OF "authData" OR DELETE
    ON "_User" FOR EACH ROW EXECUTE FUNCTION mindharbor_auth_identity()"""
_PG_PRESENT = """SELECT 1 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
    WHERE c.relname = '_User' AND c.relnamespace = 'public'::regnamespace
      AND t.tgname = 'auth_identity'"""
_PG_BACKFILL = """INSERT INTO "_AuthIdentity" (provider, subject, "userId")
    SELECT e.key, e.value ->> 'id', u."objectId"
    FROM "_User" AS u, jsonb_each(u."authData") AS e
    WHERE jsonb_typeof(u."authData") = 'object' AND jsonb_typeof(e.value) = 'object'
      AND e.value ->> 'id' IS NOT NULL
    ORDER BY u."createdAt", u."objectId"
    ON CONFLICT DO NOTHING"""

# SQLite: the same three steps, one trigger each (the entries' SELECT is spelled out twice).
_SQLITE_TRIGGERS = {
    "_User_auth_identity_insert": """CREATE TRIGGER "_User_auth_identity_insert"
    AFTER INSERT ON "_User" BEGIN
      INSERT INTO "_AuthIdentity" (provider, subject, "userId")
      SELECT e.key, CAST(json_extract(e.value, '$.id') AS TEXT), NEW."objectId"
      FROM json_each(NEW."authData") AS e
      WHERE json_valid(NEW."authData") AND json_type(NEW."authData") = 'object'
        AND e.type = 'object' AND json_extract(e.value, '$.id') IS NOT NULL;
    END""",
    "_User_auth_identity_update": """CREATE TRIGGER "_User_auth_identity_update"
    AFTER UPDATE OF "authData" ON "_User" BEGIN
      DELETE FROM "_AuthIdentity" WHERE "userId" = OLD."objectId";
      INSERT INTO "_AuthIdentity" (provider, subject, "userId")
      SELECT e.key, CAST(json_extract(e.value, '$.id') AS TEXT), NEW."objectId"
      FROM json_each(NEW."authData") AS e
      WHERE json_valid(NEW."authData") AND json_type(NEW."authData") = 'object'
        AND e.type = 'object' AND json_extract(e.value, '$.id') IS NOT NULL;
    END""",
    "_User_auth_identity_delete": """CREATE TRIGGER "_User_auth_identity_delete"
    AFTER DELETE ON "_User" BEGIN
      DELETE FROM "_AuthIdentity" WHERE "userId" = OLD."objectId";
    END""",
}
_SQLITE_PRESENT = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = '_User'"
_SQLITE_BACKFILL = """INSERT OR IGNORE INTO "_AuthIdentity" (provider, subject, "userId")
    SELECT e.key, CAST(json_extract(e.value, '$.id') AS TEXT), u."objectId"
    FROM "_User" AS u, json_each(u."authData") AS e
    WHERE json_valid(u."authData") AND json_type(u."authData") = 'object'
      AND e.type = 'object' AND json_extract(e.value, '$.id') IS NOT NULL
    ORDER BY u."createdAt", u."objectId\""""
_SHARED = """SELECT count(*) FROM (
    SELECT e.key, {subject} AS subject FROM "_User" AS u, {each}(u."authData") AS e
    WHERE {object_filter}
    GROUP BY 1, 2 HAVING count(*) > 1) AS shared"""


async def ensure(
    conn: AsyncConnection, dialect: str, before_ddl: Callable[[sa.Connection], None]
) -> None:
    """Create the triggers where missing and fill the table from the stored users. On a
    database that has them this only reads the catalogue (no lock on ``_User``)."""
    if dialect == "postgresql":
        if (await conn.execute(sa.text(_PG_PRESENT))).first() is not None:
            return
        await conn.run_sync(before_ddl)
        await conn.execute(sa.text(_PG_FUNCTION))
        await conn.execute(sa.text(_PG_TRIGGER))  # from here on, writers of _User wait
        await conn.execute(sa.text(_PG_BACKFILL))
        shared = _SHARED.format(
            subject="e.value ->> 'id'",
            each="jsonb_each",
            object_filter="jsonb_typeof(u.\"authData\") = 'object' "
            "AND jsonb_typeof(e.value) = 'object' AND e.value ->> 'id' IS NOT NULL",
        )
    else:
        present = {row[0] for row in (await conn.execute(sa.text(_SQLITE_PRESENT))).all()}
        missing = [name for name in _SQLITE_TRIGGERS if name not in present]
        if not missing:
            return
        for name in missing:
            await conn.execute(sa.text(_SQLITE_TRIGGERS[name]))
        await conn.execute(sa.text(_SQLITE_BACKFILL))
        shared = _SHARED.format(
            subject="CAST(json_extract(e.value, '$.id') AS TEXT)",
            each="json_each",
            object_filter='json_valid(u."authData") AND json_type(u."authData") = \'object\' '
            "AND e.type = 'object' AND json_extract(e.value, '$.id') IS NOT NULL",
        )
    clashes = (await conn.execute(sa.text(shared))).scalar_one()
    if clashes:
        log.warning(
            "auth identities shared by several accounts before this version: %d "
            "(each kept by its first account; the others cannot sign in with it)",
            clashes,
        )


async def holder(repo: Repository, provider: str, subject: str) -> str | None:
    """The account holding a sign-in identity, if any (an index lookup; log-in and linking
    ask it with the server's rights, as a password log-in looks up a username)."""
    table = auth_identity_table
    stmt = sa.select(table.c.userId).where(table.c.provider == provider, table.c.subject == subject)
    found = (await repo.conn.execute(stmt)).scalar_one_or_none()
    return None if found is None else str(found)


async def create_unless_held(
    repo: Repository, provider: str, subject: str, create: Callable[[], Awaitable[str]]
) -> tuple[str, bool]:
    """(account, created): ``create`` makes the account of an identity nobody held when it
    was looked up; if a concurrent first log-in committed one meanwhile, the attempt is rolled
    back to a savepoint and that account is the answer (a double-submitted first log-in signs
    in twice instead of failing once)."""
    try:
        async with repo.conn.begin_nested():
            return await create(), True
    except AccountAlreadyLinked:
        found = await holder(repo, provider, subject)
        if found is None:
            raise
        return found, False
