"""The periodic schema refresh rebuilds only classes whose stored definition changed (issue 14,
defect 2): rebuilding every class every few seconds made new tables and compiled statements
each time, and workers grew without bound. Both backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from mindharbor.security.auth import Auth
from tests.support import make_settings, open_store, unique_class

pytestmark = pytest.mark.anyio


async def test_unchanged_classes_keep_their_schema_and_tables(
    fresh_backend_url: str, tmp_path: Path
) -> None:
    settings = make_settings(fresh_backend_url, tmp_path)
    async with open_store(settings) as store, open_store(settings) as other:
        cls = unique_class("Reload")
        async with store.unit_of_work(Auth.master()) as repo:
            await repo.create(cls, {"a": "x"})
        await store.reload_schemas()
        before = {s.name: s for s in store.all_schemas()}
        tables = {name: store.tables.table(s) for name, s in before.items()}
        for _ in range(3):
            await store.reload_schemas()
        after = {s.name: s for s in store.all_schemas()}
        assert all(after[name] is before[name] for name in before)
        assert all(store.tables.table(after[name]) is tables[name] for name in before)
        # Another worker adds a field: that class alone is rebuilt here.
        async with other.unit_of_work(Auth.master()) as repo:
            await repo.create(cls, {"b": 1})
        await store.reload_schemas()
        changed = {s.name: s for s in store.all_schemas()}
        assert changed[cls] is not before[cls] and changed[cls].field("b") is not None
        assert all(changed[n] is before[n] for n in before if n != cls)
