"""The in-memory matcher on its own: the Mongo-derived rules, typed operands and its errors.
(Agreement with SQL on generated data is tests/live_query/test_matcher_agreement.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from mindharbor.api.live_query.matcher import compile_where, json_equal
from mindharbor.errors import IncorrectType, InvalidKeyName, InvalidQuery, OperationForbidden
from mindharbor.settings import Settings
from mindharbor.storage.codec import parse_iso
from mindharbor.storage.schema import ClassSchema, FieldSpec

LIMITS = Settings(master_key="x")
SCHEMA = ClassSchema(
    name="Note",
    fields={
        "title": FieldSpec("title", "String"),
        "score": FieldSpec("score", "Number"),
        "done": FieldSpec("done", "Boolean"),
        "tags": FieldSpec("tags", "Array"),
        "meta": FieldSpec("meta", "Object"),
        "due": FieldSpec("due", "Date"),
        "owner": FieldSpec("owner", "Pointer", target_class="_User"),
        "members": FieldSpec("members", "Relation", target_class="_User"),
    },
)
ROW: dict[str, Any] = {
    "objectId": "abc",
    "createdAt": parse_iso("2030-01-01T00:00:00Z"),  # stored Dates are naive UTC
    "updatedAt": parse_iso("2030-01-02T00:00:00Z"),
    "title": "Intake",
    "score": 7,
    "done": False,
    "tags": ["a", 2, True, {"__type": "Pointer", "className": "_User", "objectId": "u1"}],
    "meta": {"color": "red", "size": {"w": 3}},
    "due": parse_iso("2030-05-01T12:00:00Z"),
    "owner": "u1",
}
EMPTY: dict[str, Any] = {"objectId": "x", "createdAt": ROW["createdAt"]}


def hit(where: dict[str, Any], row: dict[str, Any] = ROW, **kw: Any) -> bool:
    return compile_where(SCHEMA, where, LIMITS, **kw)(row)


@pytest.mark.parametrize(
    "where",
    [
        {"title": "Intake"},
        {"score": {"$gt": 6.5, "$lte": 7}},
        {"done": False},
        {"tags": "a"},  # equality on an array means "contains"
        {"tags": 2},
        {"tags": {"$all": ["a", True]}},
        {"tags": {"$all": [{"$regex": "^a"}]}},
        {"tags": {"__type": "Pointer", "className": "_User", "objectId": "u1"}},
        {"meta.color": "red"},
        {"meta.size.w": {"$gte": 3}},
        {"meta": {"color": "red", "size": {"w": 3}}},
        {"due": {"$lt": {"__type": "Date", "iso": "2030-06-01T00:00:00.000Z"}}},
        {"due": {"$gt": {"$relativeTime": "1 day ago"}}},
        {"owner": {"__type": "Pointer", "className": "_User", "objectId": "u1"}},
        {"title": {"$regex": "^int", "$options": "i"}},
        {"title": {"$regex": "\\Qtak\\E"}},
        {"title": {"$in": ["x", "Intake"]}, "score": {"$nin": [1, 2]}},
        {"$or": [{"score": 1}, {"done": False}]},
        {"$nor": [{"score": 1}, {"title": "x"}]},
        {"nope": {"$exists": False}, "nope2": {"$ne": 3}},  # unknown fields are missing
        {
            "objectId": "abc",
            "createdAt": {"$lt": {"__type": "Date", "iso": "2031-01-01T00:00:00Z"}},
        },
    ],
)
def test_matches(where: dict[str, Any]) -> None:
    assert hit(where)


@pytest.mark.parametrize(
    "where",
    [
        {"title": 7},  # a different type matches nothing
        {"score": {"$gt": "1"}},
        {"done": 0},
        {"tags": {"$containedBy": ["a", 2]}},
        {"tags": ["a"]},  # a list operand is whole-array equality
        {"meta.color": {"$gt": 1}},
        {"owner": "u1"},  # a Pointer field needs a Pointer operand
        {"owner": {"__type": "Pointer", "className": "Other", "objectId": "u1"}},
        {"title": {"$regex": "^int"}},
        {"nope": 1},
        {"score": {"$in": []}},
        {"$and": [{"score": 7}, {"done": True}]},
    ],
)
def test_does_not_match(where: dict[str, Any]) -> None:
    assert not hit(where)


def test_missing_fields_follow_mongo() -> None:
    assert hit({"score": {"$ne": 3}}, EMPTY)
    assert hit({"score": {"$nin": [3]}}, EMPTY)
    assert hit({"$nor": [{"score": {"$gt": 0}}]}, EMPTY)
    assert hit({"score": None, "tags": None, "meta.size": None}, EMPTY)
    assert hit({"tags": {"$containedBy": ["a"]}}, EMPTY)
    assert not hit({"score": {"$lt": 100}}, EMPTY)
    assert not hit({"tags": {"$ne": None}}, EMPTY)
    assert not hit({"meta": {"$exists": True}}, EMPTY)


@pytest.mark.parametrize(
    ("where", "error"),
    [
        ({"$where": "1"}, InvalidKeyName),
        ({"ACL": {"$exists": True}}, InvalidQuery),
        ({"score": {"$foo": 1}}, InvalidQuery),
        ({"score": {"$gt": 1, "x": 2}}, InvalidQuery),
        ({"tags": {"$lt": 1}}, InvalidQuery),
        ({"meta": {"$regex": "a"}}, InvalidQuery),
        ({"title.x": 1}, InvalidQuery),
        ({"members": {"__type": "Pointer", "className": "_User", "objectId": "u"}}, InvalidQuery),
        ({"owner": {"$inQuery": {"className": "_User", "where": {}}}}, InvalidQuery),
        ({"$relatedTo": {}}, InvalidQuery),
        ({"$or": {}}, InvalidQuery),
        ({"score": {"$in": 1}}, InvalidQuery),
        ({"title": {"$regex": "(", "$options": "i"}}, InvalidQuery),
        ({"title": {"$regex": "a", "$options": "q"}}, InvalidQuery),
        ({"due": {"__type": "Date", "iso": "yesterday"}}, IncorrectType),
        ({"due": {"$gt": {"$relativeTime": "soon"}}}, InvalidQuery),
    ],
)
def test_refused_like_sql(where: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        compile_where(SCHEMA, where, LIMITS)


def test_protected_fields_cannot_be_queried() -> None:
    with pytest.raises(OperationForbidden):
        compile_where(SCHEMA, {"title": {"$regex": "^I"}}, LIMITS, frozenset({"title"}))


def test_depth_and_list_limits() -> None:
    deep: dict[str, Any] = {"score": 1}
    for _ in range(LIMITS.max_query_depth + 1):
        deep = {"$or": [deep]}
    with pytest.raises(InvalidQuery):
        compile_where(SCHEMA, deep, LIMITS)
    with pytest.raises(InvalidQuery):
        compile_where(SCHEMA, {"score": {"$in": list(range(LIMITS.max_in_list + 1))}}, LIMITS)


def test_json_equal_keeps_booleans_apart_from_numbers() -> None:
    assert json_equal({"a": [1, 2.5]}, {"a": [1.0, 2.5]})
    assert not json_equal([True], [1])
    assert not json_equal(0, False)
    assert json_equal({"a": 1, "b": 2}, {"b": 2, "a": 1})


def test_text_search_is_refused_with_its_reason() -> None:
    """``$text`` ranks against the whole class; a subscription cannot, and says so."""
    where = {"title": {"$text": {"$search": {"$term": "intake"}}}}
    with pytest.raises(InvalidQuery, match=r"^\$text is not supported in live queries\.$"):
        compile_where(SCHEMA, where, LIMITS)
