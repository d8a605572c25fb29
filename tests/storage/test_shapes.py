"""Compiled query shapes (storage/shapes.py) give exactly the answers of a statement built per
request, for any caller (PostgreSQL, where the cache is on).

- Differential: Hypothesis' queries of the matcher-agreement test, over random rows, through a
  store with the shape cache and one without; the same ids or the same error, every time,
  while the first store's cache keeps filling up across examples (hits with other values).
- Identities are never baked into a cached statement: two callers of one shape see their own
  rows; and the typical shapes (inbox, dashboard) are in fact reused.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mindharbor.errors import ParseError
from mindharbor.security.auth import Auth
from mindharbor.storage import shapes
from mindharbor.storage.db import Store
from mindharbor.storage.repository import FindQuery
from tests.live_query.test_matcher_agreement import _SEED, _where, row_strategy
from tests.support import make_settings, postgres_available, postgres_database, unique_class

pytestmark = pytest.mark.postgres


class Pair:
    def __init__(self, url: str, tmp: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.cached = Store(make_settings(url, tmp / "a"))
        self.plain = Store(make_settings(url, tmp / "b", shape_cache=False))
        self.cls = unique_class("Shape")
        assert self.cached.shapes is not None and self.plain.shapes is None

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    async def setup(self) -> None:
        await self.cached.migrate()
        await self.cached.start_raw_pool()  # reads run on asyncpg's pool, as in a server
        await self.plain.reload_schemas()
        async with self.cached.unit_of_work(Auth.master()) as repo:
            await repo.create(self.cls, dict(_SEED))
            await repo.purge(repo.schema_or_none(self.cls))  # type: ignore[arg-type]
        await self.cached.reload_schemas()
        await self.plain.reload_schemas()

    async def refill(self, rows: list[dict[str, Any]]) -> None:
        async with self.cached.unit_of_work(Auth.master()) as repo:
            await repo.purge(repo.schema_or_none(self.cls))  # type: ignore[arg-type]
            for row in rows:
                await repo.create(self.cls, {**row, "ACL": {"*": {"read": True}}})

    async def answer(self, store: Store, where: Any, order: str | None) -> Any:
        try:
            async with store.read_only(Auth.user("someone", {"r1"})) as repo:
                found = await repo.find(
                    self.cls, FindQuery(where=where, order=order, limit=1000, count=True)
                )
        except ParseError as exc:
            return ("error", exc.code)
        return ([o["objectId"] for o in found.results], found.count)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    if not postgres_available():
        pytest.skip("PostgreSQL not reachable: the shape cache is PostgreSQL's")
    with postgres_database() as url:
        p = Pair(url, tmp_path_factory.mktemp("shapes"))
        try:
            p.run(p.setup())
            yield p
        finally:
            p.run(p.cached.close())
            p.run(p.plain.close())
            p.loop.close()


@settings(
    max_examples=200,
    deadline=None,
    derandomize=os.environ.get("CI") == "true",
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(row_strategy, min_size=1, max_size=5),
    where=_where(),
    order=st.sampled_from([None, "n", "-s,n", "obj.a"]),
)
def test_cached_shapes_answer_as_built_statements(
    pair: Pair, rows: list[dict[str, Any]], where: Any, order: str | None
) -> None:
    pair.run(pair.refill(rows))
    for _ in range(2):  # the second run of a cacheable shape is a hit
        assert pair.run(pair.answer(pair.cached, where, order)) == pair.run(
            pair.answer(pair.plain, where, order)
        ), where


def test_identities_are_values_not_part_of_the_statement(pair: Pair) -> None:
    async def scenario() -> None:
        store = pair.cached
        cls = unique_class("Mine")
        async with store.unit_of_work(Auth.master()) as repo:
            for owner in ("alice", "bob", "carol"):
                for n in range(3):
                    await repo.create(cls, {"n": n, "owner": owner, "ACL": {owner: {"read": True}}})
        before = store.shapes.hits  # type: ignore[union-attr]
        for owner in ("alice", "bob", "carol", "alice"):
            async with store.read_only(Auth.user(owner)) as repo:
                found = await repo.find(
                    cls, FindQuery(where={"n": {"$gte": 1}}, order="-n", limit=10, count=True)
                )
            assert {o["owner"] for o in found.results} == {owner}
            assert [o["n"] for o in found.results] == [2, 1] and found.count == 2
        assert store.shapes.hits - before >= 6  # type: ignore[union-attr]

    pair.run(scenario())


def test_what_is_never_cached() -> None:
    for where in (
        {"p": {"$inQuery": {"className": "X", "where": {}}}},
        {"$or": [{"a": {"$select": {"query": {"className": "X"}, "key": "k"}}}]},
        {"$relatedTo": {"object": {"__type": "Pointer", "className": "X", "objectId": "a"}}},
    ):
        assert shapes.shape_of(where) is None
    shape, leaves = shapes.shape_of(  # type: ignore[misc]
        {"to": {"__type": "Pointer", "className": "_User", "objectId": "u1"}, "isRead": False}
    )
    assert leaves == [("P", "u1")]
    other, _ = shapes.shape_of(  # type: ignore[misc]
        {"to": {"__type": "Pointer", "className": "_User", "objectId": "u2"}, "isRead": False}
    )
    assert shape == other
    read, _ = shapes.shape_of(  # type: ignore[misc]
        {"to": {"__type": "Pointer", "className": "_User", "objectId": "u2"}, "isRead": True}
    )
    assert read != shape  # booleans are part of the shape, not values
    assert not shapes.leaf_ok("P", "not an id!") and not shapes.leaf_ok("s", "a\x00b")


def test_the_differential_exercised_cache_hits(pair: Pair) -> None:
    """Runs after the differential (file order): most generated shapes were reused."""
    cache = pair.cached.shapes
    assert cache is not None
    kept = sum(1 for v in cache._entries.values() if isinstance(v, shapes.Prepared))
    assert cache.hits > 100 and kept > 20, (cache.hits, kept, len(cache))
