"""Server-side scoring of the standardized instruments an ``IntakeAssessment`` may record.

The server, not the client, decides ``score``, ``severity`` and whether a crisis log opens, so
those facts cannot disagree with the answers stored beside them. ``score`` dispatches on the
instrument's exact name as stored in ``IntakeAssessment.instrument``; free-text ``intake``
assessments (and a missing instrument) are not scored, which ``is_scored`` tells callers before
they call ``score``. Pure functions: no I/O, no clock, no randomness.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mindharbor.domain.instruments import cssrs, gad7, phq9
from mindharbor.domain.instruments.base import InstrumentResult, shown
from mindharbor.errors import ValidationFailed

__all__ = ["SUPPORTED", "InstrumentResult", "is_scored", "score"]

_SCORERS: dict[str, Callable[[Any], InstrumentResult]] = {
    phq9.NAME: phq9.score,
    gad7.NAME: gad7.score,
    cssrs.NAME: cssrs.score,
}
SUPPORTED: frozenset[str] = frozenset(_SCORERS)


def is_scored(instrument: str | None) -> bool:
    """Whether ``instrument`` has server-side scoring (False for ``intake``, None or unknown)."""
    return isinstance(instrument, str) and instrument in SUPPORTED


def score(instrument: str, responses: dict[str, Any]) -> InstrumentResult:
    """Validate ``responses`` for ``instrument`` and score them; ``ValidationFailed`` if invalid."""
    if not is_scored(instrument):
        names = ", ".join(sorted(SUPPORTED))
        if instrument is None:
            raise ValidationFailed(
                f"An assessment without an instrument is not scored; scored are {names}."
            )
        raise ValidationFailed(f"Instrument {shown(instrument)} is not scored; scored are {names}.")
    return _SCORERS[instrument](responses)
