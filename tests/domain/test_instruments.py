"""Scoring of PHQ-9, GAD-7 and the C-SSRS screener against independent, literal expectations.

The expected bands and risk levels below are written out by hand (a table per total, a literal
risk function for C-SSRS), never derived from the code under test, so a wrong band boundary in the
implementation cannot be mirrored by the test.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mindharbor.domain.instruments import SUPPORTED, InstrumentResult, is_scored, score
from mindharbor.errors import ValidationFailed

# --- literal band tables: one entry per possible total -------------------------------------

PHQ9_BAND_BY_TOTAL = {
    0: "minimal",
    1: "minimal",
    2: "minimal",
    3: "minimal",
    4: "minimal",
    5: "mild",
    6: "mild",
    7: "mild",
    8: "mild",
    9: "mild",
    10: "moderate",
    11: "moderate",
    12: "moderate",
    13: "moderate",
    14: "moderate",
    15: "moderately severe",
    16: "moderately severe",
    17: "moderately severe",
    18: "moderately severe",
    19: "moderately severe",
    20: "severe",
    21: "severe",
    22: "severe",
    23: "severe",
    24: "severe",
    25: "severe",
    26: "severe",
    27: "severe",
}

GAD7_BAND_BY_TOTAL = {
    0: "minimal",
    1: "minimal",
    2: "minimal",
    3: "minimal",
    4: "minimal",
    5: "mild",
    6: "mild",
    7: "mild",
    8: "mild",
    9: "mild",
    10: "moderate",
    11: "moderate",
    12: "moderate",
    13: "moderate",
    14: "moderate",
    15: "severe",
    16: "severe",
    17: "severe",
    18: "severe",
    19: "severe",
    20: "severe",
    21: "severe",
}


def fill_front(total: int, item_count: int) -> dict[str, int]:
    """item1 first: put as much of ``total`` as fits (3) in each item in turn."""
    answers, left = {}, total
    for n in range(1, item_count + 1):
        answers[f"item{n}"] = min(3, left)
        left -= answers[f"item{n}"]
    assert left == 0
    return answers


def fill_back(total: int, item_count: int) -> dict[str, int]:
    """The last item first, so item 9 of the PHQ-9 is used as soon as the total is >= 1."""
    answers, left = {}, total
    for n in range(item_count, 0, -1):
        answers[f"item{n}"] = min(3, left)
        left -= answers[f"item{n}"]
    assert left == 0
    return dict(sorted(answers.items(), key=lambda kv: int(kv[0][4:])))


def phq9(**items: Any) -> dict[str, Any]:
    answers: dict[str, Any] = {f"item{n}": 0 for n in range(1, 10)}
    answers.update(items)
    return answers


def gad7(**items: Any) -> dict[str, Any]:
    answers: dict[str, Any] = {f"item{n}": 0 for n in range(1, 8)}
    answers.update(items)
    return answers


def test_tables_cover_every_total() -> None:
    assert sorted(PHQ9_BAND_BY_TOTAL) == list(range(28))
    assert sorted(GAD7_BAND_BY_TOTAL) == list(range(22))


# --- PHQ-9 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("total", range(28))
def test_phq9_every_total_front_filled(total: int) -> None:
    answers = fill_front(total, 9)
    result = score("PHQ-9", answers)
    assert result.instrument == "PHQ-9"
    assert result.score == total
    assert result.severity == PHQ9_BAND_BY_TOTAL[total]
    assert result.rules_version == "phq9-2001.1"
    assert result.answers == answers
    # Front filling reaches item 9 only at totals 25..27 (item9 = 1, 2, 3).
    expected_item9 = {25: 1, 26: 2, 27: 3}.get(total, 0)
    assert answers["item9"] == expected_item9


@pytest.mark.parametrize("total", range(28))
def test_phq9_every_total_back_filled(total: int) -> None:
    answers = fill_back(total, 9)
    result = score("PHQ-9", answers)
    assert result.score == total
    assert result.severity == PHQ9_BAND_BY_TOTAL[total]
    # Back filling puts min(total, 3) on item 9: the flag rises with any positive total.
    if total == 0:
        assert (result.risk_flags, result.crisis_risk_level) == ((), None)
    elif total in (1, 2):
        assert (result.risk_flags, result.crisis_risk_level) == (("suicidal-ideation",), "moderate")
    else:
        assert (result.risk_flags, result.crisis_risk_level) == (("suicidal-ideation",), "high")


@pytest.mark.parametrize(
    ("answers", "total", "band", "flags", "crisis"),
    [
        (phq9(), 0, "minimal", (), None),
        (phq9(item9=1), 1, "minimal", ("suicidal-ideation",), "moderate"),
        (phq9(item9=2), 2, "minimal", ("suicidal-ideation",), "moderate"),
        (phq9(item9=3), 3, "minimal", ("suicidal-ideation",), "high"),
        (phq9(item1=3, item2=3, item3=3, item4=3, item5=3, item6=3, item7=3, item8=3), 24,
         "severe", (), None),
        (phq9(item1=3, item2=3, item3=3, item4=3, item5=3, item6=3, item7=3, item8=3, item9=1),
         25, "severe", ("suicidal-ideation",), "moderate"),
        (phq9(item1=3, item2=3, item3=3, item4=3, item5=3, item6=3, item7=3, item8=3, item9=3),
         27, "severe", ("suicidal-ideation",), "high"),
        (phq9(item1=2, item2=2, item3=1, item9=0), 5, "mild", (), None),
        (phq9(item1=3, item2=3, item3=3, item4=1), 10, "moderate", (), None),
        (phq9(item1=3, item2=3, item3=3, item4=3, item5=2, item9=1), 15, "moderately severe",
         ("suicidal-ideation",), "moderate"),
        (phq9(item1=3, item2=3, item3=3, item4=3, item5=3, item6=3, item9=2), 20, "severe",
         ("suicidal-ideation",), "moderate"),
    ],
)  # fmt: skip
def test_phq9_literal_cases(
    answers: dict[str, int], total: int, band: str, flags: tuple[str, ...], crisis: str | None
) -> None:
    result = score("PHQ-9", answers)
    assert (result.score, result.severity, result.risk_flags, result.crisis_risk_level) == (
        total,
        band,
        flags,
        crisis,
    )


@pytest.mark.parametrize("item9", [0, 1, 2, 3])
@pytest.mark.parametrize("others", [0, 1, 2, 3])
def test_phq9_item9_flag_does_not_depend_on_the_other_items(item9: int, others: int) -> None:
    answers = {f"item{n}": others for n in range(1, 9)} | {"item9": item9}
    result = score("PHQ-9", answers)
    assert result.score == 8 * others + item9
    expected_crisis = {0: None, 1: "moderate", 2: "moderate", 3: "high"}[item9]
    assert result.crisis_risk_level == expected_crisis
    assert result.risk_flags == (("suicidal-ideation",) if item9 >= 1 else ())


@given(st.lists(st.integers(0, 3), min_size=9, max_size=9))
def test_phq9_any_valid_answers(values: list[int]) -> None:
    answers = {f"item{n}": v for n, v in enumerate(values, start=1)}
    result = score("PHQ-9", answers)
    assert result.score == sum(values)
    assert result.severity == PHQ9_BAND_BY_TOTAL[sum(values)]
    assert ("suicidal-ideation" in result.risk_flags) == (values[8] >= 1)


# --- GAD-7 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("total", range(22))
@pytest.mark.parametrize("fill", [fill_front, fill_back])
def test_gad7_every_total(total: int, fill: Any) -> None:
    answers = fill(total, 7)
    result = score("GAD-7", answers)
    assert result.instrument == "GAD-7"
    assert result.score == total
    assert result.severity == GAD7_BAND_BY_TOTAL[total]
    assert result.risk_flags == ()
    assert result.crisis_risk_level is None
    assert result.rules_version == "gad7-2006.1"
    assert result.answers == answers


@pytest.mark.parametrize(
    ("answers", "total", "band"),
    [
        (gad7(), 0, "minimal"),
        (gad7(item1=3, item2=1), 4, "minimal"),
        (gad7(item1=3, item2=2), 5, "mild"),
        (gad7(item1=3, item2=3, item3=3), 9, "mild"),
        (gad7(item1=3, item2=3, item3=3, item7=1), 10, "moderate"),
        (gad7(item1=2, item2=2, item3=2, item4=2, item5=2, item6=2, item7=2), 14, "moderate"),
        (gad7(item1=3, item2=3, item3=3, item4=3, item5=3), 15, "severe"),
        (gad7(item1=3, item2=3, item3=3, item4=3, item5=3, item6=3, item7=3), 21, "severe"),
    ],
)
def test_gad7_literal_cases(answers: dict[str, int], total: int, band: str) -> None:
    result = score("GAD-7", answers)
    assert (result.score, result.severity, result.crisis_risk_level) == (total, band, None)


@given(st.lists(st.integers(0, 3), min_size=7, max_size=7))
def test_gad7_any_valid_answers(values: list[int]) -> None:
    result = score("GAD-7", {f"item{n}": v for n, v in enumerate(values, start=1)})
    assert result.score == sum(values)
    assert result.severity == GAD7_BAND_BY_TOTAL[sum(values)]


# --- Likert validation (PHQ-9 and GAD-7) ----------------------------------------------------


def without(answers: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in answers.items() if k != key}


@pytest.mark.parametrize(
    ("instrument", "responses", "message_part"),
    [
        ("PHQ-9", {}, "missing item1"),
        ("PHQ-9", without(phq9(), "item9"), "missing item9"),
        ("PHQ-9", without(without(phq9(), "item3"), "item7"), "missing item3, item7"),
        ("PHQ-9", phq9() | {"item10": 0}, "'item10'"),
        ("PHQ-9", without(phq9(), "item9") | {"Item9": 1}, "'Item9'"),
        ("PHQ-9", phq9() | {"notes": "x"}, "'notes'"),
        ("PHQ-9", gad7(), "missing item8, item9"),
        ("PHQ-9", phq9(item4=4), "item4"),
        ("PHQ-9", phq9(item9=-1), "item9"),
        ("PHQ-9", phq9(item2=100), "item2"),
        ("PHQ-9", phq9(item9=True), "item9"),
        ("PHQ-9", phq9(item1=False), "item1"),
        ("PHQ-9", phq9(item5="2"), "item5"),
        ("PHQ-9", phq9(item6=2.0), "item6"),
        ("PHQ-9", phq9(item7=1.5), "item7"),
        ("PHQ-9", phq9(item8=None), "item8"),
        ("PHQ-9", phq9(item3=[1]), "item3"),
        ("PHQ-9", [0] * 9, "object"),
        ("PHQ-9", None, "object"),
        ("PHQ-9", "000000000", "object"),
        ("GAD-7", {}, "missing item1"),
        ("GAD-7", phq9(), "'item8', 'item9'"),
        ("GAD-7", without(gad7(), "item7"), "missing item7"),
        ("GAD-7", gad7(item7=4), "item7"),
        ("GAD-7", gad7(item1=-1), "item1"),
        ("GAD-7", gad7(item2=True), "item2"),
        ("GAD-7", gad7(item3="3"), "item3"),
        ("GAD-7", gad7(item4=3.0), "item4"),
        ("GAD-7", gad7(item5=None), "item5"),
        ("GAD-7", (0,) * 7, "object"),
    ],
)
def test_likert_invalid(instrument: str, responses: Any, message_part: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        score(instrument, responses)
    assert caught.value.code == 142
    assert instrument in caught.value.message
    assert message_part in caught.value.message


def test_out_of_range_and_wrong_type_messages_are_specific() -> None:
    with pytest.raises(
        ValidationFailed, match=r"PHQ-9 item4 must be an integer from 0 to 3 \(got 4\)"
    ):
        score("PHQ-9", phq9(item4=4))
    with pytest.raises(
        ValidationFailed, match=r"item9 must be an integer from 0 to 3 \(got bool\)"
    ):
        score("PHQ-9", phq9(item9=True))
    with pytest.raises(
        ValidationFailed, match=r"item6 must be an integer from 0 to 3 \(got float\)"
    ):
        score("PHQ-9", phq9(item6=2.0))


def test_unknown_key_in_message_is_truncated() -> None:
    with pytest.raises(ValidationFailed) as caught:
        score("PHQ-9", phq9() | {"x" * 5000: 1})
    assert len(caught.value.message) < 200


# --- C-SSRS ---------------------------------------------------------------------------------


def expected_cssrs_risk(answers: dict[str, Any]) -> str:
    """The screener's triage, written independently of the implementation, rule by rule."""
    q1 = answers["q1"]
    q2 = answers["q2"]
    q3 = answers.get("q3") is True
    q4 = answers.get("q4") is True
    q5 = answers.get("q5") is True
    q6 = answers["q6"]
    recent = answers.get("q6_recent") is True
    if q4:
        return "high"
    if q5:
        return "high"
    if q6 and recent:
        return "high"
    if q3:
        return "moderate"
    if q6 and not recent:
        return "moderate"
    if q1 or q2:
        return "low"
    return "none"


def expected_cssrs_flags(answers: dict[str, Any]) -> tuple[str, ...]:
    flags = []
    ideation = [
        answers["q1"],
        answers["q2"],
        answers.get("q3"),
        answers.get("q4"),
        answers.get("q5"),
    ]
    if True in ideation:
        flags.append("suicidal-ideation")
    if answers.get("q3") is True:
        flags.append("suicidal-ideation-method")
    if answers.get("q4") is True:
        flags.append("suicidal-intent")
    if answers.get("q5") is True:
        flags.append("suicidal-plan")
    if answers["q6"] is True and answers.get("q6_recent") is True:
        flags.append("suicidal-behavior-recent")
    if answers["q6"] is True and answers.get("q6_recent") is False:
        flags.append("suicidal-behavior-lifetime")
    return tuple(flags)


def all_cssrs_paths() -> list[dict[str, bool]]:
    """Every valid path through the screener, with skipped questions left out."""
    paths = []
    for q1, q2, q6 in itertools.product([False, True], repeat=3):
        middles: list[dict[str, bool]] = [{}]
        if q2:
            middles = [
                {"q3": q3, "q4": q4, "q5": q5}
                for q3, q4, q5 in itertools.product([False, True], repeat=3)
            ]
        tails: list[dict[str, bool]] = [{"q6": False}]
        if q6:
            tails = [{"q6": True, "q6_recent": False}, {"q6": True, "q6_recent": True}]
        for middle in middles:
            for tail in tails:
                paths.append({"q1": q1, "q2": q2} | middle | tail)
    return paths


CSSRS_PATHS = all_cssrs_paths()


def test_cssrs_path_count() -> None:
    # q1 (2) x [q2 no (1) + q2 yes with q3..q5 (8)] x [q6 no (1) + q6 yes with recency (2)]
    assert len(CSSRS_PATHS) == 2 * 9 * 3 == 54
    assert len({tuple(sorted(p.items())) for p in CSSRS_PATHS}) == 54


@pytest.mark.parametrize(
    "answers", CSSRS_PATHS, ids=lambda a: ",".join(f"{k}={int(v)}" for k, v in a.items())
)
def test_cssrs_every_path(answers: dict[str, bool]) -> None:
    result = score("C-SSRS", answers)
    risk = expected_cssrs_risk(answers)
    assert result.instrument == "C-SSRS"
    assert result.score is None
    assert result.severity == risk
    expected_crisis = {"none": None, "low": None, "moderate": "moderate", "high": "high"}[risk]
    assert result.crisis_risk_level == expected_crisis
    assert result.risk_flags == expected_cssrs_flags(answers)
    assert result.rules_version == "cssrs-screen-2011.1"
    # Normalised answers: every key present, skipped questions null.
    keys = ("q1", "q2", "q3", "q4", "q5", "q6", "q6_recent")
    expected_answers: dict[str, bool | None] = dict.fromkeys(keys) | answers
    assert result.answers == expected_answers
    # Skipped questions sent as explicit nulls score the same.
    assert score("C-SSRS", expected_answers) == result


def test_cssrs_level_split() -> None:
    # Counted by hand: q6 yes+recent -> high on all 18 prefixes; q6 yes+past -> high on the 2x3
    # prefixes with q4 or q5 among q2=yes (q1 x 6) = 12, else moderate (18 - 12 = 6);
    # q6 no -> high 12, moderate (q3 yes, q4=q5=no) 2, low (q1 and/or q2 only) 3, none 1.
    levels = [score("C-SSRS", a).severity for a in CSSRS_PATHS]
    assert levels.count("high") == 18 + 12 + 12
    assert levels.count("moderate") == 6 + 2
    assert levels.count("low") == 3
    assert levels.count("none") == 1


@pytest.mark.parametrize(
    ("answers", "risk", "flags"),
    [
        ({"q1": False, "q2": False, "q6": False}, "none", ()),
        ({"q1": True, "q2": False, "q6": False}, "low", ("suicidal-ideation",)),
        ({"q1": False, "q2": True, "q3": False, "q4": False, "q5": False, "q6": False}, "low",
         ("suicidal-ideation",)),
        ({"q1": True, "q2": True, "q3": True, "q4": False, "q5": False, "q6": False}, "moderate",
         ("suicidal-ideation", "suicidal-ideation-method")),
        ({"q1": True, "q2": True, "q3": False, "q4": True, "q5": False, "q6": False}, "high",
         ("suicidal-ideation", "suicidal-intent")),
        ({"q1": True, "q2": True, "q3": True, "q4": False, "q5": True, "q6": False}, "high",
         ("suicidal-ideation", "suicidal-ideation-method", "suicidal-plan")),
        ({"q1": False, "q2": False, "q6": True, "q6_recent": False}, "moderate",
         ("suicidal-behavior-lifetime",)),
        ({"q1": False, "q2": False, "q6": True, "q6_recent": True}, "high",
         ("suicidal-behavior-recent",)),
        ({"q1": True, "q2": False, "q6": True, "q6_recent": True}, "high",
         ("suicidal-ideation", "suicidal-behavior-recent")),
        ({"q1": True, "q2": True, "q3": True, "q4": True, "q5": True, "q6": True,
          "q6_recent": True}, "high",
         ("suicidal-ideation", "suicidal-ideation-method", "suicidal-intent", "suicidal-plan",
          "suicidal-behavior-recent")),
        ({"q1": False, "q2": False, "q3": None, "q4": None, "q5": None, "q6": False,
          "q6_recent": None}, "none", ()),
    ],
)  # fmt: skip
def test_cssrs_literal_cases(answers: dict[str, Any], risk: str, flags: tuple[str, ...]) -> None:
    result = score("C-SSRS", answers)
    assert result.severity == risk
    assert result.risk_flags == flags
    assert result.crisis_risk_level == (risk if risk in ("moderate", "high") else None)
    assert result.score is None


NO = {"q1": False, "q2": False, "q6": False}
Q2_YES = {"q1": False, "q2": True, "q3": False, "q4": False, "q5": False, "q6": False}


@pytest.mark.parametrize(
    ("responses", "message_part"),
    [
        ({}, "q1 is required"),
        (without(NO, "q1"), "q1 is required"),
        (without(NO, "q2"), "q2 is required"),
        (without(NO, "q6"), "q6 is required"),
        (NO | {"q1": None}, "q1 is required"),
        (NO | {"q3": False}, "q3 is not asked when q2 is false"),
        (NO | {"q3": True}, "q3 is not asked when q2 is false"),
        (NO | {"q4": False}, "q4 is not asked when q2 is false"),
        (NO | {"q5": True}, "q5 is not asked when q2 is false"),
        (without(Q2_YES, "q3"), "q3 is required when q2 is true"),
        (without(Q2_YES, "q4"), "q4 is required when q2 is true"),
        (without(Q2_YES, "q5"), "q5 is required when q2 is true"),
        (Q2_YES | {"q5": None}, "q5 is required when q2 is true"),
        (NO | {"q6": True}, "q6_recent is required when q6 is true"),
        (NO | {"q6": True, "q6_recent": None}, "q6_recent is required when q6 is true"),
        (NO | {"q6_recent": False}, "q6_recent is not asked when q6 is false"),
        (NO | {"q6_recent": True}, "q6_recent is not asked when q6 is false"),
        (NO | {"q7": False}, "'q7'"),
        (NO | {"Q1": True}, "'Q1'"),
        (NO | {"q1": 1}, "q1 must be true or false (got int)"),
        (NO | {"q2": 0}, "q2 must be true or false (got int)"),
        (NO | {"q6": "yes"}, "q6 must be true or false (got str)"),
        (NO | {"q1": "false"}, "q1 must be true or false (got str)"),
        (NO | {"q1": 1.0}, "q1 must be true or false (got float)"),
        (Q2_YES | {"q4": "no"}, "q4 must be true or false (got str)"),
        (NO | {"q6": True, "q6_recent": 1}, "q6_recent must be true or false (got int)"),
        ([True] * 6, "object"),
        (None, "object"),
    ],
)
def test_cssrs_invalid(responses: Any, message_part: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        score("C-SSRS", responses)
    assert caught.value.code == 142
    assert message_part in caught.value.message


# --- dispatch and the result ----------------------------------------------------------------


def test_supported_and_is_scored() -> None:
    assert frozenset({"PHQ-9", "GAD-7", "C-SSRS"}) == SUPPORTED
    for name in ("PHQ-9", "GAD-7", "C-SSRS"):
        assert is_scored(name)
    for other in ("intake", None, "", "phq-9", "PHQ9", "BDI-II"):
        assert not is_scored(other)
    assert not is_scored(["PHQ-9"])  # type: ignore[arg-type]  # client JSON may be anything


@pytest.mark.parametrize("instrument", ["intake", None, "phq9", "PHQ9", "BDI-II", "", 9, ["PHQ-9"]])
def test_unknown_instrument_is_refused(instrument: Any) -> None:
    with pytest.raises(ValidationFailed) as caught:
        score(instrument, phq9())
    assert caught.value.code == 142
    assert "C-SSRS, GAD-7, PHQ-9" in caught.value.message


def test_result_is_frozen_hashable_and_does_not_alias_input() -> None:
    responses: dict[str, Any] = phq9(item1=2)
    result = score("PHQ-9", responses)
    assert isinstance(result, InstrumentResult)
    with pytest.raises(AttributeError):
        result.score = 0  # type: ignore[misc]
    hash(result)
    responses["item1"] = 3
    assert result.answers["item1"] == 2
    assert score("PHQ-9", result.answers) == result


def test_validation_does_not_mutate_input() -> None:
    responses = {"q1": True, "q2": False, "q6": False}
    score("C-SSRS", responses)
    assert responses == {"q1": True, "q2": False, "q6": False}
