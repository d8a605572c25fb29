"""Bad input gets a clear Parse error and changes nothing: never a 500, never a partial write."""

from __future__ import annotations

import time

import pytest

from tests.support import ParseClient, unique_class


@pytest.fixture
def thing(client: ParseClient) -> str:
    cls = unique_class()
    client.create_class(
        cls,
        {
            "name": {"type": "String"},
            "n": {"type": "Number"},
            "meta": {"type": "Object"},
            "tags": {"type": "Array"},
        },
    )
    client.create(cls, {"name": "a" * 40, "n": 1, "meta": {"x": 1}, "tags": ["t"]})
    return cls


def assert_error(response, status: int, code: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["error"], str) and body["error"]


def count(client: ParseClient, cls: str) -> int:
    return int(client.find(cls, count=1, limit=0)["count"])


def test_invalid_json_body(client: ParseClient, thing: str) -> None:
    response = client.post(f"/classes/{thing}", content=b"{not json", master=True)
    assert_error(response, 400, 107)
    response = client.post(f"/classes/{thing}", content=b"[1,2]", master=True)
    assert_error(response, 400, 107)
    assert count(client, thing) == 1


def test_invalid_where_json_and_shapes(client: ParseClient, thing: str) -> None:
    assert_error(client.get(f"/classes/{thing}", params={"where": "{nope"}, master=True), 400, 107)
    assert_error(client.get(f"/classes/{thing}", params={"where": "[1]"}, master=True), 400, 102)
    assert_error(
        client.get(f"/classes/{thing}", params={"where": {"$or": {}}}, master=True), 400, 102
    )
    assert_error(
        client.get(f"/classes/{thing}", params={"where": {"n": {"$foo": 1}}}, master=True), 400, 102
    )
    assert_error(
        client.get(f"/classes/{thing}", params={"where": {"$where": "1"}}, master=True), 400, 105
    )
    assert_error(client.get(f"/classes/{thing}", params={"bogus": "1"}, master=True), 400, 102)


def test_invalid_key_names(client: ParseClient, thing: str) -> None:
    for key in ("$n", "_rperm", "_wperm", "_acl", "a-b", "1abc", "n.$x"):
        response = client.get(f"/classes/{thing}", params={"where": {key: 1}}, master=True)
        assert_error(response, 400, 105)
    assert_error(
        client.get(f"/classes/{thing}", params={"where": {"ACL": {}}}, master=True), 400, 102
    )
    for key in ("_rperm", "$set", "bad-name"):
        response = client.post(f"/classes/{thing}", {key: ["*"]}, master=True)
        assert_error(response, 400, 105)
    assert count(client, thing) == 1


def test_wrong_types_are_111(client: ParseClient, thing: str) -> None:
    for body in (
        {"n": "one"},
        {"name": 5},
        {"tags": {"a": 1}},
        {"meta": [1]},
        {"n": {"__op": "Increment", "amount": "x"}},
        {"name": {"__op": "Increment", "amount": 1}},
    ):
        assert_error(client.post(f"/classes/{thing}", body, master=True), 400, 111)
    assert count(client, thing) == 1


def test_bad_object_ids(client: ParseClient, thing: str) -> None:
    for object_id in ("nope", "x" * 300, "%00", "..%2F"):
        assert_error(client.get(f"/classes/{thing}/{object_id}", master=True), 404, 101)
    assert_error(client.put(f"/classes/{thing}/nope", {"n": 2}, master=True), 404, 101)
    assert_error(client.delete(f"/classes/{thing}/nope", master=True), 404, 101)


def test_deeply_nested_where_is_refused(client: ParseClient, thing: str) -> None:
    where: dict = {"n": 1}
    for _ in range(100):
        where = {"$or": [where]}
    assert_error(client.get(f"/classes/{thing}", params={"where": where}, master=True), 400, 102)
    deep_object: dict = {"x": 1}
    for _ in range(200):
        deep_object = {"x": deep_object}
    assert_error(client.post(f"/classes/{thing}", {"meta": deep_object}, master=True), 400, 107)


def test_oversized_body_is_413_and_writes_nothing(client: ParseClient, thing: str) -> None:
    body = b'{"name":"' + b"x" * (50 * 1024 * 1024) + b'"}'
    response = client.post(f"/classes/{thing}", content=body, master=True)
    assert_error(response, 413, 107)
    assert count(client, thing) == 1


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "-1"},
        {"limit": "abc"},
        {"limit": "1.5"},
        {"skip": "-3"},
        {"skip": "1e12"},
        {"skip": "99999999999999999999"},
        {"order": "$score"},
    ],
)
def test_bad_paging(client: ParseClient, thing: str, params: dict) -> None:
    assert_error(client.get(f"/classes/{thing}", params=params, master=True), 400, 102)


def test_huge_limit_is_clamped(client: ParseClient, thing: str) -> None:
    response = client.get(f"/classes/{thing}", params={"limit": "100000000"}, master=True)
    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


def test_catastrophic_regex_is_bounded(client: ParseClient, thing: str) -> None:
    client.create(thing, {"name": "a" * 5000 + "!"})
    started = time.monotonic()
    response = client.get(
        f"/classes/{thing}", params={"where": {"name": {"$regex": "^(a+)+$"}}}, master=True
    )
    assert time.monotonic() - started < 10
    # RE2 (SQLite) and PostgreSQL's engine both answer quickly; either way, no 500.
    assert response.status_code in (200, 400), response.text
    if response.status_code == 200:
        assert [o["name"] for o in response.json()["results"]] == ["a" * 40]
    for pattern, options in (("(", ""), ("a", "g"), ("x" * 2000, "")):
        response = client.get(
            f"/classes/{thing}",
            params={"where": {"name": {"$regex": pattern, "$options": options}}},
            master=True,
        )
        assert_error(response, 400, 102)


def test_non_finite_and_huge_numbers(client: ParseClient, thing: str) -> None:
    for raw in (b'{"n": NaN}', b'{"n": Infinity}', b'{"n": 1e400}'):
        response = client.post(f"/classes/{thing}", content=raw, master=True)
        assert response.status_code == 400, response.text
    huge = client.post(
        f"/classes/{thing}", content=b'{"n": 1000000000000000000000000000000}', master=True
    )
    assert_error(huge, 400, 111)
    assert_error(client.post(f"/classes/{thing}", {"name": "nul\u0000byte"}, master=True), 400, 107)
    nul_query = client.get(f"/classes/{thing}", params={"where": {"name": "a\u0000"}}, master=True)
    assert nul_query.status_code in (200, 400) and nul_query.status_code != 500
    assert count(client, thing) == 1


def test_unknown_route_and_method(client: ParseClient) -> None:
    assert client.get("/nonsense/route", master=True).status_code == 404
    assert client.request("PUT", "/classes/Foo", json={}, master=True).status_code == 400


def test_unknown_exception_does_not_leak(client: ParseClient, thing: str) -> None:
    """The catch-all answers code 1 and never the exception text (which could carry PHI)."""
    response = client.get(f"/classes/{thing}", params={"where": {"n": {"$in": "x"}}}, master=True)
    assert_error(response, 400, 102)
