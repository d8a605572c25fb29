"""``POST /batch`` over HTTP (parse-rest-reference.md §3.2)."""

from __future__ import annotations

from typing import Any

import orjson

from tests.support import APP_ID, MASTER_KEY, ParseClient, unique_class


def make_class(client: ParseClient) -> str:
    cls = unique_class("Bat")
    client.create_class(cls, {"name": {"type": "String"}, "n": {"type": "Number"}})
    return cls


def batch(client: ParseClient, requests: list[dict[str, Any]], **extra: Any) -> Any:
    return client.post("/batch", {"requests": requests, **extra}, master=True)


def names(client: ParseClient, cls: str) -> list[str]:
    return sorted(r.get("name", "") for r in client.find(cls, limit=1000)["results"])


def test_mixed_create_update_delete_get(client: ParseClient) -> None:
    cls = make_class(client)
    keep = client.create(cls, {"name": "keep", "n": 1})
    gone = client.create(cls, {"name": "gone", "n": 2})
    response = batch(
        client,
        [
            {"method": "POST", "path": f"/parse/classes/{cls}", "body": {"name": "new", "n": 3}},
            {
                "method": "PUT",
                "path": f"/parse/classes/{cls}/{keep}",
                "body": {"name": "kept", "n": {"__op": "Increment", "amount": 10}},
            },
            {"method": "DELETE", "path": f"/parse/classes/{cls}/{gone}"},
            {"method": "GET", "path": f"/parse/classes/{cls}/{keep}"},
        ],
    )
    assert response.status_code == 200, response.text
    results = response.json()
    assert len(results) == 4
    assert all(set(r) == {"success"} for r in results), results
    created = results[0]["success"]
    assert set(created) == {"objectId", "createdAt"}
    assert set(results[1]["success"]) == {"updatedAt", "n"}
    assert results[1]["success"]["n"] == 11
    assert results[2]["success"] == {}
    got = results[3]["success"]
    assert (got["objectId"], got["name"], got["n"]) == (keep, "kept", 11)
    assert names(client, cls) == ["kept", "new"]
    fetched = client.get(f"/classes/{cls}/{created['objectId']}", master=True).json()
    assert (fetched["name"], fetched["n"]) == ("new", 3)
    assert client.get(f"/classes/{cls}/{gone}", master=True).status_code == 404


def test_paths_with_and_without_mount_prefix(client: ParseClient) -> None:
    cls = make_class(client)
    response = batch(
        client,
        [
            {"method": "POST", "path": f"/parse/classes/{cls}", "body": {"name": "with"}},
            {"method": "POST", "path": f"/classes/{cls}", "body": {"name": "without"}},
        ],
    )
    assert response.status_code == 200, response.text
    assert all("success" in r for r in response.json()), response.text
    assert names(client, cls) == ["with", "without"]


def test_query_inside_batch(client: ParseClient) -> None:
    cls = make_class(client)
    for i in range(3):
        client.create(cls, {"name": f"r{i}", "n": i})
    response = batch(
        client,
        [
            {
                "method": "GET",
                "path": f"/parse/classes/{cls}",
                "body": {"where": {"n": {"$gte": 1}}, "order": "-n"},
            }
        ],
    )
    assert response.status_code == 200, response.text
    [entry] = response.json()
    assert [r["name"] for r in entry["success"]["results"]] == ["r2", "r1"]


def test_per_entry_errors(client: ParseClient) -> None:
    cls = make_class(client)
    oid = client.create(cls, {"name": "a", "n": 1})
    response = batch(
        client,
        [
            {"method": "POST", "path": f"/parse/classes/{cls}", "body": {"name": "ok1"}},
            {"method": "PUT", "path": f"/parse/classes/{cls}/abcdefghij", "body": {"name": "x"}},
            {"method": "PUT", "path": f"/parse/classes/{cls}/{oid}", "body": {"n": "not a number"}},
            {"method": "DELETE", "path": f"/parse/classes/{cls}/abcdefghij"},
            {"method": "GET", "path": f"/parse/classes/{cls}/abcdefghij"},
            {"method": "POST", "path": f"/parse/classes/{cls}", "body": {"name": "ok2"}},
        ],
    )
    assert response.status_code == 200, response.text
    results = response.json()
    assert len(results) == 6
    assert "success" in results[0] and "success" in results[5]
    assert results[1] == {"error": {"code": 101, "error": "Object not found."}}
    assert set(results[2]) == {"error"} and results[2]["error"]["code"] == 111
    assert results[3] == {"error": {"code": 101, "error": "Object not found."}}
    assert results[4] == {"error": {"code": 101, "error": "Object not found."}}
    assert names(client, cls) == ["a", "ok1", "ok2"]
    assert client.get(f"/classes/{cls}/{oid}", master=True).json()["n"] == 1


def test_fifty_requests_accepted(client: ParseClient) -> None:
    cls = make_class(client)
    requests = [
        {"method": "POST", "path": f"/parse/classes/{cls}", "body": {"n": i}} for i in range(50)
    ]
    response = batch(client, requests)
    assert response.status_code == 200, response.text
    assert len(response.json()) == 50
    assert client.find(cls, count=1, limit=0)["count"] == 50


def test_more_than_fifty_requests_refused(client: ParseClient) -> None:
    cls = make_class(client)
    requests = [
        {"method": "POST", "path": f"/parse/classes/{cls}", "body": {"n": i}} for i in range(51)
    ]
    response = batch(client, requests)
    assert response.status_code == 400, response.text
    assert isinstance(response.json()["code"], int)
    assert client.find(cls, count=1, limit=0)["count"] == 0


def test_transaction_all_or_nothing(client: ParseClient) -> None:
    cls = make_class(client)
    existing = client.create(cls, {"name": "before", "n": 1})
    response = batch(
        client,
        [
            {"method": "POST", "path": f"/parse/classes/{cls}", "body": {"name": "t1"}},
            {
                "method": "PUT",
                "path": f"/parse/classes/{cls}/{existing}",
                "body": {"name": "changed"},
            },
            {"method": "PUT", "path": f"/parse/classes/{cls}/abcdefghij", "body": {"name": "x"}},
            {"method": "POST", "path": f"/parse/classes/{cls}", "body": {"name": "t2"}},
        ],
        transaction=True,
    )
    assert 400 <= response.status_code < 500, response.text
    assert names(client, cls) == ["before"]
    assert client.get(f"/classes/{cls}/{existing}", master=True).json()["name"] == "before"


def test_transaction_type_error_rolls_back(client: ParseClient) -> None:
    cls = make_class(client)
    response = batch(
        client,
        [
            {"method": "POST", "path": f"/parse/classes/{cls}", "body": {"name": "t1"}},
            {"method": "POST", "path": f"/parse/classes/{cls}", "body": {"n": "bad"}},
        ],
        transaction=True,
    )
    assert 400 <= response.status_code < 500, response.text
    assert client.find(cls, count=1, limit=0)["count"] == 0


def test_transaction_success_commits_everything(client: ParseClient) -> None:
    cls = make_class(client)
    existing = client.create(cls, {"name": "before", "n": 1})
    response = batch(
        client,
        [
            {"method": "POST", "path": f"/parse/classes/{cls}", "body": {"name": "t1"}},
            {
                "method": "PUT",
                "path": f"/parse/classes/{cls}/{existing}",
                "body": {"n": {"__op": "Increment", "amount": 1}},
            },
            {"method": "POST", "path": f"/classes/{cls}", "body": {"name": "t2"}},
        ],
        transaction=True,
    )
    assert response.status_code == 200, response.text
    results = response.json()
    assert [set(r) for r in results] == [{"success"}] * 3
    assert results[1]["success"]["n"] == 2
    assert names(client, cls) == ["before", "t1", "t2"]


def test_nested_batch_refused(client: ParseClient) -> None:
    cls = make_class(client)
    inner = {
        "requests": [{"method": "POST", "path": f"/parse/classes/{cls}", "body": {"name": "inner"}}]
    }
    for path in ("/parse/batch", "/batch"):
        response = batch(
            client,
            [
                {"method": "POST", "path": path, "body": inner},
                {"method": "POST", "path": f"/parse/classes/{cls}", "body": {"name": "outer"}},
            ],
        )
        if response.status_code == 200:
            results = response.json()
            assert set(results[0]) == {"error"}, results
            assert isinstance(results[0]["error"]["code"], int)
        else:
            assert 400 <= response.status_code < 500, response.text
        assert "inner" not in names(client, cls), path


def test_nested_batch_refused_in_transaction(client: ParseClient) -> None:
    cls = make_class(client)
    inner = {
        "requests": [{"method": "POST", "path": f"/parse/classes/{cls}", "body": {"name": "inner"}}]
    }
    response = batch(
        client, [{"method": "POST", "path": "/parse/batch", "body": inner}], transaction=True
    )
    assert 400 <= response.status_code < 500, response.text
    assert names(client, cls) == []


def test_malformed_batch_bodies(client: ParseClient) -> None:
    response = client.post("/batch", {"requests": "nope"}, master=True)
    assert response.status_code == 400
    assert response.json()["code"] == 107
    response = client.post("/batch", {"requests": [{"method": "POST"}]}, master=True)
    assert response.status_code == 400
    assert isinstance(response.json()["code"], int)


def test_unknown_route_in_batch_is_an_entry_error(client: ParseClient) -> None:
    cls = make_class(client)
    response = batch(
        client,
        [
            {"method": "POST", "path": "/parse/nosuchroute", "body": {}},
            {"method": "POST", "path": f"/parse/classes/{cls}", "body": {"name": "ok"}},
        ],
    )
    assert response.status_code == 200, response.text
    results = response.json()
    assert set(results[0]) == {"error"}
    assert "success" in results[1]
    assert names(client, cls) == ["ok"]


def test_batch_in_js_sdk_form(client: ParseClient) -> None:
    cls = make_class(client)
    body = {
        "_ApplicationId": APP_ID,
        "_MasterKey": MASTER_KEY,
        "_ClientVersion": "js5.3.0-alpha.4",
        "requests": [
            {"method": "POST", "path": f"/parse/classes/{cls}", "body": {"name": f"s{i}"}}
            for i in range(3)
        ],
    }
    response = client.http.post(
        "/batch", content=orjson.dumps(body), headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 200, response.text
    assert [set(r) for r in response.json()] == [{"success"}] * 3
    assert names(client, cls) == ["s0", "s1", "s2"]


def test_batch_respects_acl_per_entry(client: ParseClient) -> None:
    cls = unique_class("BatAcl")
    client.create_class(cls, {"name": {"type": "String"}})
    private = client.create(cls, {"name": "private", "ACL": {}})
    public = client.create(cls, {"name": "public"})
    response = client.post(
        "/batch",
        {
            "requests": [
                {
                    "method": "PUT",
                    "path": f"/parse/classes/{cls}/{private}",
                    "body": {"name": "hacked"},
                },
                {
                    "method": "PUT",
                    "path": f"/parse/classes/{cls}/{public}",
                    "body": {"name": "edited"},
                },
            ]
        },
    )
    assert response.status_code == 200, response.text
    results = response.json()
    assert results[0] == {"error": {"code": 101, "error": "Object not found."}}
    assert "success" in results[1]
    assert client.get(f"/classes/{cls}/{private}", master=True).json()["name"] == "private"
    assert client.get(f"/classes/{cls}/{public}", master=True).json()["name"] == "edited"
