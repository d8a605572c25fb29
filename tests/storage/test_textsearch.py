"""The SQLite fallback of ``$text`` (storage/textsearch.py) on its own: websearch_to_tsquery's
reading of a term (words, "phrases", -exclusions, or) over whole, case-folded words."""

from __future__ import annotations

import pytest

from mindharbor.errors import InvalidJSON
from mindharbor.storage import textsearch


@pytest.mark.parametrize(
    ("value", "term", "hit"),
    [
        ("Coffee Shopping", "coffee", True),
        ("coffeehouse", "coffee", False),  # whole words only
        ("Café Con Leche", "CAFÉ", True),
        ("Cafe con Leche", "CAFÉ", False),  # diacritics count
        ("coffee and cream", "cream coffee", True),  # every word, any order
        ("coffee", "cream coffee", False),
        ("coffee and cream", '"and cream"', True),
        ("cream and coffee", '"coffee and cream"', False),  # a phrase is consecutive words
        ("coffee and cream", "coffee -cream", False),
        ("coffee", "coffee -cream", True),
        ("tea", "coffee or tea", True),
        ("water", "coffee or tea", False),
        ("Сырники", "сырники", True),
        (None, "coffee", False),
        ("anything", "-coffee", True),  # only an exclusion: what lacks it, as in PostgreSQL
        ("coffee", "-coffee", False),
        ("coffee", "!?", False),  # no word at all: nothing, as PostgreSQL's empty query
    ],
)
def test_match(value: str | None, term: str, hit: bool) -> None:
    assert textsearch.sqlite_match(value, term) == (1 if hit else 0)


def test_score_grows_with_hits() -> None:
    one = textsearch.sqlite_score("coffee", "coffee")
    three = textsearch.sqlite_score("coffee, coffee and more coffee", "coffee")
    assert 0 < one < three < 1
    assert textsearch.sqlite_score("tea", "coffee") == 0


def test_language_is_checked_before_any_sql() -> None:
    assert textsearch.parse({"$search": {"$term": "x", "$language": "Spanish"}}).language == (
        "spanish"
    )
    with pytest.raises(InvalidJSON, match="unsupported language"):
        textsearch.parse({"$search": {"$term": "x", "$language": "english'); drop"}})
