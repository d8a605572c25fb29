"""``/aggregate/{class}`` over REST, on both backends: pipelines and ``distinct``.

Data and expected answers are those of Parse Server's ``ParseQuery.Aggregate.spec`` (the cases it
runs on PostgreSQL); pipelines are sent in the query string as that spec does.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import ParseClient, unique_class

ROWS = [
    {"score": 10, "name": "foo", "sender": {"group": "A"}, "views": 900, "size": ["S", "M"]},
    {"score": 10, "name": "foo", "sender": {"group": "A"}, "views": 800, "size": ["M", "L"]},
    {"score": 10, "name": "bar", "sender": {"group": "B"}, "views": 700, "size": ["S"]},
    {"score": 20, "name": "dpl", "sender": {"group": "B"}, "views": 700, "size": ["S"]},
]


@pytest.fixture
def cls(client: ParseClient) -> str:
    name = unique_class("Agg")
    for row in ROWS:
        client.create(name, row)
    return name


def agg(client: ParseClient, cls: str, master: bool = True, **body: Any) -> Any:
    return client.get(f"/aggregate/{cls}", params=body, master=master)


def results(client: ParseClient, cls: str, **body: Any) -> list[Any]:
    response = agg(client, cls, **body)
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


def test_master_key_only(client: ParseClient, cls: str) -> None:
    response = agg(client, cls, master=False, distinct="score")
    assert response.status_code == 403
    assert response.json() == {"error": "unauthorized: master key is required"}


def test_group_accumulators(client: ParseClient, cls: str) -> None:
    by_name = results(client, cls, **{"$group": {"_id": "$name"}})
    assert sorted(r["objectId"] for r in by_name) == ["bar", "dpl", "foo"]
    by_score = results(client, cls, **{"$group": {"_id": "$score"}})
    assert sorted(by_score, key=lambda r: r["objectId"]) == [{"objectId": 10}, {"objectId": 20}]
    for accumulator, expected in (
        ({"$sum": "$score"}, 50),
        ({"$sum": 1}, 4),
        ({"$min": "$score"}, 10),
        ({"$max": "$score"}, 20),
        ({"$avg": "$score"}, 12.5),
    ):
        (row,) = results(client, cls, **{"$group": {"_id": None, "total": accumulator}})
        assert row == {"objectId": None, "total": expected}
    for empty in ({}, "", []):
        assert results(client, cls, **{"$group": {"_id": empty}})[0]["objectId"] is None


def test_group_by_fields_and_date_parts(client: ParseClient, cls: str) -> None:
    pipeline = [{"$group": {"_id": {"score": "$score", "views": "$views"}, "count": {"$sum": 1}}}]
    rows = results(client, cls, pipeline=pipeline)
    assert len(rows) == 4
    assert {"objectId": {"score": 10, "views": 700}, "count": 1} in rows
    by_score = [{"$group": {"_id": {"s": "$score"}, "count": {"$sum": 1}}}]
    assert {"objectId": {"s": 10}, "count": 3} in results(client, cls, pipeline=by_score)
    dated = [
        {
            "$group": {
                "_id": {
                    "day": {"$dayOfMonth": "$_updated_at"},
                    "month": {"$month": "$_created_at"},
                    "year": {"$year": "$createdAt"},
                },
                "count": {"$sum": 1},
            }
        }
    ]
    (row,) = results(client, cls, pipeline=dated)
    created = client.find(cls)["results"][0]["createdAt"]
    year, month, day = (int(x) for x in created[:10].split("-"))
    assert row == {"objectId": {"day": day, "month": month, "year": year}, "count": 4}


def test_stages_after_group(client: ParseClient, cls: str) -> None:
    pipeline = [
        {"$match": {"views": {"$lt": 850}}},
        {"$group": {"_id": "$name", "views": {"$sum": "$views"}, "n": {"$sum": 1}}},
        {"$match": {"n": {"$gte": 1}, "_id": {"$ne": "dpl"}}},
        {"$sort": {"views": -1}},
        {"$limit": 5},
        {"$skip": 1},
        {"$project": {"n": 1}},
    ]
    assert results(client, cls, pipeline=pipeline) == [{"objectId": "bar", "n": 1}]
    # Parse's object form, $project before $group
    body = {"$project": {"score": 1}, "$group": {"_id": "$score", "score": {"$sum": "$score"}}}
    rows = sorted(results(client, cls, **body), key=lambda r: r["objectId"])
    assert rows == [{"objectId": 10, "score": 30}, {"objectId": 20, "score": 20}]


def test_pipelines_without_group(client: ParseClient, cls: str) -> None:
    assert len(results(client, cls, **{"$limit": 2})) == 2
    assert len(results(client, cls, **{"$skip": 2})) == 2
    names = [r["name"] for r in results(client, cls, **{"$sort": {"name": -1}})]
    assert names == ["foo", "foo", "dpl", "bar"]
    (hit,) = results(client, cls, **{"$match": {"score": {"$gt": 5, "$lt": 15}, "views": 900}})
    assert (hit["score"], hit["views"]) == (10, 900)
    assert len(results(client, cls, **{"$match": {"_id": hit["objectId"]}})) == 1
    # an ISO string compared with a Date field is a Date (the SDK's JSON for a Date)
    future = "2999-01-01T00:00:00.000Z"
    assert len(results(client, cls, pipeline=[{"$match": {"createdAt": {"$lt": future}}}])) == 4
    projected = results(client, cls, **{"$project": {"name": 1}})
    assert all("name" in r and "score" not in r and "objectId" in r for r in projected)


def test_distinct(client: ParseClient, cls: str) -> None:
    assert sorted(results(client, cls, distinct="score")) == [10, 20]
    assert results(client, cls, distinct="score", where={"name": "dpl"}) == [20]
    assert sorted(results(client, cls, distinct="size")) == ["L", "M", "S"]
    assert sorted(results(client, cls, distinct="sender.group")) == ["A", "B"]
    assert len(results(client, cls, distinct="objectId")) == 4
    assert results(client, cls, distinct="unknown") == []
    assert results(client, unique_class("None"), distinct="score") == []
    target = unique_class("Target")
    ids = [client.create(target, {}) for _ in range(2)]
    holder = unique_class("Holder")
    for object_id in (ids[0], ids[1], ids[0]):
        client.create(
            holder, {"p": {"__type": "Pointer", "className": target, "objectId": object_id}}
        )
    pointers = results(client, holder, distinct="p")
    assert sorted(p["objectId"] for p in pointers) == sorted(ids)
    assert all(
        p == {"__type": "Pointer", "className": target, "objectId": p["objectId"]} for p in pointers
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"$group": {}}, "Invalid parameter for query: group. Missing key _id"),
        ({"$group": {"objectId": "$name"}}, "Cannot use 'objectId' in aggregation stage $group."),
        ({"group": {"_id": "$name"}}, "Invalid aggregate stage 'group'."),
        (
            {"pipeline": [{"$match": {}, "$limit": 1}]},
            "Pipeline stages should only have one key but found $match, $limit.",
        ),
        ({"$lookup": {"from": "x"}}, "Unsupported aggregate stage: $lookup."),
        ({"pipeline": [{"$limit": 1}] * 21}, "An aggregation has at most 20 stages."),
    ],
)
def test_refused_like_parse(client: ParseClient, cls: str, body: Any, message: str) -> None:
    response = agg(client, cls, **body)
    assert response.status_code == 400
    assert response.json() == {"code": 102, "error": message}


def test_bad_field_reference_is_105(client: ParseClient, cls: str) -> None:
    response = agg(client, cls, **{"$group": {"_id": "name"}})
    assert (response.status_code, response.json()["code"]) == (400, 105)


def test_unknown_class_is_empty(client: ParseClient) -> None:
    body = {"$group": {"_id": None, "total": {"$sum": "$score"}}}
    assert results(client, unique_class("Nothing"), **body) == []


def test_aggregating_audited_classes_is_recorded(client: ParseClient) -> None:
    """Accounts (like PHI classes) are audited reads: an aggregation over them leaves an entry
    with the query and the number of rows it summarised, not silence."""
    for _ in range(2):
        name = unique_class("agguser")
        response = client.post("/users", {"username": name, "password": "correct horse 9!"})
        assert response.status_code == 201, response.text
    total = client.get("/classes/_User", params={"count": "1", "limit": "0"}, master=True)
    users = total.json()["count"]

    def latest() -> list[dict[str, Any]]:
        found = client.find("AuditLog", order="-createdAt", limit="20")
        return [e for e in found["results"] if "_User" in e.get("metadata", {}).get("counts", {})]

    before = {e["objectId"] for e in latest()}
    body = {"$group": {"_id": None, "n": {"$sum": 1}}}
    assert results(client, "_User", **body) == [{"objectId": None, "n": users}]
    (entry,) = [e for e in latest() if e["objectId"] not in before]
    assert entry["metadata"]["counts"] == {"_User": users}
    assert len(results(client, "_User", distinct="username")) == users
    assert len([e for e in latest() if e["objectId"] not in before]) == 2


@pytest.mark.parametrize("hidden", ["_hashed_password", "_rperm", "_acl", "_session_token", "ACL"])
def test_hidden_columns_never_come_out(client: ParseClient, hidden: str) -> None:
    name = unique_class("agghidden")
    response = client.post("/users", {"username": name, "password": "correct horse 9!"})
    assert response.status_code == 201, response.text
    for body in (
        {"distinct": hidden},
        {"$group": {"_id": f"${hidden}"}},
        {"$group": {"_id": None, "x": {"$max": f"${hidden}"}}},
    ):
        response = agg(client, "_User", **body)
        if response.status_code == 200:
            text = response.text
            assert "$2" not in text and "argon" not in text and "*" not in text, text
            rows = response.json()["results"]
            assert all(not v for r in rows for v in (r.values() if isinstance(r, dict) else [r]))
        else:
            assert response.status_code == 400, response.text
