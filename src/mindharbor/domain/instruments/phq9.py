"""PHQ-9 (Patient Health Questionnaire, depression) scoring.

Nine items answered 0 ("not at all") to 3 ("nearly every day"), total 0-27, banded per Kroenke,
Spitzer & Williams (2001): 0-4 minimal, 5-9 mild, 10-14 moderate, 15-19 moderately severe, 20-27
severe.

Item 9 ("thoughts that you would be better off dead, or of hurting yourself") is handled apart
from the total, because a low total does not make a positive item 9 safe. Any answer >= 1 raises
the ``suicidal-ideation`` flag and opens a crisis log:

* item 9 = 1 or 2 ("several days", "more than half the days") -> ``moderate``;
* item 9 = 3 ("nearly every day") -> ``high``.

Why this mapping: item 9 measures how *often* such thoughts occur, not intent, plan or behaviour,
and many positive answers are passive thoughts of death. So a positive answer calls for prompt
clinician follow-up and a structured suicide-risk assessment (e.g. the C-SSRS), which is what a
``moderate`` log triggers, rather than an emergency response. Thoughts present nearly every day
are the strongest signal the item can carry, so they open a ``high`` log. ``low`` is never used
(a positive item 9 always needs follow-up) and ``imminent`` is never set automatically: it needs
evidence of intent or behaviour that only a clinician's assessment can supply.
"""

from __future__ import annotations

from typing import Any

from mindharbor.domain.instruments.base import InstrumentResult, band_for, score_likert

NAME = "PHQ-9"
RULES_VERSION = "phq9-2001.1"
ITEM_COUNT = 9
MAX_ITEM_VALUE = 3
BANDS: tuple[tuple[int, str], ...] = (
    (4, "minimal"),
    (9, "mild"),
    (14, "moderate"),
    (19, "moderately severe"),
    (27, "severe"),
)
SUICIDAL_IDEATION = "suicidal-ideation"


def score(responses: Any) -> InstrumentResult:
    answers = score_likert(NAME, responses, ITEM_COUNT, MAX_ITEM_VALUE)
    total = sum(answers.values())
    item9 = answers["item9"]
    flags: tuple[str, ...] = ()
    crisis: str | None = None
    if item9 >= 1:
        flags = (SUICIDAL_IDEATION,)
        crisis = "high" if item9 == MAX_ITEM_VALUE else "moderate"
    return InstrumentResult(
        instrument=NAME,
        score=total,
        severity=band_for(total, BANDS),
        risk_flags=flags,
        crisis_risk_level=crisis,
        rules_version=RULES_VERSION,
        answers=dict(answers),
    )
