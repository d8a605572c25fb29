"""GAD-7 (Generalized Anxiety Disorder 7-item scale) scoring.

Seven items answered 0-3, total 0-21, banded per Spitzer et al. (2006): 0-4 minimal, 5-9 mild,
10-14 moderate, 15-21 severe. The GAD-7 asks nothing about self-harm, so it never raises a risk
flag or opens a crisis log; a high anxiety score is a clinical concern, not a crisis trigger.
"""

from __future__ import annotations

from typing import Any

from mindharbor.domain.instruments.base import InstrumentResult, band_for, score_likert

NAME = "GAD-7"
RULES_VERSION = "gad7-2006.1"
ITEM_COUNT = 7
MAX_ITEM_VALUE = 3
BANDS: tuple[tuple[int, str], ...] = (
    (4, "minimal"),
    (9, "mild"),
    (14, "moderate"),
    (21, "severe"),
)


def score(responses: Any) -> InstrumentResult:
    answers = score_likert(NAME, responses, ITEM_COUNT, MAX_ITEM_VALUE)
    total = sum(answers.values())
    return InstrumentResult(
        instrument=NAME,
        score=total,
        severity=band_for(total, BANDS),
        risk_flags=(),
        crisis_risk_level=None,
        rules_version=RULES_VERSION,
        answers=dict(answers),
    )
