"""Parse ``$regex`` → a pattern both databases evaluate the same way, safely.

The SDKs quote literal text as ``\\Q...\\E`` and send Mongo-style ``$options`` (``i m s x``).
PostgreSQL's ARE engine knows neither, so both are rewritten here once. Patterns are validated
with RE2, which is also the engine behind SQLite's ``REGEXP`` (linear time: no catastrophic
backtracking); on PostgreSQL the statement timeout bounds evaluation.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import re2

from mindharbor.errors import InvalidQuery

_QUOTED = re.compile(r"\\Q(.*?)(?:\\E|$)", re.DOTALL)
_PUNCT = re.compile(r"([^\w\s])")


def _quote(match: re.Match[str]) -> str:
    return _PUNCT.sub(r"\\\1", match.group(1))


def _strip_extended(pattern: str) -> str:
    """Apply Mongo's ``x`` flag ourselves: drop unescaped whitespace and ``#`` comments."""
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if ch == "[":
            in_class = True
        elif ch == "]":
            in_class = False
        elif not in_class and ch.isspace():
            i += 1
            continue
        elif not in_class and ch == "#":
            while i < len(pattern) and pattern[i] != "\n":
                i += 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


_OPTIONS = re.compile(r"^[imxsu]+$")


def check_options(pattern: Any, options: Any) -> str:
    """Parse's checks of ``$regex`` / ``$options`` (DatabaseController ``validateQuery``), with its
    messages; the options as a string ("" when absent). ``u`` (Unicode) is accepted and changes
    nothing: both engines match Unicode text."""
    if not isinstance(pattern, str):
        raise InvalidQuery("$regex value must be a string")
    if options is None:
        return ""
    if not isinstance(options, str):
        raise InvalidQuery("$options value must be a string")
    if not _OPTIONS.match(options):
        raise InvalidQuery(f"Bad $options value for query: {options}")
    return options


@functools.lru_cache(maxsize=1024)
def normalize(pattern: str, options: str, max_length: int) -> tuple[str, str]:
    """(pattern for RE2 with inline flags, pattern for PostgreSQL with ARE embedded options)."""
    if len(pattern) > max_length:
        raise InvalidQuery(f"$regex is longer than {max_length} characters.")
    if set(options) - set("imxsu"):
        raise InvalidQuery(f"Bad $options value for query: {options}")
    body = _QUOTED.sub(_quote, pattern)
    if "x" in options:
        body = _strip_extended(body)
    re2_flags = "".join(f for f in "ims" if f in options)
    re2_pattern = f"(?{re2_flags}){body}" if re2_flags else body
    try:
        re2.compile(re2_pattern)
    except re2.error as exc:
        raise InvalidQuery(f"Invalid regular expression: {exc}") from exc
    # Mongo: '.' excludes newline unless s; ^/$ match at line breaks only with m.
    newline_mode = {"": "p", "s": "s", "m": "n", "ms": "w"}[
        "".join(f for f in "ms" if f in options)
    ]
    pg_flags = newline_mode + ("i" if "i" in options else "")
    return re2_pattern, f"(?{pg_flags}){body}"


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> Any:
    return re2.compile(pattern)


def sqlite_regexp(pattern: str | None, value: Any) -> bool | None:
    """SQLite's ``REGEXP`` function: ``value REGEXP pattern`` calls ``regexp(pattern, value)``."""
    if pattern is None or value is None or not isinstance(value, str):
        return None
    return _compiled(pattern).search(value) is not None
