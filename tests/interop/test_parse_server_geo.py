"""Geo queries differential: the same rows and ``where``s against the real Parse Server 9
(bench/parse, on a scratch PostgreSQL database with PostGIS, which Parse's ``$nearSphere`` and
``$centerSphere`` need) and against MindHarbor on each backend; the same objects, in the same
order where Parse orders (``$nearSphere``), and the same error codes.

The queries are the forms the SDKs send: distances in radians (``$maxDistance``; the SDK's
``withinKilometers``/``withinMiles`` convert before sending, and Parse on PostgreSQL ignores the
``$maxDistanceIn*`` spellings), no distance near a result's boundary (Parse measures on PostGIS's
sphere of 6,370,986 m, MindHarbor in radians as Mongo and the SDK do), and no two results at the
same distance (their order would be arbitrary on both sides).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from bench.compare import parse_server
from mindharbor.errors import ParseError
from mindharbor.interop.parse_export import read_export
from mindharbor.interop.parse_import import ParseImporter
from mindharbor.security.auth import Auth
from mindharbor.storage.repository import FindQuery
from mindharbor.storage.schema import ClassSchema
from tests.interop.test_parse_server_import import _parse_installed
from tests.support import (
    REQUIRE_SERVICES,
    LiveServer,
    free_port,
    make_settings,
    open_store,
    postgres_available,
    postgres_database,
)

APP_ID = "parse-geo-test"
MASTER = "parse-geo-master-key"
pytestmark = pytest.mark.node


def gp(lat: float, lng: float) -> dict[str, Any]:
    return {"__type": "GeoPoint", "latitude": lat, "longitude": lng}


SFO = gp(37.6189722, -122.3748889)
PLACES: dict[str, dict[str, Any]] = {
    "Sacramento": gp(38.52, -121.50),
    "Honolulu": gp(21.35, -157.93),
    "San Francisco": gp(37.75, -122.68),
    **{
        f"g{lat}:{lng}": gp(lat + lng / 100, lng + lat / 50)
        for lat in (-60, -25, 0, 35, 70)
        for lng in (-170, -80, 0, 95, 175)
    },
}
AREAS = {
    "unit": [[0, 0], [0, 1], [1, 1], [1, 0]],
    "big": [[-5, -5], [-5, 10], [10, 10], [10, -5]],
    "far": [[40, 40], [40, 45], [45, 45], [45, 40], [40, 40]],
    "triangle": [[0, 0], [3, 6], [6, 0]],
}
# (where on "location" or "area", ordered: compare the order too)
QUERIES: list[tuple[dict[str, Any], bool]] = [
    ({"location": {"$nearSphere": SFO, "$maxDistance": 0.01}}, True),
    ({"location": {"$nearSphere": SFO, "$maxDistance": 0.1}}, True),
    ({"location": {"$nearSphere": SFO, "$maxDistance": 0.7}}, True),
    ({"location": {"$nearSphere": gp(10, 20), "$maxDistance": 1.3}}, True),
    ({"location": {"$nearSphere": gp(-59, 178), "$maxDistance": 0.9}}, True),
    ({"location": {"$nearSphere": gp(12, 33)}}, True),
    ({"location": {"$within": {"$box": [gp(-30, -100), gp(40, 10)]}}}, False),
    ({"location": {"$within": {"$box": [gp(40, 10), gp(-30, -100)]}}}, False),
    ({"location": {"$within": {"$box": [gp(37, -123), gp(39, -121)]}}}, False),
    (
        {
            "location": {
                "$geoWithin": {"$polygon": [gp(-70, -100), gp(50, -100), gp(40, 120), gp(-10, 20)]}
            }
        },
        False,
    ),
    ({"location": {"$geoWithin": {"$polygon": [[-123, 37], [-121, 39], [-123, 39]]}}}, False),
    ({"location": {"$geoWithin": {"$centerSphere": [SFO, 0.05]}}}, False),
    ({"location": {"$geoWithin": {"$centerSphere": [[20, 10], 1.0]}}}, False),
    ({"area": {"$geoIntersects": {"$point": gp(0.5, 0.5)}}}, False),
    ({"area": {"$geoIntersects": {"$point": gp(3, 2)}}}, False),
    ({"area": {"$geoIntersects": {"$point": gp(42, 44)}}}, False),
    ({"area": {"$geoIntersects": {"$point": gp(-20, -20)}}}, False),
    ({"location": {"$geoWithin": {"$polygon": 1234}}}, False),
    ({"location": {"$geoWithin": {"$polygon": [1234]}}}, False),
    ({"location": {"$geoWithin": {"$centerSphere": [SFO]}}}, False),
    ({"area": {"$geoIntersects": {"$point": 1}}}, False),
]


async def _add_postgis(database_url: str) -> bool:
    conn = await asyncpg.connect("postgresql://" + database_url.split("://", 1)[1])
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    except asyncpg.PostgresError:
        return False
    finally:
        await conn.close()
    return True


class Side:
    """One server, seeded with PLACES and AREAS in classes of its own."""

    database_url = ""  # Parse's side: its database, for the table export

    def __init__(self, base: str, app_id: str, master_key: str) -> None:
        headers = {"X-Parse-Application-Id": app_id, "X-Parse-Master-Key": master_key}
        self.http = httpx.Client(base_url=base, headers=headers, timeout=60)
        tag = uuid.uuid4().hex[:8]
        self.classes = {"location": f"GeoPlace{tag}", "area": f"GeoArea{tag}"}
        for key, kind in (("location", "GeoPoint"), ("area", "Polygon")):
            fields = {"name": {"type": "String"}, key: {"type": kind}}
            body = {"className": self.classes[key], "fields": fields}
            made = self.http.post(f"/schemas/{self.classes[key]}", json=body)
            assert made.status_code == 200, made.text
        for name, point in PLACES.items():
            self._create("location", {"name": name, "location": point})
        for name, ring in AREAS.items():
            self._create("area", {"name": name, "area": {"__type": "Polygon", "coordinates": ring}})

    def _create(self, key: str, body: dict[str, Any]) -> None:
        made = self.http.post(f"/classes/{self.classes[key]}", json=body)
        assert made.status_code == 201, made.text

    def answer(self, where: dict[str, Any]) -> tuple[int, Any]:
        key = next(iter(where))
        params = {"where": orjson.dumps(where).decode(), "limit": "1000"}
        response = self.http.get(f"/classes/{self.classes[key]}", params=params)
        body = response.json()
        if response.status_code != 200:
            return response.status_code, body.get("code")
        return 200, [r["name"] for r in body["results"]]


@pytest.fixture(scope="module")
def parse_side(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Side]:
    if not _parse_installed() or not postgres_available():
        if REQUIRE_SERVICES:
            pytest.fail("Parse Server (make node-deps) and PostgreSQL are required")
        pytest.skip("Parse Server not installed (make node-deps) or PostgreSQL unreachable")
    work = Path(tmp_path_factory.mktemp("parse-geo"))
    with postgres_database() as database_url:
        if not asyncio.run(_add_postgis(database_url)):
            message = "PostGIS is not installed (apt-get install postgresql-15-postgis-3)"
            if REQUIRE_SERVICES:
                pytest.fail(message)
            pytest.skip(message)
        port = free_port()
        proc = parse_server.start(
            port=port,
            database_url=database_url,
            workers=1,
            app_id=APP_ID,
            master_key=MASTER,
            redis_url=None,
            log_path=work / "parse.log",
        )
        base = f"http://127.0.0.1:{port}/parse"
        try:
            asyncio.run(parse_server.wait_ready(base, APP_ID, timeout=120, proc=proc))
            side = Side(base, APP_ID, MASTER)
            side.database_url = database_url
            yield side
            side.http.close()
        finally:
            parse_server.stop(proc)


def test_geo_queries_answer_as_parse_server(parse_side: Side, server: LiveServer) -> None:
    ours = Side(server.url, server.app_id, server.master_key)
    try:
        for where, ordered in QUERIES:
            theirs_status, theirs = parse_side.answer(where)
            ours_status, mine = ours.answer(where)
            assert ours_status == theirs_status, (where, mine, theirs)
            if theirs_status != 200 or ordered:  # an error code, or Parse's distance order
                assert mine == theirs, (where, mine, theirs)
            else:
                assert sorted(mine) == sorted(theirs), (where, mine, theirs)
        assert any(len(parse_side.answer(w)[1]) > 1 for w, ordered in QUERIES[:6] if ordered)
    finally:
        ours.http.close()


async def _export_import_and_ask(
    parse: Side, settings: Any, directory: Path
) -> list[tuple[int, Any]]:
    """Parse's geo tables exported as its PostgreSQL holds them (``point``/``polygon`` text),
    imported into MindHarbor, and every query asked of the imported classes."""
    directory.mkdir()
    conn = await asyncpg.connect("postgresql://" + parse.database_url.split("://", 1)[1])
    try:
        for table in ("_SCHEMA", *parse.classes.values()):
            rows = await conn.fetch(f'SELECT row_to_json(t)::text FROM "{table}" t')
            (directory / f"{table}.json").write_text("".join(r[0] + "\n" for r in rows))
    finally:
        await conn.close()
    answers: list[tuple[int, Any]] = []
    async with open_store(settings) as store:
        async with store.unit_of_work(Auth.master()) as repo:  # the app's classes, declared
            for key, kind in (("location", "GeoPoint"), ("area", "Polygon")):
                fields = {"name": {"type": "String"}, key: {"type": kind}}
                schema = ClassSchema.from_store(parse.classes[key], {"fields": fields})
                await repo.save_schema(schema, is_new=True)
        report = await ParseImporter(store, read_export(directory)).run()
        assert sum(report.imported.values()) == len(PLACES) + len(AREAS), report
        for where, _ in QUERIES:
            name = parse.classes[next(iter(where))]
            try:
                async with store.read_only(Auth.master()) as repo:
                    found = await repo.find(name, FindQuery(where=where, limit=1000))
                answers.append((200, [o["name"] for o in found.results]))
            except ParseError as exc:
                answers.append((400, exc.code))
    return answers


def test_parse_geo_data_imports_and_answers_alike(
    parse_side: Side, fresh_backend_url: str, tmp_path: Path
) -> None:
    settings = make_settings(fresh_backend_url, tmp_path / "data")
    ours = asyncio.run(_export_import_and_ask(parse_side, settings, tmp_path / "export"))
    for (where, ordered), (status, mine) in zip(QUERIES, ours, strict=True):
        theirs_status, theirs = parse_side.answer(where)
        assert status == theirs_status, (where, mine, theirs)
        if status != 200 or ordered:
            assert mine == theirs, (where, mine, theirs)
        else:
            assert sorted(mine) == sorted(theirs), (where, mine, theirs)
