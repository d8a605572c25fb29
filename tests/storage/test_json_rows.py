"""Rows written as JSON by PostgreSQL (storage/json_rows.py) are exactly what the Python encoder
writes, for every field kind, missing values, odd numbers and strings, protected fields and the
ACL (PostgreSQL; Hypothesis draws the values)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mindharbor.security.auth import Auth
from mindharbor.storage import json_rows
from mindharbor.storage.db import Store
from mindharbor.storage.repository import FindQuery
from mindharbor.storage.schema import ClassSchema
from tests.support import make_settings, postgres_available, postgres_database, unique_class

pytestmark = pytest.mark.postgres

FIELDS = {
    "s": {"type": "String"},
    "n": {"type": "Number"},
    "b": {"type": "Boolean"},
    "d": {"type": "Date"},
    "p": {"type": "Pointer", "targetClass": "Target"},
    "o": {"type": "Object"},
    "a": {"type": "Array"},
    "r": {"type": "Relation", "targetClass": "Target"},
    "secret": {"type": "String"},
    "g": {"type": "GeoPoint"},
    "poly": {"type": "Polygon"},
}
text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8)
number = st.one_of(  # within the server's number range (codec.MAX_NUMBER)
    st.integers(-(10**15), 10**15),
    st.floats(min_value=-1e15, max_value=1e15, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.1, 1e-7, 2.5e-300, 123456789.125, -0.0, 2**53 + 2.0]),
)
json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), text),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["k", "é", "a b"]), inner, max_size=3),
    ),
    max_leaves=6,
)
dates = st.datetimes(
    min_value=datetime(1000, 1, 1),  # noqa: DTZ001 - naive bounds, as Hypothesis wants
    max_value=datetime(9999, 12, 31),  # noqa: DTZ001
).map(
    lambda d: {
        "__type": "Date",
        "iso": d.replace(tzinfo=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
)
lat = st.one_of(st.integers(-90, 90), st.floats(-90, 90))
lng = st.one_of(st.integers(-180, 180), st.floats(-180, 180))
geopoint = st.builds(lambda y, x: {"__type": "GeoPoint", "latitude": y, "longitude": x}, lat, lng)
polygon = st.lists(st.tuples(lat, lng).map(list), min_size=3, max_size=5, unique_by=tuple).map(
    lambda ring: {"__type": "Polygon", "coordinates": ring}
)
row = st.fixed_dictionaries(
    {},
    optional={
        "s": text,
        "n": number,
        "b": st.booleans(),
        "d": dates,
        "p": st.just({"__type": "Pointer", "className": "Target", "objectId": "t1"}),
        "o": st.dictionaries(st.sampled_from(["x", "y"]), json_value, max_size=2),
        "a": st.lists(json_value, max_size=3),
        "secret": text,
        "g": geopoint,
        "poly": polygon,
    },
)


class Harness:
    def __init__(self, url: str, tmp: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.store = Store(make_settings(url, tmp))
        self.cls = unique_class("Json")

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    async def setup(self) -> None:
        await self.store.migrate()
        await self.store.start_raw_pool()
        schema = ClassSchema.from_store(
            self.cls,
            {
                "fields": FIELDS,
                "classLevelPermissions": {
                    **{op: {"*": True} for op in ("find", "get", "count", "create", "update")},
                    "protectedFields": {"*": ["secret"]},
                },
            },
        )
        async with self.store.unit_of_work(Auth.master()) as repo:
            await repo.save_schema(schema, is_new=True)

    async def both(self, rows: list[dict[str, Any]], auth: Auth) -> tuple[Any, Any]:
        async with self.store.unit_of_work(Auth.master()) as repo:
            await repo.purge(repo.schema_or_none(self.cls))  # type: ignore[arg-type]
            for r in rows:
                await repo.create(
                    self.cls, {**r, "ACL": {"*": {"read": True}, "role:x": {"write": True}}}
                )
        out = []
        for raw in (True, False):
            async with self.store.read_only(auth) as repo:
                found = await repo.find(self.cls, FindQuery(order="createdAt", limit=100, raw=raw))
            out.append(orjson.loads(orjson.dumps(found.results)))
        return out[0], out[1]


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    if not postgres_available():
        pytest.skip("PostgreSQL not reachable: rows are written as JSON by PostgreSQL only")
    with postgres_database() as url:
        h = Harness(url, tmp_path_factory.mktemp("json_rows"))
        try:
            h.run(h.setup())
            yield h
        finally:
            h.run(h.store.close())
            h.loop.close()


@settings(
    max_examples=150,
    deadline=None,
    derandomize=os.environ.get("CI") == "true",
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(row, min_size=1, max_size=4), master=st.booleans())
def test_postgres_writes_what_the_encoder_writes(
    harness: Harness, rows: list[dict[str, Any]], master: bool
) -> None:
    auth = Auth.master() if master else Auth.user("reader")
    written, encoded = harness.run(harness.both(rows, auth))
    assert written == encoded
    if not master:
        assert all("secret" not in o for o in written)


def test_which_classes_qualify(harness: Harness) -> None:
    schema = harness.store.schema_or_none(harness.cls)
    assert schema is not None and json_rows.eligible(schema)
    user = harness.store.schema_or_none("_User")
    assert user is not None and not json_rows.eligible(user)
    assert json_rows.needs_python('{"a":[{"__type": "File","name":"x"}]}')
    assert not json_rows.needs_python('{"s":"\\"__type\\": \\"File\\""}')
