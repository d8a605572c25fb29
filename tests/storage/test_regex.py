import pytest

from mindharbor.errors import InvalidQuery
from mindharbor.storage.regex import normalize, sqlite_regexp


@pytest.mark.parametrize(
    ("pattern", "options", "text", "expected"),
    [
        (r"^\Qa.b\E", "", "a.bc", True),
        (r"^\Qa.b\E", "", "axbc", False),
        (r"\Q(x)\E$", "", "y(x)", True),
        ("ABC", "i", "xabcx", True),
        ("^b", "", "a\nb", False),
        ("^b", "m", "a\nb", True),
        ("a.b", "", "a\nb", False),
        ("a.b", "s", "a\nb", True),
        ("a b # comment", "x", "xab", True),
    ],
)
def test_parse_regex_semantics(pattern: str, options: str, text: str, expected: bool) -> None:
    re2_pattern, _ = normalize(pattern, options, 1000)
    assert sqlite_regexp(re2_pattern, text) is expected


def test_pg_pattern_uses_are_embedded_options() -> None:
    assert normalize("^a", "", 100)[1] == "(?p)^a"
    assert normalize("^a", "im", 100)[1] == "(?ni)^a"
    assert normalize("^a", "ms", 100)[1] == "(?w)^a"


@pytest.mark.parametrize(("pattern", "options"), [("(", ""), ("a", "g"), ("x" * 11, "")])
def test_invalid_patterns(pattern: str, options: str) -> None:
    with pytest.raises(InvalidQuery):
        normalize(pattern, options, 10)


def test_catastrophic_pattern_is_linear() -> None:
    re2_pattern, _ = normalize("^(a+)+$", "", 100)
    assert sqlite_regexp(re2_pattern, "a" * 100_000 + "!") is False
