"""The database connections a store opens: SQLAlchemy engines and, on PostgreSQL, the asyncpg
pool compiled query shapes run on (``storage/shapes.py``).

JSON crosses both with the same codecs: orjson with sorted keys out, orjson in (the standard
library for what orjson refuses). SQLite connections get WAL, full sync, ``BEGIN IMMEDIATE`` and
the functions our SQL calls (RE2 ``REGEXP``, the exact geo tests, ``$text``'s fallback).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from mindharbor.settings import Settings
from mindharbor.storage import geo, regex, textsearch


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _passthrough(text: str) -> str:
    return text


def json_loads(text: str) -> Any:
    """orjson for speed; the standard library for what orjson refuses (integers beyond 64
    bits, which PostgreSQL's JSONB can hold)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _server_settings(settings: Settings) -> dict[str, str]:
    return {
        "statement_timeout": str(settings.statement_timeout_ms),
        "idle_in_transaction_session_timeout": "60000",
    }


def create_engine(
    settings: Settings, pool_size: int | None = None, max_overflow: int | None = None
) -> AsyncEngine:
    url = settings.sqlalchemy_url
    if settings.dialect == "sqlite":
        path = url.split(":///", 1)[1]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, json_serializer=_json_dumps, connect_args={"timeout": 30})
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url,
        json_serializer=_json_dumps,
        json_deserializer=json_loads,
        pool_size=settings.db_pool_size if pool_size is None else pool_size,
        max_overflow=settings.db_max_overflow if max_overflow is None else max_overflow,
        connect_args={"server_settings": _server_settings(settings)},
    )


async def create_raw_pool(settings: Settings) -> Any:
    """PostgreSQL: the asyncpg pool compiled shapes run on."""
    import asyncpg  # type: ignore[import-untyped]

    async def init(conn: Any) -> None:
        # As SQLAlchemy's dialect does: parameters arrive serialised by the statement's
        # bind processors (so they pass through), results are decoded here.
        for name in ("json", "jsonb"):
            await conn.set_type_codec(
                name, encoder=_passthrough, decoder=json_loads, schema="pg_catalog"
            )

    async def keep(conn: Any) -> None:
        """Its statements leave no session state (no SET, LISTEN or advisory lock), so a
        returned connection needs no reset query: one round trip less per read."""

    dsn = "postgresql://" + settings.sqlalchemy_url.split("://", 1)[1]
    return await asyncpg.create_pool(
        dsn,
        min_size=2,
        max_size=settings.db_pool_size,
        init=init,
        reset=keep,
        server_settings=_server_settings(settings),
    )


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

        async def register(raw: Any) -> None:
            await raw.create_function("regexp", 2, regex.sqlite_regexp, deterministic=True)
            # The exact geo tests (storage/geo_sql.py); the same code the live-query matcher runs.
            await raw.create_function("mh_geo_radians", 4, geo.sqlite_radians, deterministic=True)
            await raw.create_function("mh_geo_contains", 3, geo.sqlite_contains, deterministic=True)
            # $text's fallback (storage/textsearch.py): whole words, no stemming.
            for name, fn in (
                ("mh_text_match", textsearch.sqlite_match),
                ("mh_text_score", textsearch.sqlite_score),
            ):
                await raw.create_function(name, 2, fn, deterministic=True)

        dbapi_conn.run_async(register)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return  # a read-only repository: no transaction, no writer lock
        conn.exec_driver_sql("BEGIN IMMEDIATE")
