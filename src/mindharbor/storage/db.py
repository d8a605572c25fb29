"""The store: engine, schema registry cache, migrations and the unit of work.

``Store.unit_of_work`` is the only place a transaction begins and commits. Requests, batch
operations, CLI commands and jobs each open one and pass the repository it yields down; nothing
below commits. Side effects that must not happen for a rolled-back write (live-query events,
caches of schema changes) are queued with ``on_commit`` and run after the commit succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mindharbor.errors import (
    ParseError,
)
from mindharbor.security.auth import Auth
from mindharbor.settings import Settings
from mindharbor.storage import auth_identities
from mindharbor.storage.audit_sink import AuditSink
from mindharbor.storage.dberrors import outage, sqlstate, translate_db_error
from mindharbor.storage.engines import create_engine, create_raw_pool
from mindharbor.storage.identity import EVERYONE, backfill_username_keys, read_epoch
from mindharbor.storage.identity_cache import IdentityCache, PostgresFeed
from mindharbor.storage.lazy import LazyConnection
from mindharbor.storage.migration_steps import (
    SealerLock,
    alembic_current,
    index_names,
    quote,
    run_alembic,
)
from mindharbor.storage.repository import ChangeEvent, Repository
from mindharbor.storage.schema import ClassSchema, load_builtin_classes, merge_builtin
from mindharbor.storage.shapes import ShapeCache
from mindharbor.storage.system_tables import schema_table, write_schema_row
from mindharbor.storage.tables import TableSet
from mindharbor.storage.triggers import FileRefs, NoTriggers, TriggerSource
from mindharbor.storage.tx import TxConnection

log = logging.getLogger(__name__)


class Store:
    """Everything that lives as long as the process: engine, schema cache, tables."""

    def __init__(
        self, settings: Settings, hooks: TriggerSource | None = None, services: Any = None
    ) -> None:
        self.settings = settings
        self.hooks: Any = hooks if hooks is not None else NoTriggers()
        # The application's collaborators, which the storage layer never calls itself: the
        # hook registry's functions and jobs, mail and rate limits (``services``), the job
        # runner. Only the file store's two checks (``FileRefs``) are used here.
        self.services: Any = services
        self.jobs: Any = None  # set by the app: starts background jobs
        self.files: FileRefs | None = None  # set by the app: signs file URLs in encode()
        # Resolved sessions of this worker (storage/identity_cache.py); None: always read.
        self.identities: IdentityCache | None = IdentityCache() if settings.identity_cache else None
        if self.identities is not None and settings.dialect == "sqlite":
            self.identities.trust()  # checked against the epoch row before every use
        self.identity_feed: PostgresFeed | None = None
        self.raw_pool: Any = None  # asyncpg pool (PostgreSQL), started with the app
        self.audit_sink = AuditSink(self)
        # Compiled finds by shape (storage/shapes.py): PostgreSQL only.
        self.shapes: ShapeCache | None = (
            ShapeCache() if settings.dialect == "postgresql" and settings.shape_cache else None
        )
        # Called after each commit with every ChangeEvent it made (live queries, caches).
        self.change_listeners: list[Callable[[ChangeEvent], Awaitable[None] | None]] = []
        self.dialect: str = settings.dialect
        self.tables = TableSet(self.dialect)
        self._schemas: dict[str, ClassSchema] = {}
        self._raw: dict[str, Any] = {}  # each class's stored definition, as last read
        self._builtin = {c.name: c for c in load_builtin_classes()}
        self._loaded_at = 0.0
        # SQLite allows one writer; serialising our own transactions avoids busy-waiting threads.
        self._sqlite_lock = asyncio.Lock() if self.dialect == "sqlite" else None
        self.engine = create_engine(settings)
        # The audit writer's own connection (PostgreSQL): requests waiting for their batch
        # never compete with it for the request pool. SQLite has one writer anyway.
        self.audit_engine = (
            create_engine(settings, pool_size=1, max_overflow=0)
            if self.dialect == "postgresql"
            else self.engine
        )

    async def start_raw_pool(self) -> None:
        """PostgreSQL: the asyncpg pool compiled shapes run on (``storage/shapes.py``)."""
        if self.dialect == "postgresql" and self.raw_pool is None:
            self.raw_pool = await create_raw_pool(self.settings)

    async def start_identity_feed(self) -> None:
        """PostgreSQL: start listening for identity changes (until then, nothing is cached)."""
        if self.identities is not None and self.dialect == "postgresql":
            dsn = "postgresql://" + self.settings.sqlalchemy_url.split("://", 1)[1]
            self.identity_feed = PostgresFeed(dsn, self.identities)
            await self.identity_feed.start()

    async def sync_identity_epoch(self) -> None:
        """SQLite: forget every cached identity if another process changed one since."""
        cache = self.identities
        if cache is None or self.dialect != "sqlite":
            return
        async with self._connect() as conn:
            epoch = await read_epoch(conn)
        if cache.epoch != epoch:
            cache.invalidate([EVERYONE])
            cache.epoch = epoch

    async def check_database(self, timeout: float = 2.0) -> bool:
        """Whether the database answers (``SELECT 1`` within ``timeout``) and takes writes
        (the audit log must: nothing may be read without it)."""
        try:
            async with asyncio.timeout(timeout), self._connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
            return not self.audit_sink.failing
        except (ParseError, TimeoutError):
            return False

    def pool_stats(self) -> dict[str, int]:
        """Connections of this worker's pools, as ``pool/state``: SQLAlchemy's (in use, kept)
        and, on PostgreSQL, asyncpg's (in use, open) for compiled reads."""
        pool: Any = self.engine.pool
        stats = {
            "sqlalchemy/in_use": int(getattr(pool, "checkedout", lambda: 0)()),
            "sqlalchemy/size": int(getattr(pool, "size", lambda: 0)()),
        }
        if self.raw_pool is not None:
            size = int(self.raw_pool.get_size())
            stats["asyncpg/open"] = size
            stats["asyncpg/in_use"] = size - int(self.raw_pool.get_idle_size())
        return stats

    def touch_session(self, session_id: str, at: datetime) -> None:
        """Record a session's use, off the request path (with the next audit batch)."""
        self.audit_sink.touch(session_id, at)

    async def close(self) -> None:
        await self.audit_sink.aclose()
        if self.identity_feed is not None:
            await self.identity_feed.stop()
        if self.raw_pool is not None:
            await self.raw_pool.close()
            self.raw_pool = None
        await self.engine.dispose()
        if self.audit_engine is not self.engine:
            await self.audit_engine.dispose()

    # -- schema registry ------------------------------------------------------------------------
    def schema_or_none(self, class_name: str) -> ClassSchema | None:
        return self._schemas.get(class_name)

    def all_schemas(self) -> list[ClassSchema]:
        return sorted(self._schemas.values(), key=lambda s: s.name)

    def install_schema(self, schema: ClassSchema | None, name: str) -> None:
        self._raw.pop(name, None)  # the next reload compares against the database afresh
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
        # Only a class whose stored definition changed gets a new schema object: tables and
        # compiled statements are cached by schema object, so rebuilding unchanged classes
        # every few seconds grew each worker without bound (issue 14).
        schemas: dict[str, ClassSchema] = {}
        raw: dict[str, Any] = {}
        for name, data, _ in rows:
            raw[name] = data
            current = self._schemas.get(name)
            if current is not None and self._raw.get(name) == data:
                schemas[name] = current
            else:
                schemas[name] = self.schema_from_row(name, data)
        self._schemas, self._raw = schemas, raw
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
                    before_ddl = SealerLock(self.dialect)
                    if self.dialect == "postgresql":
                        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(7315001)"))
                    await conn.run_sync(run_alembic, before_ddl)
                    await self._sync_builtin_classes(conn, before_ddl)
                break
            except sa.exc.DBAPIError as exc:
                if sqlstate(exc) != "40P01" or attempt == _MIGRATE_ATTEMPTS:
                    raise
                log.warning("schema migration deadlocked (attempt %d); retrying", attempt)
                await asyncio.sleep(0.2 * attempt)
        await self.reload_schemas()

    async def schema_is_current(self) -> bool:
        """Whether the database has every migration of this version (``migrate`` would do
        nothing to the server tables): a worker that does not migrate checks this."""
        async with self.engine.connect() as conn:
            return bool(await conn.run_sync(alembic_current))

    async def _sync_builtin_classes(self, conn: AsyncConnection, before_ddl: SealerLock) -> None:
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
        if "_User" in stored:
            await backfill_username_keys(conn, self.tables.table(stored["_User"]))
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
        await auth_identities.ensure(conn, self.dialect, before_ddl)

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
                            f"ALTER TABLE {quote(sync_conn, table.name)} "
                            f"ADD COLUMN {quote(sync_conn, column.name)} {col_type}"
                        )
                    )
            existing = index_names(sync_conn, inspector, table.name)
            for index in table.indexes:
                if index.name not in existing:
                    if before_ddl is not None:
                        before_ddl(sync_conn)
                    index.create(sync_conn)  # names read above; ddl_if still applies

    async def ensure_tables(self, conn: AsyncConnection, schema: ClassSchema) -> None:
        await conn.run_sync(self._ensure_tables, schema)

    # -- the unit of work -----------------------------------------------------------------------
    @asynccontextmanager
    async def read_only(self, auth: Auth) -> AsyncIterator[Repository]:
        """A repository that only reads: no transaction (each statement is its own, as in a
        READ COMMITTED transaction, where every statement also sees its own snapshot), no
        BEGIN/COMMIT round trips, and on SQLite no writer lock. What it read is recorded by
        the ``before_commit`` hooks (the audit flush), which hand the entries to the group
        writer and wait for their commit: the caller gets the repository's results only once
        they are recorded. A write through it raises."""
        await self._refresh_schemas_if_due()
        conn = LazyConnection(self)
        try:
            repo = Repository(conn, self, auth, read_only=True)  # type: ignore[arg-type]
            yield repo
        except sa.exc.DBAPIError as exc:
            await conn.close(exc)
            mapped = translate_db_error(exc)
            if mapped is None:
                raise
            raise mapped from exc
        except BaseException as exc:
            await conn.close(exc)
            raise
        await conn.close()
        # The connection is back in the pool before the request waits for its audit batch:
        # requests holding connections while the writer waits for one would deadlock the pool.
        for flush in self.hooks.before_commit:
            await flush(repo)
        for callback in repo.after_commit:
            result = callback()
            if result is not None:
                await result
        if repo.deferred_error is not None:
            raise repo.deferred_error

    @asynccontextmanager
    async def _connect(self, engine: AsyncEngine | None = None) -> AsyncIterator[AsyncConnection]:
        """A pooled connection; an unusable database is a 503 (``outage``), whatever the
        statement that found out."""
        try:
            async with (engine or self.engine).connect() as conn:
                yield conn
        except ParseError:
            raise
        except Exception as exc:
            down = outage(exc)
            if down is None:
                raise
            raise down from exc

    async def _refresh_schemas_if_due(self) -> None:
        if time.monotonic() - self._loaded_at > self.settings.schema_cache_seconds:
            # Other workers may have added fields; a bounded-staleness refresh.
            try:
                await self.reload_schemas()
            except Exception as exc:
                down = outage(exc)
                if down is None:
                    raise
                raise down from exc

    @asynccontextmanager
    async def unit_of_work(
        self,
        auth: Auth,
        *,
        resolve: Callable[[Repository], Awaitable[Auth]] | None = None,
        engine: AsyncEngine | None = None,
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
            async with self._connect(engine) as conn:
                if time.monotonic() - self._loaded_at > self.settings.schema_cache_seconds:
                    # Other workers may have added fields; a bounded-staleness refresh.
                    await self.reload_schemas(conn)
                    await conn.commit()
                try:
                    if self.dialect == "postgresql":
                        # The transaction begins with the first write (storage/tx.py).
                        await conn.execution_options(isolation_level="AUTOCOMMIT")
                        tx = TxConnection(conn)
                        try:
                            if resolve is not None:
                                auth = await resolve(Repository(tx, self, Auth.system()))  # type: ignore[arg-type]
                            repo = Repository(tx, self, auth)  # type: ignore[arg-type]
                            yield repo
                            for flush in self.hooks.before_commit:
                                await flush(repo)
                            await tx.commit()
                        except BaseException:
                            await tx.rollback()
                            raise
                    else:
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
