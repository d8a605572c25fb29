"""Parse's ``$text`` full-text search: ``{"f": {"$text": {"$search": {"$term": ...}}}}``.

Input checks, messages and codes are those of Parse Server's PostgreSQL adapter
(``buildWhereClause``): 107 for a malformed ``$search``, ``$caseSensitive: true`` and
``$diacriticSensitive: false`` refused (PostgreSQL's full-text search is case-insensitive and,
without the unaccent extension, accent-sensitive).

PostgreSQL: ``to_tsvector(language, field) @@ websearch_to_tsquery(language, term)``, ranked by
``ts_rank_cd(..., 32)`` as Parse's ``$score``. ``websearch_to_tsquery`` takes any text (Parse's
``to_tsquery`` fails on a term of two words); one word behaves identically.

SQLite has no stemming dictionaries: ``mh_text_match`` (registered on each connection) matches
whole words, case-folded (so diacritics count), every word of the term present, ``"quoted
phrases"`` as consecutive words, ``-word`` excluded and ``or`` between alternatives, as
``websearch_to_tsquery`` reads them. The score is ``hits / (hits + 1)``, the shape of
``ts_rank_cd``'s normalisation 32. Neither backend can index the test in this version: a
``$text`` query scans the rows the rest of the where (and the access filter) leaves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from mindharbor.errors import InvalidJSON

# PostgreSQL's built-in text search configurations (``\dF``): a language outside this list is
# refused before the statement runs, never an SQL error.
LANGUAGES = frozenset(
    {
        "simple", "arabic", "armenian", "basque", "catalan", "danish", "dutch", "english",
        "finnish", "french", "german", "greek", "hindi", "hungarian", "indonesian", "irish",
        "italian", "lithuanian", "nepali", "norwegian", "portuguese", "romanian", "russian",
        "serbian", "spanish", "swedish", "tamil", "turkish", "yiddish",
    }
)  # fmt: skip
MAX_TERM_LENGTH = 1000
_WORD = re.compile(r"\w+")
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')


@dataclass(frozen=True)
class TextSearch:
    term: str
    language: str


def parse(arg: Any) -> TextSearch:
    """The ``$text`` argument, checked in the order Parse checks it (messages verbatim)."""
    search = arg.get("$search") if isinstance(arg, dict) else None
    if not isinstance(search, dict):
        raise InvalidJSON("bad $text: $search, should be object")
    term = search.get("$term")
    if not term or not isinstance(term, str):
        raise InvalidJSON("bad $text: $term, should be string")
    if len(term) > MAX_TERM_LENGTH:
        raise InvalidJSON(f"bad $text: $term, longer than {MAX_TERM_LENGTH} characters")
    language = search.get("$language")
    if language and not isinstance(language, str):
        raise InvalidJSON("bad $text: $language, should be string")
    language = language or "english"
    if language.lower() not in LANGUAGES:
        raise InvalidJSON(f"bad $text: $language, unsupported language {language}")
    case = search.get("$caseSensitive")
    if case and not isinstance(case, bool):
        raise InvalidJSON("bad $text: $caseSensitive, should be boolean")
    if case:
        raise InvalidJSON(
            "bad $text: $caseSensitive not supported, please use $regex or create a separate "
            "lower case column."
        )
    diacritic = search.get("$diacriticSensitive")
    if diacritic and not isinstance(diacritic, bool):
        raise InvalidJSON("bad $text: $diacriticSensitive, should be boolean")
    if diacritic is False:
        raise InvalidJSON(
            "bad $text: $diacriticSensitive - false not supported, install Postgres Unaccent "
            "Extension"
        )
    return TextSearch(term, language.lower())


def _pg_parts(col: Any, search: TextSearch) -> tuple[Any, Any]:
    config = sa.cast(sa.literal(search.language), postgresql.REGCONFIG)
    vector = sa.func.to_tsvector(config, col)
    query = sa.func.websearch_to_tsquery(config, sa.literal(search.term))
    return vector, query


def clause(col: Any, search: TextSearch, pg: bool) -> Any:
    if pg:
        vector, query = _pg_parts(col, search)
        return vector.op("@@")(query)
    return sa.func.mh_text_match(col, search.term) == 1


def score(col: Any, search: TextSearch, pg: bool) -> Any:
    if pg:
        vector, query = _pg_parts(col, search)
        return sa.func.ts_rank_cd(vector, query, 32)
    return sa.func.mh_text_score(col, search.term)


# -- SQLite ----------------------------------------------------------------------------------
Group = list[tuple[bool, tuple[str, ...]]]  # (excluded, phrase words)


def _groups(term: str) -> list[Group]:
    """``websearch_to_tsquery``'s reading: alternatives split on ``or``, each a list of
    (negated, phrase) where a phrase is one word or a quoted run of words."""
    groups: list[Group] = [[]]
    for match in _TOKEN.finditer(term):
        negated, quoted, bare = match.group(1), match.group(2), match.group(3)
        if bare is not None and bare.lower() == "or":
            if groups[-1]:
                groups.append([])
            continue
        excluded = bool(negated) or (bare is not None and bare.startswith("-"))
        words = tuple(w.casefold() for w in _WORD.findall(quoted if bare is None else bare))
        if words:
            groups[-1].append((excluded, words))
    return [g for g in groups if g]  # ``-tea`` alone: every text without tea, as in PostgreSQL


def _occurrences(words: list[str], phrase: tuple[str, ...]) -> int:
    size = len(phrase)
    return sum(1 for i in range(len(words) - size + 1) if tuple(words[i : i + size]) == phrase)


def _hits(value: Any, term: Any) -> int | None:
    """Occurrences of the best matching alternative; None: no match."""
    if not isinstance(value, str) or not isinstance(term, str):
        return None
    words = [w.casefold() for w in _WORD.findall(value)]
    best: int | None = None
    for group in _groups(term):
        total = 0
        for excluded, phrase in group:
            found = _occurrences(words, phrase)
            if excluded and found:
                break
            if not excluded and not found:
                break
            total += found
        else:
            best = max(best or 0, total)
    return best


def sqlite_match(value: Any, term: Any) -> int:
    return 0 if _hits(value, term) is None else 1


def sqlite_score(value: Any, term: Any) -> float:
    hits = _hits(value, term) or 0
    return hits / (hits + 1)
