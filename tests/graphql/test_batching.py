"""Pointer fields are resolved in batches: the number of SQL statements a query costs does not
grow with the number of rows (one access-filtered ``objectId $in`` query per class and level)."""

from __future__ import annotations

import uuid

from tests.graphql.conftest import Gql
from tests.graphql.support import StatementCounter
from tests.support import pointer

PUBLIC = {op: {"*": True} for op in ("find", "count", "get", "create", "update", "delete")}


def _seed(g: Gql, rows: int) -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    owner, item = f"GqlOwner{tag}", f"GqlItem{tag}"
    api = g.api
    api.create_class(
        owner,
        {"name": {"type": "String"}, "boss": {"type": "Pointer", "targetClass": owner}},
        PUBLIC,
    )
    api.create_class(
        item,
        {"label": {"type": "String"}, "owner": {"type": "Pointer", "targetClass": owner}},
        PUBLIC,
    )
    boss = api.create(owner, {"name": "boss"})
    for n in range(rows):
        someone = api.create(owner, {"name": f"owner {n}", "boss": pointer(owner, boss)})
        api.create(item, {"label": f"item {n}", "owner": pointer(owner, someone)})
    return owner, item


def _statements(g: Gql, item: str) -> tuple[int, list[dict]]:
    engine = g.app.state.server.store.engine.sync_engine
    counter = StatementCounter(engine)
    try:
        selection = "label owner { name boss { name } }"
        data = g.client.data(
            f"{{ find{item}(limit: 100) {{ results {{ {selection} }} }} }}", master=True
        )
    finally:
        counter.close()
    return counter.count, data[f"find{item}"]["results"]


def test_pointer_resolution_costs_a_constant_number_of_statements(gql: Gql) -> None:
    _owner_small, small = _seed(gql, 2)
    _owner_large, large = _seed(gql, 15)
    _statements(gql, small)  # warm the schema cache for both classes
    _statements(gql, large)
    few, few_rows = _statements(gql, small)
    many, many_rows = _statements(gql, large)
    assert len(few_rows) == 2 and len(many_rows) == 15
    assert all(r["owner"]["boss"]["name"] == "boss" for r in many_rows)
    assert sorted(r["owner"]["name"] for r in many_rows) == sorted(f"owner {n}" for n in range(15))
    assert few == many, (few, many)


def test_new_field_appears_without_code(gql: Gql) -> None:
    _owner, item = _seed(gql, 1)
    response = gql.api.put(
        f"/schemas/{item}", {"fields": {"priority": {"type": "Number"}}}, master=True
    )
    assert response.status_code == 200, response.text
    gql.api.create(item, {"label": "new", "priority": 3})
    data = gql.client.data(
        f'{{ find{item}(where: {{label: "new"}}) {{ results {{ label priority }} }} }}', master=True
    )
    assert data[f"find{item}"]["results"] == [{"label": "new", "priority": 3.0}]
