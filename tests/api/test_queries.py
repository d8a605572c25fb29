"""Parse queries over HTTP (parse-rest-reference.md §4): every `where` operator, ordering,
paging, projections and the request forms the SDKs use, on both backends."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from tests.support import APP_ID, MASTER_KEY, ParseClient, date, pointer, unique_class

FIELDS: dict[str, Any] = {
    "name": {"type": "String"},
    "n": {"type": "Number"},
    "flag": {"type": "Boolean"},
    "when": {"type": "Date"},
    "tags": {"type": "Array"},
    "meta": {"type": "Object"},
    "note": {"type": "String"},
    "grp": {"type": "String"},
}

# `note` is absent on beta and delta; `owner` is absent on delta and Alphabet.
ROWS: list[dict[str, Any]] = [
    {
        "name": "alpha",
        "n": 1,
        "flag": True,
        "when": date("2024-01-10T00:00:00.000Z"),
        "tags": ["a", "b"],
        "meta": {"color": "red", "n": 1, "deep": {"x": {"y": 1}}},
        "note": "first",
        "grp": "x",
    },
    {
        "name": "beta",
        "n": 2,
        "flag": False,
        "when": date("2024-02-10T00:00:00.000Z"),
        "tags": ["b", "c"],
        "meta": {"color": "blue", "n": 2},
        "grp": "y",
    },
    {
        "name": "gamma",
        "n": 3,
        "flag": True,
        "when": date("2024-03-10T00:00:00.000Z"),
        "tags": ["a", "b", "c"],
        "meta": {"color": "red", "n": 3, "deep": {"x": {"y": 2}}},
        "note": "third",
        "grp": "x",
    },
    {
        "name": "delta",
        "n": 4,
        "flag": False,
        "when": date("2024-04-10T00:00:00.000Z"),
        "tags": [],
        "meta": {"color": "green", "n": 4},
        "grp": "y",
    },
    {
        "name": "Alphabet",
        "n": 5,
        "flag": True,
        "when": date("2024-05-10T12:30:00.250Z"),
        "tags": ["c"],
        "meta": {"color": "RED", "n": 5},
        "note": "a.b*c",
        "grp": "x",
    },
]
ALL = sorted(r["name"] for r in ROWS)


class Fixture:
    """A seeded class: `cls` holds ROWS; alpha and beta point at `t1`, gamma at `t2`."""

    def __init__(self, client: ParseClient) -> None:
        self.client = client
        self.target = unique_class("QTarget")
        client.create_class(self.target, {"label": {"type": "String"}})
        self.t1 = client.create(self.target, {"label": "one"})
        self.t2 = client.create(self.target, {"label": "two"})
        self.cls = unique_class("Q")
        client.create_class(
            self.cls, {**FIELDS, "owner": {"type": "Pointer", "targetClass": self.target}}
        )
        owners = {"alpha": self.t1, "beta": self.t1, "gamma": self.t2}
        self.ids: dict[str, str] = {}
        for row in ROWS:
            body = dict(row)
            if row["name"] in owners:
                body["owner"] = pointer(self.target, owners[row["name"]])
            self.ids[row["name"]] = client.create(self.cls, body)

    def names(self, where: dict[str, Any], **params: Any) -> list[str]:
        return sorted(
            r["name"] for r in self.client.find(self.cls, where=where, **params)["results"]
        )

    def ordered(self, **params: Any) -> list[str]:
        return [r["name"] for r in self.client.find(self.cls, **params)["results"]]

    def error(self, where: dict[str, Any], **params: Any) -> tuple[int, dict[str, Any]]:
        response = self.client.get(
            f"/classes/{self.cls}", params={"where": where, **params}, master=True
        )
        return response.status_code, response.json()


def seed(client: ParseClient) -> Fixture:
    return Fixture(client)


def iso(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


# -- equality -----------------------------------------------------------------------------------


def test_equality_on_string_number_boolean(client: ParseClient) -> None:
    f = seed(client)
    assert f.names({"name": "beta"}) == ["beta"]
    assert f.names({"name": "nobody"}) == []
    assert f.names({"n": 3}) == ["gamma"]
    assert f.names({"n": 3.0}) == ["gamma"]
    assert f.names({"flag": False}) == ["beta", "delta"]
    assert f.names({"flag": True}) == ["Alphabet", "alpha", "gamma"]
    assert f.names({"name": "alpha", "n": 1}) == ["alpha"]
    assert f.names({"name": "alpha", "n": 2}) == []


def test_equality_is_case_sensitive(client: ParseClient) -> None:
    f = seed(client)
    assert f.names({"name": "ALPHA"}) == []
    assert f.names({"name": "Alphabet"}) == ["Alphabet"]


def test_equality_on_date(client: ParseClient) -> None:
    f = seed(client)
    assert f.names({"when": date("2024-03-10T00:00:00.000Z")}) == ["gamma"]
    assert f.names({"when": date("2024-05-10T12:30:00.250Z")}) == ["Alphabet"]
    assert f.names({"when": date("2024-05-10T12:30:00.251Z")}) == []


def test_equality_on_pointer(client: ParseClient) -> None:
    f = seed(client)
    assert f.names({"owner": pointer(f.target, f.t1)}) == ["alpha", "beta"]
    assert f.names({"owner": pointer(f.target, f.t2)}) == ["gamma"]
    assert f.names({"owner": pointer(f.target, "nosuchid00")}) == []


def test_equality_on_object_id(client: ParseClient) -> None:
    f = seed(client)
    assert f.names({"objectId": f.ids["delta"]}) == ["delta"]
    assert f.names({"objectId": {"$in": [f.ids["alpha"], f.ids["beta"]]}}) == ["alpha", "beta"]
    assert f.names({"objectId": {"$gt": f.ids["alpha"]}}) == sorted(
        name for name, oid in f.ids.items() if oid > f.ids["alpha"]
    )


def test_query_returns_typed_encoding(client: ParseClient) -> None:
    f = seed(client)
    [row] = client.find(f.cls, where={"name": "alpha"})["results"]
    assert row["objectId"] == f.ids["alpha"]
    assert row["n"] == 1
    assert row["flag"] is True
    assert row["when"] == date("2024-01-10T00:00:00.000Z")
    assert row["tags"] == ["a", "b"]
    assert row["meta"] == {"color": "red", "n": 1, "deep": {"x": {"y": 1}}}
    assert row["owner"] == pointer(f.target, f.t1)
    for key in ("createdAt", "updatedAt"):
        assert isinstance(row[key], str) and row[key].endswith("Z") and len(row[key]) == 24


# -- comparisons --------------------------------------------------------------------------------


def test_number_comparisons(client: ParseClient) -> None:
    f = seed(client)
    assert f.names({"n": {"$gt": 2}}) == ["Alphabet", "delta", "gamma"]
    assert f.names({"n": {"$gte": 2, "$lt": 4}}) == ["beta", "gamma"]
    assert f.names({"n": {"$lte": 1}}) == ["alpha"]
    assert f.names({"n": {"$lt": 1}}) == []
    assert f.names({"n": {"$gt": 1.5, "$lte": 2}}) == ["beta"]
    assert f.names({"n": {"$gte": 5}}) == ["Alphabet"]


def test_string_comparisons(client: ParseClient) -> None:
    f = seed(client)
    assert f.names({"name": {"$gt": "beta"}}) == ["delta", "gamma"]
    assert f.names({"name": {"$gte": "beta", "$lt": "delta"}}) == ["beta"]
    assert f.names({"name": {"$lt": "b"}}) == ["Alphabet", "alpha"]
    assert f.names({"note": {"$gt": "a"}}) == ["Alphabet", "alpha", "gamma"]


def test_date_comparisons(client: ParseClient) -> None:
    f = seed(client)
    assert f.names({"when": {"$gt": date("2024-02-10T00:00:00.000Z")}}) == [
        "Alphabet",
        "delta",
        "gamma",
    ]
    assert f.names({"when": {"$lte": date("2024-02-10T00:00:00.000Z")}}) == ["alpha", "beta"]
    assert f.names({"when": {"$lt": date("2024-02-10T00:00:00.000Z")}}) == ["alpha"]
    assert f.names(
        {
            "when": {
                "$gte": date("2024-02-10T00:00:00.000Z"),
                "$lt": date("2024-04-10T00:00:00.000Z"),
            }
        }
    ) == ["beta", "gamma"]
    # Millisecond precision.
    assert f.names({"when": {"$gt": date("2024-05-10T12:30:00.249Z")}}) == ["Alphabet"]
    assert f.names({"when": {"$gt": date("2024-05-10T12:30:00.250Z")}}) == []
    assert f.names({"when": {"$gte": date("2024-05-10T12:30:00.250Z")}}) == ["Alphabet"]


def test_created_at_comparison(client: ParseClient) -> None:
    f = seed(client)
    [row] = client.find(f.cls, where={"name": "gamma"})["results"]
    created = row["createdAt"]
    assert f.names({"createdAt": {"$lte": date(created)}, "name": "gamma"}) == ["gamma"]
    assert f.names({"createdAt": {"$gt": date(created)}, "name": "gamma"}) == []
    assert f.names({"createdAt": {"$lt": date("2000-01-01T00:00:00.000Z")}}) == []
    assert f.names({"createdAt": {"$gt": date("2000-01-01T00:00:00.000Z")}}) == ALL


def test_relative_time(client: ParseClient) -> None:
    cls = unique_class("Rel")
    client.create_class(cls, {"name": {"type": "String"}, "at": {"type": "Date"}})
    now = datetime.now(UTC)
    client.create(cls, {"name": "past", "at": date(iso(now - timedelta(days=3)))})
    client.create(cls, {"name": "now", "at": date(iso(now))})
    client.create(cls, {"name": "future", "at": date(iso(now + timedelta(days=3)))})

    def names(where: dict[str, Any]) -> list[str]:
        return sorted(r["name"] for r in client.find(cls, where=where)["results"])

    assert names({"at": {"$lt": {"$relativeTime": "1 day ago"}}}) == ["past"]
    assert names({"at": {"$gt": {"$relativeTime": "in 1 day"}}}) == ["future"]
    assert names(
        {"at": {"$gt": {"$relativeTime": "2 days ago"}, "$lt": {"$relativeTime": "in 2 days"}}}
    ) == ["now"]
    assert names({"at": {"$gte": {"$relativeTime": "4 days ago"}}}) == ["future", "now", "past"]
    assert names({"at": {"$lt": {"$relativeTime": "12 hours ago"}}}) == ["past"]
    assert names({"at": {"$gt": {"$relativeTime": "in 2 hours"}}}) == ["future"]


def test_ne_matches_missing_fields(client: ParseClient) -> None:
    f = seed(client)
    assert f.names({"note": {"$ne": "first"}}) == ["Alphabet", "beta", "delta", "gamma"]
    assert f.names({"n": {"$ne": 3}}) == ["Alphabet", "alpha", "beta", "delta"]
    assert f.names({"owner": {"$ne": pointer(f.target, f.t1)}}) == ["Alphabet", "delta", "gamma"]
    assert f.names({"flag": {"$ne": True}}) == ["beta", "delta"]
    assert f.names({"note": {"$ne": None}}) == ["Alphabet", "alpha", "gamma"]


def test_eq(client: ParseClient) -> None:
    f = seed(client)
    assert f.names({"n": {"$eq": 3}}) == ["gamma"]
    assert f.names({"name": {"$eq": "delta"}}) == ["delta"]
    assert f.names({"owner": {"$eq": pointer(f.target, f.t2)}}) == ["gamma"]
    assert f.names({"when": {"$eq": date("2024-01-10T00:00:00.000Z")}}) == ["alpha"]


def test_in_and_nin(client: ParseClient) -> None:
    f = seed(client)
    assert f.names({"name": {"$in": ["alpha", "delta", "zzz"]}}) == ["alpha", "delta"]
    assert f.names({"name": {"$in": []}}) == []
    assert f.names({"n": {"$in": [2, 4]}}) == ["beta", "delta"]
    assert f.names({"n": {"$nin": [1, 2]}}) == ["Alphabet", "delta", "gamma"]
    assert f.names({"name": {"$nin": []}}) == ALL
    # $nin matches rows where the field is missing, like $ne.
    assert f.names({"note": {"$nin": ["first", "third"]}}) == ["Alphabet", "beta", "delta"]
    assert f.names(
        {"when": {"$in": [date("2024-01-10T00:00:00.000Z"), date("2024-04-10T00:00:00.000Z")]}}
    ) == ["alpha", "delta"]


def test_in_and_nin_on_pointers(client: ParseClient) -> None:
    f = seed(client)
    assert f.names({"owner": {"$in": [pointer(f.target, f.t2)]}}) == ["gamma"]
    assert f.names({"owner": {"$in": [pointer(f.target, f.t1), pointer(f.target, f.t2)]}}) == [
        "alpha",
        "beta",
        "gamma",
    ]
    assert f.names({"owner": {"$nin": [pointer(f.target, f.t1)]}}) == ["Alphabet", "delta", "gamma"]


def test_exists(client: ParseClient) -> None:
    f = seed(client)
    assert f.names({"note": {"$exists": True}}) == ["Alphabet", "alpha", "gamma"]
    assert f.names({"note": {"$exists": False}}) == ["beta", "delta"]
    assert f.names({"owner": {"$exists": False}}) == ["Alphabet", "delta"]
    assert f.names({"owner": {"$exists": True}}) == ["alpha", "beta", "gamma"]
    # An empty array still exists.
    assert f.names({"tags": {"$exists": True}}) == ALL


# -- arrays -------------------------------------------------------------------------------------


def test_array_equality_with_scalar_means_contains(client: ParseClient) -> None:
    f = seed(client)
    assert f.names({"tags": "a"}) == ["alpha", "gamma"]
    assert f.names({"tags": "c"}) == ["Alphabet", "beta", "gamma"]
    assert f.names({"tags": "z"}) == []


def test_array_all(client: ParseClient) -> None:
    f = seed(client)
    assert f.names({"tags": {"$all": ["a", "b"]}}) == ["alpha", "gamma"]
    assert f.names({"tags": {"$all": ["b", "c"]}}) == ["beta", "gamma"]
    assert f.names({"tags": {"$all": ["a", "b", "c"]}}) == ["gamma"]
    assert f.names({"tags": {"$all": ["a", "z"]}}) == []


def test_array_contained_by(client: ParseClient) -> None:
    f = seed(client)
    assert f.names({"tags": {"$containedBy": ["a", "b"]}}) == ["alpha", "delta"]
    assert f.names({"tags": {"$containedBy": ["a", "b", "c"]}}) == ALL
    assert f.names({"tags": {"$containedBy": ["c"]}}) == ["Alphabet", "delta"]


def test_array_in_and_nin(client: ParseClient) -> None:
    f = seed(client)
    assert f.names({"tags": {"$in": ["c"]}}) == ["Alphabet", "beta", "gamma"]
    assert f.names({"tags": {"$in": ["a", "c"]}}) == ["Alphabet", "alpha", "beta", "gamma"]
    assert f.names({"tags": {"$nin": ["a"]}}) == ["Alphabet", "beta", "delta"]


def test_array_all_starting_with(client: ParseClient) -> None:
    cls = unique_class("AllStart")
    client.create_class(cls, {"name": {"type": "String"}, "words": {"type": "Array"}})
    client.create(cls, {"name": "one", "words": ["apple", "banana"]})
    client.create(cls, {"name": "two", "words": ["apricot", "cherry"]})
    client.create(cls, {"name": "three", "words": ["avocado"]})

    def names(where: dict[str, Any]) -> list[str]:
        return sorted(r["name"] for r in client.find(cls, where=where)["results"])

    assert names({"words": {"$all": [{"$regex": "^\\Qap\\E"}]}}) == ["one", "two"]
    assert names({"words": {"$all": [{"$regex": "^\\Qap\\E"}, {"$regex": "^\\Qch\\E"}]}}) == ["two"]


def test_array_of_pointers_contains(client: ParseClient) -> None:
    target = unique_class("APT")
    client.create_class(target, {"label": {"type": "String"}})
    a = client.create(target, {"label": "a"})
    b = client.create(target, {"label": "b"})
    cls = unique_class("APS")
    client.create_class(cls, {"name": {"type": "String"}, "refs": {"type": "Array"}})
    client.create(cls, {"name": "ab", "refs": [pointer(target, a), pointer(target, b)]})
    client.create(cls, {"name": "b", "refs": [pointer(target, b)]})

    def names(where: dict[str, Any]) -> list[str]:
        return sorted(r["name"] for r in client.find(cls, where=where)["results"])

    assert names({"refs": pointer(target, a)}) == ["ab"]
    assert names({"refs": pointer(target, b)}) == ["ab", "b"]
    assert names({"refs": {"$all": [pointer(target, a), pointer(target, b)]}}) == ["ab"]
    assert names({"refs": {"$in": [pointer(target, a)]}}) == ["ab"]


# -- regex --------------------------------------------------------------------------------------

REGEX_ROWS = ["hello\nworld", "Hello World", "a.b*c", "axb", "x+y", "xxy", "end."]


def regex_fixture(client: ParseClient) -> Any:
    cls = unique_class("Rx")
    client.create_class(cls, {"text": {"type": "String"}})
    for text in REGEX_ROWS:
        client.create(cls, {"text": text})

    def texts(regex: str, options: str | None = None) -> list[str]:
        cond: dict[str, Any] = {"$regex": regex}
        if options is not None:
            cond["$options"] = options
        return sorted(r["text"] for r in client.find(cls, where={"text": cond})["results"])

    return cls, texts


def test_regex_basic(client: ParseClient) -> None:
    f = seed(client)
    assert f.names({"name": {"$regex": "^a"}}) == ["alpha"]
    assert f.names({"name": {"$regex": "ph"}}) == ["Alphabet", "alpha"]
    assert f.names({"name": {"$regex": "a$"}}) == ["alpha", "beta", "delta", "gamma"]
    assert f.names({"name": {"$regex": "^(beta|delta)$"}}) == ["beta", "delta"]
    assert f.names({"name": {"$regex": "^a", "$options": "i"}}) == ["Alphabet", "alpha"]


def test_regex_options(client: ParseClient) -> None:
    _, texts = regex_fixture(client)
    assert texts("^hello", "i") == ["Hello World", "hello\nworld"]
    assert texts("^hello") == ["hello\nworld"]
    # m: ^ and $ match at line breaks.
    assert texts("^world") == []
    assert texts("^world", "m") == ["hello\nworld"]
    assert texts("hello$", "m") == ["hello\nworld"]
    # s: . matches a newline.
    assert texts("hello.world") == []
    assert texts("hello.world", "s") == ["hello\nworld"]
    assert texts("hello.world", "is") == ["Hello World", "hello\nworld"]
    # x: whitespace and comments in the pattern are ignored.
    assert texts("^h e l l o  # greeting", "x") == ["hello\nworld"]
    assert texts("^h e l l o", "xi") == ["Hello World", "hello\nworld"]


def test_regex_bad_options_is_102(client: ParseClient) -> None:
    cls, _ = regex_fixture(client)
    response = client.get(
        f"/classes/{cls}", params={"where": {"text": {"$regex": "a", "$options": "g"}}}, master=True
    )
    assert response.status_code == 400
    assert response.json()["code"] == 102


def test_regex_sdk_quoting(client: ParseClient) -> None:
    _, texts = regex_fixture(client)
    # Unquoted, `.` and `+` are metacharacters.
    assert texts("^a.b") == ["a.b*c", "axb"]
    assert texts("x+y") == ["xxy"]
    # startsWith / endsWith / contains as the SDK sends them: literal.
    assert texts("^\\Qa.b\\E") == ["a.b*c"]
    assert texts("\\Qb*c\\E$") == ["a.b*c"]
    assert texts("\\Q.b*\\E") == ["a.b*c"]
    assert texts("\\Qx+y\\E") == ["x+y"]
    assert texts("\\Q.\\E$") == ["end."]
    assert texts("^\\Qhello w\\E", "i") == ["Hello World"]
    assert texts("^\\Qa.b\\E.*c$") == ["a.b*c"]


# -- dot notation -------------------------------------------------------------------------------


def test_dot_notation_into_object_fields(client: ParseClient) -> None:
    f = seed(client)
    assert f.names({"meta.color": "red"}) == ["alpha", "gamma"]
    assert f.names({"meta.n": {"$gt": 2}}) == ["Alphabet", "delta", "gamma"]
    assert f.names({"meta.n": 4}) == ["delta"]
    assert f.names({"meta.color": {"$in": ["blue", "green"]}}) == ["beta", "delta"]
    assert f.names({"meta.color": {"$regex": "^red$", "$options": "i"}}) == [
        "Alphabet",
        "alpha",
        "gamma",
    ]
    assert f.names({"meta.missing": "x"}) == []


def test_dot_notation_nested(client: ParseClient) -> None:
    f = seed(client)
    assert f.names({"meta.deep.x.y": 2}) == ["gamma"]
    assert f.names({"meta.deep.x.y": {"$gte": 1}}) == ["alpha", "gamma"]
    assert f.names({"meta.deep.x.y": {"$exists": True}}) == ["alpha", "gamma"]
    assert f.names({"meta.deep.x.y": {"$exists": False}}) == ["Alphabet", "beta", "delta"]


def test_dot_notation_three_levels(client: ParseClient) -> None:
    cls = unique_class("Dot")
    client.create_class(cls, {"name": {"type": "String"}, "a": {"type": "Object"}})
    client.create(cls, {"name": "one", "a": {"b": {"c": "x"}}})
    client.create(cls, {"name": "two", "a": {"b": {"c": "y"}}})
    client.create(cls, {"name": "three", "a": {"b": 1}})
    found = client.find(cls, where={"a.b.c": "x"})["results"]
    assert [r["name"] for r in found] == ["one"]
    found = client.find(cls, where={"a.b.c": {"$ne": "x"}})["results"]
    assert sorted(r["name"] for r in found) == ["three", "two"]


# -- boolean combinators ------------------------------------------------------------------------


def test_or(client: ParseClient) -> None:
    f = seed(client)
    assert f.names({"$or": [{"n": 1}, {"name": "delta"}]}) == ["alpha", "delta"]
    assert f.names({"$or": [{"n": {"$gt": 4}}, {"note": {"$exists": False}}]}) == [
        "Alphabet",
        "beta",
        "delta",
    ]
    # $or combines with sibling constraints by AND.
    assert f.names({"flag": True, "$or": [{"n": 1}, {"n": 2}]}) == ["alpha"]


def test_and(client: ParseClient) -> None:
    f = seed(client)
    assert f.names({"$and": [{"n": {"$gt": 1}}, {"n": {"$lt": 4}}]}) == ["beta", "gamma"]
    assert f.names({"$and": [{"tags": "a"}, {"tags": "c"}]}) == ["gamma"]


def test_nor(client: ParseClient) -> None:
    f = seed(client)
    assert f.names({"$nor": [{"n": 1}, {"n": 2}]}) == ["Alphabet", "delta", "gamma"]
    assert f.names({"$nor": [{"note": "first"}]}) == ["Alphabet", "beta", "delta", "gamma"]


def test_nested_boolean(client: ParseClient) -> None:
    f = seed(client)
    assert f.names(
        {"$and": [{"$or": [{"n": 1}, {"n": 5}, {"n": 2}]}, {"$or": [{"flag": True}]}]}
    ) == ["Alphabet", "alpha"]
    assert f.names({"$or": [{"$and": [{"grp": "x"}, {"n": {"$gt": 2}}]}, {"name": "beta"}]}) == [
        "Alphabet",
        "beta",
        "gamma",
    ]
    assert f.names({"$nor": [{"$or": [{"n": 1}, {"n": 2}]}, {"grp": "y"}]}) == ["Alphabet", "gamma"]
    assert f.names({"$or": [{"$nor": [{"grp": "x"}]}, {"n": 1}]}) == ["alpha", "beta", "delta"]


def test_or_not_an_array_is_102(client: ParseClient) -> None:
    f = seed(client)
    status, body = f.error({"$or": {"n": 1}})
    assert (status, body["code"]) == (400, 102)


# -- subqueries ---------------------------------------------------------------------------------


def test_in_query_and_not_in_query(client: ParseClient) -> None:
    f = seed(client)
    sub = {"className": f.target, "where": {"label": "one"}}
    assert f.names({"owner": {"$inQuery": sub}}) == ["alpha", "beta"]
    assert f.names({"owner": {"$notInQuery": sub}}) == ["Alphabet", "delta", "gamma"]
    everything = {"className": f.target, "where": {}}
    assert f.names({"owner": {"$inQuery": everything}}) == ["alpha", "beta", "gamma"]
    nothing = {"className": f.target, "where": {"label": "zzz"}}
    assert f.names({"owner": {"$inQuery": nothing}}) == []
    assert f.names({"owner": {"$notInQuery": nothing}}) == ALL


def test_select_and_dont_select(client: ParseClient) -> None:
    f = seed(client)
    pref = unique_class("Pref")
    client.create_class(pref, {"key": {"type": "String"}, "active": {"type": "Boolean"}})
    client.create(pref, {"key": "x", "active": True})
    client.create(pref, {"key": "y", "active": False})
    client.create(pref, {"key": "z", "active": True})
    query = {"query": {"className": pref, "where": {"active": True}}, "key": "key"}
    assert f.names({"grp": {"$select": query}}) == ["Alphabet", "alpha", "gamma"]
    assert f.names({"grp": {"$dontSelect": query}}) == ["beta", "delta"]
    every = {"query": {"className": pref, "where": {}}, "key": "key"}
    assert f.names({"grp": {"$select": every}}) == ALL
    assert f.names({"grp": {"$dontSelect": every}}) == []


def test_related_to(client: ParseClient) -> None:
    f = seed(client)
    owner_cls = unique_class("Owner")
    client.create_class(
        owner_cls,
        {"title": {"type": "String"}, "members": {"type": "Relation", "targetClass": f.cls}},
    )
    owner = client.create(owner_cls, {"title": "o1"})
    other = client.create(owner_cls, {"title": "o2"})
    response = client.put(
        f"/classes/{owner_cls}/{owner}",
        {
            "members": {
                "__op": "AddRelation",
                "objects": [pointer(f.cls, f.ids["alpha"]), pointer(f.cls, f.ids["gamma"])],
            }
        },
        master=True,
    )
    assert response.status_code == 200, response.text
    response = client.put(
        f"/classes/{owner_cls}/{other}",
        {"members": {"__op": "AddRelation", "objects": [pointer(f.cls, f.ids["beta"])]}},
        master=True,
    )
    assert response.status_code == 200, response.text

    related = {"$relatedTo": {"object": pointer(owner_cls, owner), "key": "members"}}
    assert f.names(related) == ["alpha", "gamma"]
    assert f.names({**related, "n": {"$gt": 1}}) == ["gamma"]
    assert f.names({"$relatedTo": {"object": pointer(owner_cls, other), "key": "members"}}) == [
        "beta"
    ]

    # The SDK's form: query the owner class with redirectClassNameForKey.
    body = client.find(owner_cls, where=related, redirectClassNameForKey="members")
    assert sorted(r["name"] for r in body["results"]) == ["alpha", "gamma"]
    assert body["className"] == f.cls
    assert {r["className"] for r in body["results"]} == {f.cls}  # as RestQuery: the SDK's get()

    # Reading the owner gives only the relation descriptor.
    got = client.get(f"/classes/{owner_cls}/{owner}", master=True).json()
    assert got["members"] == {"__type": "Relation", "className": f.cls}


# -- order, limit, skip, count ------------------------------------------------------------------


def test_order_multi_key(client: ParseClient) -> None:
    f = seed(client)
    assert f.ordered(order="n") == ["alpha", "beta", "gamma", "delta", "Alphabet"]
    assert f.ordered(order="-n") == ["Alphabet", "delta", "gamma", "beta", "alpha"]
    assert f.ordered(order="grp,-n") == ["Alphabet", "gamma", "alpha", "delta", "beta"]
    assert f.ordered(order="-grp,n") == ["beta", "delta", "alpha", "gamma", "Alphabet"]
    assert f.ordered(order="-flag,n") == ["alpha", "gamma", "Alphabet", "beta", "delta"]
    assert f.ordered(order="when") == ["alpha", "beta", "gamma", "delta", "Alphabet"]
    assert f.ordered(order="-when") == ["Alphabet", "delta", "gamma", "beta", "alpha"]


def test_order_by_dotted_key(client: ParseClient) -> None:
    f = seed(client)
    assert f.ordered(order="-meta.n") == ["Alphabet", "delta", "gamma", "beta", "alpha"]
    assert f.ordered(order="meta.n") == ["alpha", "beta", "gamma", "delta", "Alphabet"]
    assert f.ordered(order="grp,-meta.n") == ["Alphabet", "gamma", "alpha", "delta", "beta"]


def test_order_by_created_at(client: ParseClient) -> None:
    f = seed(client)
    # Rows were created in ROWS order.
    assert f.ordered(order="createdAt") == [r["name"] for r in ROWS]
    assert f.ordered(order="-createdAt") == [r["name"] for r in reversed(ROWS)]


def test_limit_and_skip(client: ParseClient) -> None:
    f = seed(client)
    assert f.ordered(order="n", limit=2) == ["alpha", "beta"]
    assert f.ordered(order="n", limit=2, skip=1) == ["beta", "gamma"]
    assert f.ordered(order="n", skip=3) == ["delta", "Alphabet"]
    assert f.ordered(order="n", skip=10) == []
    assert f.ordered(order="n", limit=1, where={"flag": False}) == ["beta"]
    assert f.ordered(order="n", limit="2", skip="1") == ["beta", "gamma"]


def test_count(client: ParseClient) -> None:
    f = seed(client)
    assert client.find(f.cls, count=1, limit=0) == {"results": [], "count": 5}
    assert client.find(f.cls, count=1, limit=0, where={"flag": True}) == {"results": [], "count": 3}
    body = client.find(f.cls, count=1, limit=1, skip=1, order="n")
    assert body["count"] == 5
    assert [r["name"] for r in body["results"]] == ["beta"]
    assert client.find(f.cls, count=1, limit=0, where={"name": "nobody"}) == {
        "results": [],
        "count": 0,
    }
    assert "count" not in client.find(f.cls)


def _bulk_create(client: ParseClient, cls: str, total: int) -> None:
    for start in range(0, total, 50):
        requests = [
            {"method": "POST", "path": f"/parse/classes/{cls}", "body": {"i": i}}
            for i in range(start, min(start + 50, total))
        ]
        response = client.post("/batch", {"requests": requests}, master=True)
        assert response.status_code == 200, response.text
        assert all("success" in r for r in response.json()), response.text


def test_default_limit_and_max_limit(client: ParseClient) -> None:
    cls = unique_class("Many")
    client.create_class(cls, {"i": {"type": "Number"}})
    _bulk_create(client, cls, 1005)
    assert len(client.find(cls)["results"]) == 100
    assert len(client.find(cls, limit=1001)["results"]) == 1000
    assert len(client.find(cls, limit=5000)["results"]) == 1000
    assert len(client.find(cls, limit=1000)["results"]) == 1000
    assert client.find(cls, limit=0, count=1) == {"results": [], "count": 1005}
    page = client.find(cls, order="i", skip=1000, limit=1000)["results"]
    assert [r["i"] for r in page] == [1000, 1001, 1002, 1003, 1004]
    first = client.find(cls, order="-i")["results"]
    assert [r["i"] for r in first] == list(range(1004, 904, -1))


# -- projections --------------------------------------------------------------------------------

ALWAYS = {"objectId", "createdAt", "updatedAt"}


def test_keys(client: ParseClient) -> None:
    f = seed(client)
    rows = client.find(f.cls, keys="name", order="n")["results"]
    assert [r["name"] for r in rows] == ["alpha", "beta", "gamma", "delta", "Alphabet"]
    for row in rows:
        assert set(row) - {"ACL"} == ALWAYS | {"name"}
    rows = client.find(f.cls, keys="name,n", where={"name": "beta"})["results"]
    assert [{k: v for k, v in r.items() if k not in ALWAYS | {"ACL"}} for r in rows] == [
        {"name": "beta", "n": 2}
    ]
    assert rows[0]["objectId"] == f.ids["beta"]


def test_keys_dotted_into_object(client: ParseClient) -> None:
    f = seed(client)
    [row] = client.find(f.cls, keys="meta.color", where={"name": "gamma"})["results"]
    assert row["meta"] == {"color": "red"}
    assert "name" not in row


def test_exclude_keys(client: ParseClient) -> None:
    f = seed(client)
    [row] = client.find(f.cls, excludeKeys="meta,tags", where={"name": "alpha"})["results"]
    assert "meta" not in row and "tags" not in row
    assert row["name"] == "alpha" and row["n"] == 1
    assert set(row) >= ALWAYS
    # Asking to exclude the always-present keys does not remove them.
    [row] = client.find(f.cls, excludeKeys="objectId,name", where={"name": "alpha"})["results"]
    assert "name" not in row
    assert set(row) >= ALWAYS


def test_keys_on_get(client: ParseClient) -> None:
    f = seed(client)
    response = client.get(f"/classes/{f.cls}/{f.ids['alpha']}", params={"keys": "n"}, master=True)
    assert response.status_code == 200
    assert set(response.json()) - {"ACL"} == ALWAYS | {"n"}


# -- unknown fields and type mismatches ---------------------------------------------------------


def test_unknown_fields_behave_as_missing(client: ParseClient) -> None:
    f = seed(client)
    assert f.names({"nosuch": 1}) == []
    assert f.names({"nosuch": "x"}) == []
    assert f.names({"nosuch": {"$exists": False}}) == ALL
    assert f.names({"nosuch": {"$exists": True}}) == []
    assert f.names({"nosuch": {"$ne": 1}}) == ALL
    assert f.names({"nosuch": {"$in": [1, 2]}}) == []
    assert f.names({"nosuch": {"$nin": [1, 2]}}) == ALL
    assert f.names({"nosuch": {"$gt": 1}}) == []


def test_query_on_unknown_class_is_empty(client: ParseClient) -> None:
    assert client.find(unique_class("Nope")) == {"results": []}
    assert client.find(unique_class("Nope"), count=1, limit=0) == {"results": [], "count": 0}


MISMATCHED: list[dict[str, Any]] = [
    {"n": "3"},
    {"n": {"$gt": "a"}},
    {"n": {"$lt": "9"}},
    {"name": 3},
    {"name": {"$gt": 1}},
    {"flag": "true"},
    {"flag": 1},
    {"when": "2024-03-10T00:00:00.000Z"},
    {"when": {"$lt": 5}},
    {"n": {"$in": ["1", "2"]}},
    {"meta.n": "3"},
    {"tags": {"$all": [1]}},
]


@pytest.mark.parametrize("where", MISMATCHED, ids=[orjson.dumps(w).decode() for w in MISMATCHED])
def test_type_mismatched_comparisons_match_nothing(
    client: ParseClient, where: dict[str, Any]
) -> None:
    f = seed(client)
    response = client.get(f"/classes/{f.cls}", params={"where": where}, master=True)
    assert response.status_code == 200, response.text
    assert response.json() == {"results": []}


# -- request forms ------------------------------------------------------------------------------


def test_where_as_json_string_in_url(client: ParseClient) -> None:
    f = seed(client)
    raw = '{"n":{"$gte":4}}'
    response = client.http.get(
        f"/classes/{f.cls}",
        params={"where": raw, "order": "-n", "limit": "1"},
        headers={"X-Parse-Application-Id": APP_ID, "X-Parse-Master-Key": MASTER_KEY},
    )
    assert response.status_code == 200, response.text
    assert [r["name"] for r in response.json()["results"]] == ["Alphabet"]


def test_js_sdk_post_as_get_form(client: ParseClient) -> None:
    f = seed(client)
    body = {
        "_method": "GET",
        "_ApplicationId": APP_ID,
        "_MasterKey": MASTER_KEY,
        "_ClientVersion": "js5.3.0-alpha.4",
        "_InstallationId": str(uuid.uuid4()),
        "where": {"flag": True, "n": {"$lt": 5}},
        "order": "-n",
        "limit": 10,
    }
    response = client.http.post(
        f"/classes/{f.cls}", content=orjson.dumps(body), headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 200, response.text
    assert [r["name"] for r in response.json()["results"]] == ["gamma", "alpha"]

    count = {
        "_method": "GET",
        "_ApplicationId": APP_ID,
        "_MasterKey": MASTER_KEY,
        "where": {"grp": "y"},
        "limit": 0,
        "count": 1,
    }
    response = client.http.post(
        f"/classes/{f.cls}", content=orjson.dumps(count), headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"results": [], "count": 2}


def test_invalid_query_parameter_is_102(client: ParseClient) -> None:
    f = seed(client)
    response = client.get(f"/classes/{f.cls}", params={"frobnicate": "1"}, master=True)
    assert response.status_code == 400
    assert response.json()["code"] == 102


def test_seed_patient_profile_flow(client: ParseClient) -> None:
    user_id = uuid.uuid4().hex[:10]
    other_id = uuid.uuid4().hex[:10]
    mrn = f"MRN-{uuid.uuid4().hex[:8]}"
    created = client.create(
        "PatientProfile",
        {
            "user": pointer("_User", user_id),
            "medicalRecordNumber": mrn,
            "displayName": "Pat Example",
            "isActive": True,
        },
    )
    client.create(
        "PatientProfile",
        {
            "user": pointer("_User", other_id),
            "medicalRecordNumber": mrn + "-other",
            "displayName": "Someone Else",
            "isActive": True,
        },
    )
    where = '{"user":{"__type":"Pointer","className":"_User","objectId":"' + user_id + '"}}'
    response = client.http.get(
        f"/classes/PatientProfile?where={where}",
        headers={"X-Parse-Application-Id": APP_ID, "X-Parse-Master-Key": MASTER_KEY},
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["objectId"] for r in results] == [created]
    assert results[0]["medicalRecordNumber"] == mrn
    assert results[0]["displayName"] == "Pat Example"
    assert results[0]["isActive"] is True
    assert results[0]["user"] == pointer("_User", user_id)
