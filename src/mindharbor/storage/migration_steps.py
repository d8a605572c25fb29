"""The steps ``Store.migrate`` runs on a synchronous connection: Alembic's upgrade, the check
that a database is current, and the catalogue reads the built-in classes' sync needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

VERSION_TABLE = "_alembic_version"  # also in migrations/env.py


def index_names(sync_conn: sa.Connection, inspector: Any, table_name: str) -> set[str]:
    """The table's index names. SQLite's reflection skips expression indexes (a GeoPoint's
    lat/lng index) with a warning, so its catalogue is read directly."""
    if sync_conn.dialect.name == "sqlite":
        rows = sync_conn.execute(
            sa.text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t"),
            {"t": table_name},
        )
        return {str(row[0]) for row in rows}
    return {str(i["name"]) for i in inspector.get_indexes(table_name)}


def quote(conn: sa.Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


class SealerLock:
    """Takes the audit sealer's lock once, before a migration's first DDL statement.

    A migration that changes nothing never takes it (a seal of a long backlog may hold it for
    a while, and a starting worker should not wait for that)."""

    def __init__(self, dialect: str) -> None:
        self.needed = dialect == "postgresql"

    def __call__(self, sync_conn: sa.Connection) -> None:
        if self.needed:
            sync_conn.execute(sa.text("SELECT pg_advisory_xact_lock(7315002)"))
            self.needed = False


def alembic_current(sync_conn: sa.Connection) -> bool:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent.parent / "migrations"))
    context = MigrationContext.configure(sync_conn, opts={"version_table": VERSION_TABLE})
    heads = set(ScriptDirectory.from_config(cfg).get_heads())
    return set(context.get_current_heads()) == heads


def run_alembic(sync_conn: sa.Connection, before_ddl: SealerLock) -> None:
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
