"""``$text`` full-text search over REST, on both backends.

Subjects and expected counts are those of Parse Server's own ``ParseQuery.FullTextSearch.spec``
(run there on PostgreSQL), so the answers are Parse's; error messages are its adapter's.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import ParseClient, unique_class

SUBJECTS = [
    "coffee",
    "Coffee Shopping",
    "Baking a cake",
    "baking",
    "Café Con Leche",
    "Сырники",
    "coffee and cream",
    "Cafe con Leche",
]


@pytest.fixture
def subjects(client: ParseClient) -> str:
    cls = unique_class("Text")
    client.create_class(
        cls,
        {"subject": {"type": "String"}, "n": {"type": "Number"}},
        clp={op: {"*": True} for op in ("find", "count", "get", "create")},
    )
    for subject in SUBJECTS:
        client.create(cls, {"subject": subject})
    return cls


def text(term: str, **options: Any) -> dict[str, Any]:
    return {"subject": {"$text": {"$search": {"$term": term, **options}}}}


def found(client: ParseClient, cls: str, where: Any, **params: Any) -> list[dict[str, Any]]:
    return list(client.find(cls, where=where, master=False, **params)["results"])


def test_search_language_and_diacritics(client: ParseClient, subjects: str) -> None:
    assert len(found(client, subjects, text("coffee"))) == 3
    assert len(found(client, subjects, text("leche", **{"$language": "spanish"}))) == 2
    match = found(client, subjects, text("CAFÉ", **{"$diacriticSensitive": True}))
    assert [r["subject"] for r in match] == ["Café Con Leche"]
    assert found(client, subjects, text("tea")) == []
    # the rest of the where and count apply in the same statement
    where = {"subject": {"$text": {"$search": {"$term": "coffee"}}, "$ne": "coffee"}}
    response = client.find(subjects, where=where, count=1, master=False)
    assert response["count"] == 2
    # a phrase, an exclusion and an alternative, as websearch_to_tsquery reads them
    assert len(found(client, subjects, text('"coffee and cream"'))) == 1
    assert len(found(client, subjects, text("coffee -cream"))) == 2
    assert len(found(client, subjects, text("cake or cream"))) == 2


def test_score_orders_and_is_returned(client: ParseClient, subjects: str) -> None:
    client.create(subjects, {"subject": "coffee, coffee and more coffee"})
    for order in ("$score", "-$score"):
        results = found(client, subjects, text("coffee"), order=order, keys="$score")
        assert len(results) == 4
        scores = [r["score"] for r in results]
        assert scores == sorted(scores, reverse=True)  # best first whichever the direction
        assert scores[0] > scores[-1] > 0
        assert set(results[0]) == {"objectId", "createdAt", "updatedAt", "score"}
    # without keys=$score there is no score field
    assert "score" not in found(client, subjects, text("coffee"), order="$score")[0]
    response = client.get(f"/classes/{subjects}", params={"order": "$score"}, master=True)
    assert (response.status_code, response.json()["code"]) == (400, 102)


def test_access_filter_still_applies(client: ParseClient, subjects: str) -> None:
    client.create(subjects, {"subject": "secret coffee", "ACL": {}})
    assert len(found(client, subjects, text("coffee"))) == 3
    assert len(client.find(subjects, where=text("coffee"), master=True)["results"]) == 4


def test_language_is_not_served_from_another_plan(
    client: ParseClient, subjects: str, backend: str
) -> None:
    """The compiled-shape cache must not reuse an English plan for a Spanish query: ``con`` is
    a Spanish stop word (PostgreSQL), an ordinary word in English."""
    assert len(found(client, subjects, text("con"))) == 2
    spanish = found(client, subjects, text("con", **{"$language": "spanish"}))
    assert len(spanish) == (0 if backend == "postgres" else 2)
    assert len(found(client, subjects, text("con"))) == 2


@pytest.mark.parametrize(
    ("text_arg", "message"),
    [
        ({"$search": True}, "bad $text: $search, should be object"),
        ({"$search": {}}, "bad $text: $term, should be string"),
        ({"$search": {"$term": 7}}, "bad $text: $term, should be string"),
        ({"$search": {"$term": "x", "$language": True}}, "bad $text: $language, should be string"),
        (
            {"$search": {"$term": "x", "$caseSensitive": "string"}},
            "bad $text: $caseSensitive, should be boolean",
        ),
        (
            {"$search": {"$term": "x", "$caseSensitive": True}},
            "bad $text: $caseSensitive not supported, please use $regex or create a separate "
            "lower case column.",
        ),
        (
            {"$search": {"$term": "x", "$diacriticSensitive": "string"}},
            "bad $text: $diacriticSensitive, should be boolean",
        ),
        (
            {"$search": {"$term": "x", "$diacriticSensitive": False}},
            "bad $text: $diacriticSensitive - false not supported, install Postgres Unaccent "
            "Extension",
        ),
        (
            {"$search": {"$term": "x", "$language": "klingon"}},
            "bad $text: $language, unsupported language klingon",
        ),
    ],
)
def test_bad_input_is_parse_107(
    client: ParseClient, subjects: str, text_arg: Any, message: str
) -> None:
    response = client.get(
        f"/classes/{subjects}", params={"where": {"subject": {"$text": text_arg}}}, master=True
    )
    assert response.status_code == 400
    assert response.json() == {"code": 107, "error": message}


def test_missing_and_non_string_fields(client: ParseClient, subjects: str) -> None:
    where = {"nothing": {"$text": {"$search": {"$term": "coffee"}}}}
    assert found(client, subjects, where) == []
    response = client.get(
        f"/classes/{subjects}",
        params={"where": {"n": {"$text": {"$search": {"$term": "1"}}}}},
        master=True,
    )
    assert (response.status_code, response.json()["code"]) == (400, 102)
