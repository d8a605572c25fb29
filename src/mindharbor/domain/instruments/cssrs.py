"""C-SSRS screener (Columbia Suicide Severity Rating Scale, screen version) triage.

Six yes/no questions about the past month (Q6 about lifetime behaviour), with the screener's skip
logic enforced rather than tolerated, so a stored answer set always matches a path a clinician
could actually have taken:

* Q1 (wish to be dead) and Q2 (non-specific active suicidal thoughts) are always asked.
* Q3 (thoughts of method), Q4 (intent) and Q5 (plan) are asked only when Q2 is yes: required then,
  and absent (or null) when Q2 is no. An answer to a question that was skipped means the form and
  the record disagree, so it is refused instead of scored.
* Q6 (suicidal behaviour, ever) is always asked; when yes, ``q6_recent`` (within the past 3 months)
  is required, and otherwise absent (or null).

The screener yields a risk level, not a sum, so ``score`` is ``None`` and ``severity`` is the
level. The highest applicable level wins:

* ``high``: yes to Q4 or Q5, or Q6 yes within the past 3 months;
* ``moderate``: yes to Q3, or Q6 yes more than 3 months ago;
* ``low``: yes to Q1 or Q2 only;
* ``none``: every answer no.

``moderate`` and ``high`` open a crisis log at that same ``riskLevel``; ``low`` and ``none`` do
not. ``imminent`` is never set automatically: it is a clinician's judgement.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mindharbor.domain.instruments.base import (
    InstrumentResult,
    reject_unknown_keys,
    require_mapping,
)
from mindharbor.errors import ValidationFailed

NAME = "C-SSRS"
RULES_VERSION = "cssrs-screen-2011.1"
ALWAYS_ASKED = ("q1", "q2", "q6")
IF_Q2_YES = ("q3", "q4", "q5")
RECENT = "q6_recent"
KEYS = ("q1", "q2", "q3", "q4", "q5", "q6", RECENT)
RISK_LEVELS = ("none", "low", "moderate", "high")

# Flags name what was endorsed, in question order, so downstream views need not re-read answers.
FLAG_IDEATION = "suicidal-ideation"
FLAG_METHOD = "suicidal-ideation-method"
FLAG_INTENT = "suicidal-intent"
FLAG_PLAN = "suicidal-plan"
FLAG_BEHAVIOR_RECENT = "suicidal-behavior-recent"
FLAG_BEHAVIOR_PAST = "suicidal-behavior-lifetime"


def _required_bool(responses: Mapping[str, Any], key: str, why: str) -> bool:
    value = responses.get(key)
    if value is None:
        raise ValidationFailed(f"C-SSRS {key} is required{why} (true or false).")
    if not isinstance(value, bool):
        raise ValidationFailed(f"C-SSRS {key} must be true or false (got {type(value).__name__}).")
    return value


def _forbid(responses: Mapping[str, Any], key: str, why: str) -> None:
    if responses.get(key) is not None:
        raise ValidationFailed(f"C-SSRS {key} is not asked {why}; leave it out or null.")


def score(responses: Any) -> InstrumentResult:
    given = require_mapping(NAME, responses)
    reject_unknown_keys(NAME, given, KEYS, "q1..q6 and q6_recent")
    answers: dict[str, bool | None] = dict.fromkeys(KEYS)
    for key in ALWAYS_ASKED:
        answers[key] = _required_bool(given, key, "")
    for key in IF_Q2_YES:
        if answers["q2"]:
            answers[key] = _required_bool(given, key, " when q2 is true")
        else:
            _forbid(given, key, "when q2 is false")
    if answers["q6"]:
        answers[RECENT] = _required_bool(given, RECENT, " when q6 is true")
    else:
        _forbid(given, RECENT, "when q6 is false")

    flags: list[str] = []
    if any(answers[key] for key in ("q1", "q2", "q3", "q4", "q5")):
        flags.append(FLAG_IDEATION)
    if answers["q3"]:
        flags.append(FLAG_METHOD)
    if answers["q4"]:
        flags.append(FLAG_INTENT)
    if answers["q5"]:
        flags.append(FLAG_PLAN)
    if answers["q6"]:
        flags.append(FLAG_BEHAVIOR_RECENT if answers[RECENT] else FLAG_BEHAVIOR_PAST)

    if answers["q4"] or answers["q5"] or (answers["q6"] and answers[RECENT]):
        level = "high"
    elif answers["q3"] or answers["q6"]:  # q6 here means behaviour more than 3 months ago
        level = "moderate"
    elif answers["q1"] or answers["q2"]:
        level = "low"
    else:
        level = "none"
    return InstrumentResult(
        instrument=NAME,
        score=None,
        severity=level,
        risk_flags=tuple(flags),
        crisis_risk_level=level if level in ("moderate", "high") else None,
        rules_version=RULES_VERSION,
        answers=dict(answers),
    )
