"""The store: engine, schema registry cache, migrations and the unit of work.

``Store.unit_of_work`` is the only place a transaction begins and commits. Requests, batch
operations, CLI commands and jobs each open one and pass the repository it yields down; nothing
below commits. Side effects that must not happen for a rolled-back write (live-query events,
caches of schema changes) are queued with ``on_commit`` and run after the commit succeeds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from mindharbor.errors import (
    DuplicateValue,
    IncorrectType,
    InvalidJSON,
    InvalidQuery,
    ParseError,
    ValidationFailed,
)
from mindharbor.hooks import Hooks
from mindharbor.security.auth import Auth
from mindharbor.services import Services
from mindharbor.settings import Settings
from mindharbor.storage import regex
from mindharbor.storage.repository import ChangeEvent, Repository
from mindharbor.storage.schema import ClassSchema, load_builtin_classes, merge_builtin
from mindharbor.storage.system_tables import schema_table, write_schema_row
from mindharbor.storage.tables import TableSet

if TYPE_CHECKING:
    from mindharbor.files.service import FileService
    from mindharbor.jobs import JobRunner

log = logging.getLogger(__name__)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _json_loads(text: str) -> Any:
    """orjson for speed; the standard library for what orjson refuses (integers beyond 64
    bits, which PostgreSQL's JSONB can hold)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def sqlstate(exc: sa.exc.DBAPIError) -> str | None:
    """PostgreSQL's SQLSTATE of a driver error (None on SQLite)."""
    return getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)


def translate_db_error(exc: sa.exc.DBAPIError) -> ParseError | None:
    """Map the database errors a client can provoke to Parse errors (never their raw text)."""
    orig = exc.orig
    state = sqlstate(exc)
    text = str(orig).lower()
    if state == "57014" or "canceling statement" in text:
        return InvalidQuery("The query took too long and was cancelled.")
    if state == "2201B" or "invalid regular expression" in text or "regexp" in text:
        return InvalidQuery("Invalid regular expression.")
    if state == "23P01":  # an exclusion constraint: only BOOKING_GUARDS has one
        return ValidationFailed("The provider is already booked at that time.")
    if state == "23505" or "unique constraint" in text:
        return DuplicateValue()
    if state in ("22003", "22P02") or "out of range" in text:
        return IncorrectType("A value is out of range for its field.")
    if state in ("22021", "22P05") or "0x00" in text or "unicode escape" in text:
        return InvalidJSON("Strings may not contain NUL characters.")
    if state == "54001" or "too complex" in text or "expression tree is too large" in text:
        return InvalidQuery("The query is too complex.")
    return None


class Store:
    """Everything that lives as long as the process: engine, schema cache, tables."""

    def __init__(
        self, settings: Settings, hooks: Hooks | None = None, services: Services | None = None
    ) -> None:
        self.settings = settings
        self.hooks = hooks or Hooks()
        self.services = services
        self.jobs: JobRunner | None = None  # set by the app: starts background jobs
        self.files: FileService | None = None  # set by the app: signs file URLs in encode()
        # Called after each commit with every ChangeEvent it made (live queries, caches).
        self.change_listeners: list[Callable[[ChangeEvent], Awaitable[None] | None]] = []
        self.dialect = settings.dialect
        self.tables = TableSet()
        self._schemas: dict[str, ClassSchema] = {}
        self._builtin = {c.name: c for c in load_builtin_classes()}
        self._loaded_at = 0.0
        # SQLite allows one writer; serialising our own transactions avoids busy-waiting threads.
        self._sqlite_lock = asyncio.Lock() if self.dialect == "sqlite" else None
        self.engine = self._create_engine()

    def _create_engine(self) -> AsyncEngine:
        url = self.settings.sqlalchemy_url
        if self.dialect == "sqlite":
            path = url.split(":///", 1)[1]
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(
                url, json_serializer=_json_dumps, connect_args={"timeout": 30}
            )
            _configure_sqlite(engine)
            return engine
        return create_async_engine(
            url,
            json_serializer=_json_dumps,
            json_deserializer=_json_loads,
            pool_size=10,
            max_overflow=10,
            connect_args={
                "server_settings": {
                    "statement_timeout": str(self.settings.statement_timeout_ms),
                    "idle_in_transaction_session_timeout": "60000",
                }
            },
        )

    async def close(self) -> None:
        await self.engine.dispose()

    # -- schema registry ------------------------------------------------------------------------
    def schema_or_none(self, class_name: str) -> ClassSchema | None:
        return self._schemas.get(class_name)

    def all_schemas(self) -> list[ClassSchema]:
        return sorted(self._schemas.values(), key=lambda s: s.name)

    def install_schema(self, schema: ClassSchema | None, name: str) -> None:
        if schema is None:
            self._schemas.pop(name, None)
        else:
            self._schemas[name] = schema

    def schema_from_row(self, name: str, data: dict[str, Any]) -> ClassSchema:
        stored = ClassSchema.from_store(name, data)
        builtin = self._builtin.get(name)
        return merge_builtin(builtin, stored) if builtin is not None else stored

    async def reload_schemas(self, conn: AsyncConnection | None = None) -> None:
        """Re-read ``_SCHEMA`` (another worker may have changed it)."""
        if conn is None:
            async with self.engine.connect() as fresh:
                await self.reload_schemas(fresh)
            return
        rows = (await conn.execute(sa.select(schema_table))).all()
        self._schemas = {name: self.schema_from_row(name, data) for name, data, _ in rows}
        self._loaded_at = time.monotonic()

    # -- migrations -----------------------------------------------------------------------------
    async def migrate(self) -> None:
        """Run Alembic for server tables, then create or extend every class table.

        Every worker runs this at startup, while other workers may already be serving, so on a
        database that is already current it must not take a lock that waits for (or makes wait)
        a request or the audit sealer: each step checks first and changes only what is missing.
        Before its first DDL (an upgrade) the migration also takes the sealer's lock (after its
        own; the sealer takes only its own), so a seal never interleaves with it; a deadlock with
        a request that touched the same tables in another order is retried: PostgreSQL aborted
        the migration's transaction, so nothing of it was applied.
        """
        for attempt in range(1, _MIGRATE_ATTEMPTS + 1):
            try:
                async with self.engine.begin() as conn:
                    before_ddl = _SealerLock(self.dialect)
                    if self.dialect == "postgresql":
                        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(7315001)"))
                    await conn.run_sync(_run_alembic, before_ddl)
                    await self._sync_builtin_classes(conn, before_ddl)
                break
            except sa.exc.DBAPIError as exc:
                if sqlstate(exc) != "40P01" or attempt == _MIGRATE_ATTEMPTS:
                    raise
                log.warning("schema migration deadlocked (attempt %d); retrying", attempt)
                await asyncio.sleep(0.2 * attempt)
        await self.reload_schemas()

    async def _sync_builtin_classes(self, conn: AsyncConnection, before_ddl: _SealerLock) -> None:
        stored = {
            name: ClassSchema.from_store(name, data)
            for name, data, _ in (await conn.execute(sa.select(schema_table))).all()
        }
        for builtin in self._builtin.values():
            current = stored.get(builtin.name)
            merged = merge_builtin(builtin, current)
            if current is None or merged.to_store() != current.to_store():
                await write_schema_row(conn, merged, exists=current is not None)
            stored[builtin.name] = merged
        for schema in stored.values():
            await conn.run_sync(self._ensure_tables, schema, before_ddl)
        if self.dialect == "postgresql":
            present = {
                (table, name)
                for table, name in (await conn.execute(sa.text(_PG_TRIGGERS_PRESENT))).all()
            }
            for table, name, statement in PG_APPEND_ONLY_TRIGGERS:
                if (table, name) not in present:
                    await conn.run_sync(before_ddl)
                    await conn.execute(sa.text(PG_APPEND_ONLY_FUNCTION))
                    await conn.execute(sa.text(statement))
        else:
            for statement in SQLITE_APPEND_ONLY_TRIGGERS:
                await conn.execute(sa.text(statement))
        for statement in BOOKING_GUARDS[self.dialect]:  # checks first, in SQL
            await conn.execute(sa.text(statement))

    def _ensure_tables(
        self,
        sync_conn: sa.Connection,
        schema: ClassSchema,
        before_ddl: Callable[[sa.Connection], None] | None = None,
    ) -> None:
        """Create missing tables, columns and indexes for a class (idempotent)."""
        inspector = sa.inspect(sync_conn)
        for table in self.tables.all_tables(schema):
            if not inspector.has_table(table.name):
                if before_ddl is not None:
                    before_ddl(sync_conn)
                table.create(sync_conn)
                continue
            existing = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in existing:
                    if before_ddl is not None:
                        before_ddl(sync_conn)
                    col_type = column.type.compile(dialect=sync_conn.dialect)
                    sync_conn.execute(
                        sa.text(
                            f"ALTER TABLE {_quote(sync_conn, table.name)} "
                            f"ADD COLUMN {_quote(sync_conn, column.name)} {col_type}"
                        )
                    )
            index_names = {i["name"] for i in inspector.get_indexes(table.name)}
            for index in table.indexes:
                if index.name not in index_names:
                    if before_ddl is not None:
                        before_ddl(sync_conn)
                    index.create(sync_conn, checkfirst=True)

    async def ensure_tables(self, conn: AsyncConnection, schema: ClassSchema) -> None:
        await conn.run_sync(self._ensure_tables, schema)

    # -- the unit of work -----------------------------------------------------------------------
    @asynccontextmanager
    async def unit_of_work(
        self, auth: Auth, *, resolve: Callable[[Repository], Awaitable[Auth]] | None = None
    ) -> AsyncIterator[Repository]:
        """One transaction: yields a ``Repository`` for ``auth``; commits on success only.

        ``resolve`` (a request's session check) runs first, inside the same transaction, with a
        system repository; the ``Auth`` it returns replaces ``auth``. So a request checks its
        session and does its work on one connection, in one transaction, and the check reads
        the session and memberships as committed when the request began.
        """
        lock = self._sqlite_lock
        if lock is not None:
            await lock.acquire()
        try:
            async with self.engine.connect() as conn:
                if time.monotonic() - self._loaded_at > self.settings.schema_cache_seconds:
                    # Other workers may have added fields; a bounded-staleness refresh.
                    await self.reload_schemas(conn)
                    await conn.commit()
                try:
                    async with conn.begin():
                        if resolve is not None:
                            auth = await resolve(Repository(conn, self, Auth.system()))
                        repo = Repository(conn, self, auth)
                        yield repo
                        for flush in self.hooks.before_commit:
                            await flush(repo)
                except sa.exc.DBAPIError as exc:
                    mapped = translate_db_error(exc)
                    if mapped is None:
                        raise
                    raise mapped from exc
        finally:
            if lock is not None:
                lock.release()
        for callback in repo.after_commit:
            result = callback()
            if result is not None:
                await result
        if repo.deferred_error is not None:
            raise repo.deferred_error


# The audit log and its seals refuse UPDATE and DELETE in the database itself, whoever asks.
# Created only where missing: CREATE/DROP TRIGGER locks the table against every writer.
_APPEND_ONLY_TABLES = ("AuditLog", "_AuditSeal")
PG_APPEND_ONLY_FUNCTION = """CREATE OR REPLACE FUNCTION mindharbor_append_only() RETURNS trigger
    AS $$ BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$ LANGUAGE plpgsql"""
PG_APPEND_ONLY_TRIGGERS = [
    (
        table,
        name,
        f'CREATE TRIGGER {name} BEFORE {events} ON "{table}" FOR EACH {level} '
        "EXECUTE FUNCTION mindharbor_append_only()",
    )
    for table in _APPEND_ONLY_TABLES
    for name, events, level in (
        ("append_only", "UPDATE OR DELETE", "ROW"),
        ("append_only_truncate", "TRUNCATE", "STATEMENT"),
    )
]
_PG_TRIGGERS_PRESENT = """SELECT c.relname, t.tgname FROM pg_trigger t
    JOIN pg_class c ON c.oid = t.tgrelid
    WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal"""
SQLITE_APPEND_ONLY_TRIGGERS = [
    f'CREATE TRIGGER IF NOT EXISTS "{table}_no_{op.lower()}" BEFORE {op} ON "{table}" '
    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
    for table in _APPEND_ONLY_TABLES
    for op in ("UPDATE", "DELETE")
]
_MIGRATE_ATTEMPTS = 5
VERSION_TABLE = "_alembic_version"  # also in migrations/env.py


# No provider is booked twice at once (domain/appointments.py): an exclusion constraint checked at
# commit, so of two concurrent overlapping bookings only one can commit. btree_gist: migration 0005.
BOOKING_GUARDS: dict[str, list[str]] = {
    "postgresql": [
        """DO $$ BEGIN
             IF NOT EXISTS (SELECT 1 FROM pg_constraint
                            WHERE conname = 'Appointment_no_double_booking') THEN
               ALTER TABLE "Appointment" ADD CONSTRAINT "Appointment_no_double_booking"
                 EXCLUDE USING gist (provider WITH =, tsrange("startAt", "endAt") WITH &&)
                 WHERE (status NOT IN ('cancelled', 'no-show'))
                 DEFERRABLE INITIALLY DEFERRED;
             END IF;
           END $$"""
    ],
    "sqlite": [],  # one writer at a time: the hook's check is atomic there
}


def _quote(conn: sa.Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


class _SealerLock:
    """Takes the audit sealer's lock once, before a migration's first DDL statement.

    A migration that changes nothing never takes it (a seal of a long backlog may hold it for
    a while, and a starting worker should not wait for that)."""

    def __init__(self, dialect: str) -> None:
        self.needed = dialect == "postgresql"

    def __call__(self, sync_conn: sa.Connection) -> None:
        if self.needed:
            sync_conn.execute(sa.text("SELECT pg_advisory_xact_lock(7315002)"))
            self.needed = False


def _run_alembic(sync_conn: sa.Connection, before_ddl: _SealerLock) -> None:
    cfg = Config()
    script_location = str(Path(__file__).parent.parent / "migrations")
    cfg.set_main_option("script_location", script_location)
    cfg.attributes["connection"] = sync_conn
    context = MigrationContext.configure(sync_conn, opts={"version_table": VERSION_TABLE})
    current = set(context.get_current_heads())
    if current == set(ScriptDirectory.from_config(cfg).get_heads()):
        return
    before_ddl(sync_conn)
    command.upgrade(cfg, "head")


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL for concurrent readers, FULL sync so an acknowledged write survives a crash,
    ``BEGIN IMMEDIATE`` so a transaction that will write never fails half-way on a lock, and an
    RE2-backed ``REGEXP`` (SQLAlchemy's default uses Python's backtracking ``re``)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=FULL",
            "foreign_keys=ON",
            "busy_timeout=30000",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()
        dbapi_conn.run_async(
            lambda raw: raw.create_function("regexp", 2, regex.sqlite_regexp, deterministic=True)
        )

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
