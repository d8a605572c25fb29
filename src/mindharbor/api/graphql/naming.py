"""GraphQL names for Parse classes, as Parse Server derives them.

``_User`` → type ``User``, get query ``user``, find query ``users``; ``GameScore`` →
``GameScore`` / ``gameScore`` / ``gameScores``. Plurals follow English rules for regular nouns
and the common irregular and uncountable ones (Parse uses the ``pluralize`` package; the names
of ordinary classes come out the same). A name already taken (a reserved root field, or two
classes that map to one name) goes to the first class in Parse's order, and the later one falls
back to a name built from its Parse class name, so no class silently disappears.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

GRAPHQL_NAME_RE = re.compile(r"^[_A-Za-z][_A-Za-z0-9]*$")

_UNCOUNTABLE = frozenset(
    {
        "advice",
        "aircraft",
        "bison",
        "cattle",
        "data",
        "deer",
        "equipment",
        "evidence",
        "feedback",
        "fish",
        "furniture",
        "gold",
        "information",
        "jeans",
        "knowledge",
        "luggage",
        "metadata",
        "moose",
        "money",
        "music",
        "news",
        "offspring",
        "police",
        "rice",
        "series",
        "sheep",
        "software",
        "species",
        "staff",
        "swine",
        "traffic",
        "trout",
        "tuna",
        "wheat",
        "whiting",
        "wildlife",
    }
)  # fmt: skip
_IRREGULAR = {
    "person": "people",
    "man": "men",
    "woman": "women",
    "child": "children",
    "tooth": "teeth",
    "foot": "feet",
    "mouse": "mice",
    "goose": "geese",
    "ox": "oxen",
    "leaf": "leaves",
    "life": "lives",
    "criterion": "criteria",
    "phenomenon": "phenomena",
    "index": "indices",
    "matrix": "matrices",
    "vertex": "vertices",
    "quiz": "quizzes",
    "analysis": "analyses",
    "diagnosis": "diagnoses",
    "thesis": "theses",
    "crisis": "crises",
    "axis": "axes",
    "datum": "data",
    "medium": "media",
    "cactus": "cacti",
    "octopus": "octopi",
    "virus": "viruses",
}
_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?i)(alias|status|campus|census|bus|gas)$"), r"\1es"),
    (re.compile(r"(?i)(x|ch|ss|sh|zz)$"), r"\1es"),
    (re.compile(r"(?i)([^aeiouy]|qu)y$"), r"\1ies"),
    (re.compile(r"(?i)([^f])fe$"), r"\1ves"),
    (re.compile(r"(?i)([lr])f$"), r"\1ves"),
    (re.compile(r"(?i)sis$"), "ses"),
    (re.compile(r"(?i)(her|potat|tomat|ech|torped|vet)o$"), r"\1oes"),
]
_LAST_WORD = re.compile(r"([A-Z]?[a-z0-9]+|[A-Z]+(?![a-z]))$")


def _match_case(word: str, plural: str) -> str:
    if word.isupper() and len(word) > 1:
        return plural.upper()
    if word[:1].isupper():
        return plural[:1].upper() + plural[1:]
    return plural


def pluralize(name: str) -> str:
    """``gameScore`` → ``gameScores``, ``city`` → ``cities``, ``person`` → ``people``."""
    match = _LAST_WORD.search(name)
    if match is None:
        return name + "s"
    head, word = name[: match.start()], match.group(0)
    lower = word.lower()
    if lower in _UNCOUNTABLE:
        return name
    if lower in _IRREGULAR:
        return head + _match_case(word, _IRREGULAR[lower])
    first_pattern, first_replacement = _RULES[0]
    if first_pattern.search(word):  # singular nouns ending in s ("status", "alias")
        return head + first_pattern.sub(first_replacement, word)
    if lower in _IRREGULAR.values() or (
        lower.endswith("s") and not lower.endswith(("ss", "us", "is"))
    ):
        return name  # already plural ("Items", "Settings")
    for pattern, replacement in _RULES[1:]:
        if pattern.search(word):
            return head + pattern.sub(replacement, word)
    return name + "s"


def graphql_class_name(class_name: str) -> str:
    """Parse's transform: drop a leading ``_``, upper-case the first letter."""
    name = class_name[1:] if class_name.startswith("_") else class_name
    return name[:1].upper() + name[1:]


def lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def is_graphql_name(name: str) -> bool:
    return bool(GRAPHQL_NAME_RE.match(name)) and not name.startswith("__")


@dataclass
class Names:
    """One namespace of a schema (type names, query fields or mutation fields)."""

    taken: set[str] = field(default_factory=set)

    def claim(self, name: str) -> bool:
        """Take ``name`` if it is free and valid."""
        if name in self.taken or not is_graphql_name(name):
            return False
        self.taken.add(name)
        return True

    def allocate(self, preferred: str, fallback: str) -> str:
        """``preferred`` if free, else ``fallback``, else ``fallback2``, ``fallback3``..."""
        for candidate in (preferred, fallback):
            if self.claim(candidate):
                return candidate
        n = 2
        while not self.claim(f"{fallback}{n}"):
            n += 1
        return f"{fallback}{n}"
