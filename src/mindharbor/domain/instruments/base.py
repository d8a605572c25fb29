"""The result type and the answer checks shared by every standardized instrument.

Scores and severity bands are computed on the server from the raw answers, never accepted from
the client: a client could otherwise store a "minimal" band next to answers that add up to
"severe". Validation is deliberately strict (exact item set, integers only, no ``True`` for 1, no
``2.0`` for 2) because a silently coerced answer in a clinical record is worse than a refused one;
the caller sees a ``ValidationFailed`` (142) naming the offending item and can correct it.

Every result carries ``rules_version`` so that, if a band or crisis rule ever changes, each stored
result can still be traced to the exact rules that produced it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mindharbor.errors import ValidationFailed

_MAX_KEY_SHOWN = 40  # unknown keys are echoed back in messages; keep them short


@dataclass(frozen=True)
class InstrumentResult:
    """The outcome of scoring one administration of an instrument.

    ``score`` is ``None`` for C-SSRS (it yields a risk level, not a sum); ``severity`` is the band
    (or the C-SSRS risk level). ``crisis_risk_level`` is the ``CrisisInterventionLog.riskLevel`` to
    open automatically, or ``None`` when no log should be opened. ``answers`` holds the normalised
    answers that were scored; it is excluded from hashing (a dict is not hashable) but not from
    equality.
    """

    instrument: str
    score: int | None
    severity: str
    risk_flags: tuple[str, ...]
    crisis_risk_level: str | None
    rules_version: str
    answers: dict[str, Any] = field(hash=False)


def require_mapping(instrument: str, responses: object) -> Mapping[str, Any]:
    if not isinstance(responses, Mapping):
        raise ValidationFailed(f"{instrument} responses must be an object keyed by item id.")
    return responses


def shown(key: object) -> str:
    """A client-supplied key, quoted and truncated, safe to echo in an error message."""
    text = str(key)
    if len(text) > _MAX_KEY_SHOWN:
        text = text[:_MAX_KEY_SHOWN] + "..."
    return repr(text)


def reject_unknown_keys(
    instrument: str, responses: Mapping[str, Any], allowed: Sequence[str], expected: str
) -> None:
    unknown = [key for key in responses if key not in allowed]
    if unknown:
        names = ", ".join(shown(key) for key in unknown)
        plural = "s" if len(unknown) > 1 else ""
        raise ValidationFailed(f"{instrument} has no item{plural} {names}; expected {expected}.")


def score_likert(
    instrument: str, responses: object, item_count: int, max_value: int
) -> dict[str, int]:
    """Check an ``item1``..``itemN`` answer set of integers 0..max_value; return it normalised."""
    answers = require_mapping(instrument, responses)
    item_ids = [f"item{n}" for n in range(1, item_count + 1)]
    expected = f"exactly {item_count} items item1..item{item_count}"
    reject_unknown_keys(instrument, answers, item_ids, expected)
    missing = [item for item in item_ids if item not in answers]
    if missing:
        raise ValidationFailed(
            f"{instrument} needs {expected}; missing {', '.join(missing)} "
            f"(got {len(answers)} item{'s' if len(answers) != 1 else ''})."
        )
    normalised: dict[str, int] = {}
    for item in item_ids:
        value = answers[item]
        # bool is an int subclass; True must not pass for 1.
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValidationFailed(
                f"{instrument} {item} must be an integer from 0 to {max_value} "
                f"(got {type(value).__name__})."
            )
        if not 0 <= value <= max_value:
            raise ValidationFailed(
                f"{instrument} {item} must be an integer from 0 to {max_value} (got {value})."
            )
        normalised[item] = int(value)
    return normalised


def band_for(total: int, bands: Sequence[tuple[int, str]]) -> str:
    """The label of the first ``(inclusive upper bound, label)`` band containing ``total``."""
    for upper, label in bands:
        if total <= upper:
            return label
    raise AssertionError(f"total {total} is above every band")  # unreachable after validation
