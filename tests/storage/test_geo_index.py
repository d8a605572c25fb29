"""Geo queries answer from an index, with the access filter in the same statement (issue 18).

On PostgreSQL, 100,000 GeoPoints: the ``$nearSphere``+``$maxDistance`` find a caller without the
master key sends is EXPLAINed exactly as the repository ran it, and the plan reads the GiST
index on the field's point, never the whole table. On SQLite, the (latitude, longitude) index
serves the box prefilter. The statement is taken from the engine as it was executed (an event
listener on the real engine), so what is explained is what ran.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from mindharbor.security.auth import Auth
from mindharbor.storage.db import Store
from mindharbor.storage.repository import FindQuery
from tests.support import make_settings, open_store, unique_class

pytestmark = pytest.mark.anyio

ROWS = {"postgres": 100_000, "sqlite": 5_000}
NEAR = {
    "location": {
        "$nearSphere": {"__type": "GeoPoint", "latitude": 40.0, "longitude": -100.0},
        "$maxDistanceInKilometers": 25.0,
    }
}


@contextmanager
def captured(store: Store) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def listen(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((statement, params))

    engine = store.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", listen)


async def _fill(store: Store, cls: str, rows: int) -> None:
    """``rows`` public GeoPoints on a 0.05-degree grid around (40, -100), written in bulk."""
    async with store.unit_of_work(Auth.master()) as repo:
        await repo.create(cls, {"name": "seed", "location": point(0, 0)})
        table = repo.table(repo.schema_or_none(cls))  # type: ignore[arg-type]
        now = (await repo.conn.execute(sa.select(table.c.createdAt))).scalar_one()
        side = int(rows**0.5)
        values = [
            {
                "objectId": f"g{i:09d}",
                "createdAt": now,
                "updatedAt": now,
                "name": f"p{i}",
                "location": point(
                    40.0 + (i // side - side / 2) * 0.05, -100.0 + (i % side - side / 2) * 0.05
                ),
                "_rperm": ["*"],
                "_wperm": [],
            }
            for i in range(rows)
        ]
        await repo.conn.execute(table.insert(), values)
    async with store.unit_of_work(Auth.master()) as repo:
        await repo.conn.execute(sa.text(f'ANALYZE "{cls}"'))


def point(lat: float, lng: float) -> dict[str, Any]:
    return {"__type": "GeoPoint", "latitude": lat, "longitude": lng}


@pytest.fixture
async def geo_store(fresh_backend_url: str, tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(make_settings(fresh_backend_url, tmp_path)) as store:
        yield store


async def test_near_sphere_reads_the_index(geo_store: Store) -> None:
    store = geo_store
    backend = "postgres" if store.dialect == "postgresql" else "sqlite"
    cls = unique_class("GeoIdx")
    await _fill(store, cls, ROWS[backend])
    async with store.unit_of_work(Auth.anonymous()) as repo:
        with captured(store) as seen:
            found = await repo.find(cls, FindQuery(where=NEAR, limit=10))
        assert len(found.results) == 10
        nearest = found.results[0]["location"]
        assert abs(nearest["latitude"] - 40.0) < 0.03 and abs(nearest["longitude"] + 100) < 0.03
        statement, params = next((s, p) for s, p in seen if "location" in s)
        assert "_rperm" in statement  # the access filter is in the very statement explained
        prefix = "EXPLAIN (FORMAT JSON) " if backend == "postgres" else "EXPLAIN QUERY PLAN "
        plan = await repo.conn.run_sync(
            lambda sync: sync.exec_driver_sql(prefix + statement, params).all()
        )
    text = orjson.dumps([list(row) for row in plan]).decode()
    if backend == "postgres":
        assert f"ix_{cls}_location_gist" in text, text
        assert "Seq Scan" not in text, text
        assert "_rperm &&" in text  # filtered in the same scan, not afterwards
    else:
        assert f"ix_{cls}_location_latlng" in text, text
