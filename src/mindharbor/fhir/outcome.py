"""FHIR errors: one exception, one OperationOutcome body, one mapping from Parse errors.

Handlers raise ``FhirError`` (or let a ``ParseError`` from the object service through);
``outcome_response`` is the only place either becomes an HTTP answer. As on the REST face, an
object the caller may not read is "not found" (404), never "forbidden": existence is PHI.

    FhirError(status, code, diagnostics)
      401 login         no or an invalid credential
      403 forbidden     the class or operation is closed to the caller (Parse 119)
      404 not-found     missing, or invisible to the caller (Parse 101)
      400 invalid / not-supported / processing   a bad request or search
      410 deleted       (not used: nothing is deleted through this face)
      500 exception     anything unexpected (no details)
"""

from __future__ import annotations

from typing import Any

from mindharbor.errors import (
    InvalidSessionToken,
    ObjectNotFound,
    OperationForbidden,
    ParseError,
    RequestLimitExceeded,
    RequestTooLarge,
    SessionMissing,
    Unauthorized,
)


class FhirError(Exception):
    """A failure answered as an OperationOutcome; ``diagnostics`` is safe to show."""

    def __init__(self, status: int, code: str, diagnostics: str) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.code = code
        self.diagnostics = diagnostics


def bad_request(diagnostics: str, code: str = "invalid") -> FhirError:
    return FhirError(400, code, diagnostics)


def not_found(diagnostics: str = "Resource not found.") -> FhirError:
    return FhirError(404, "not-found", diagnostics)


def not_supported(diagnostics: str) -> FhirError:
    return FhirError(400, "not-supported", diagnostics)


def login_required(diagnostics: str = "Authentication is required.") -> FhirError:
    return FhirError(401, "login", diagnostics)


def forbidden(diagnostics: str = "Not allowed.") -> FhirError:
    return FhirError(403, "forbidden", diagnostics)


def outcome(code: str, diagnostics: str, severity: str = "error") -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


def from_exception(exc: BaseException) -> FhirError:
    """The FHIR answer for any exception; unknown ones never leak their text."""
    if isinstance(exc, FhirError):
        return exc
    if isinstance(exc, ParseError):
        if isinstance(exc, ObjectNotFound):
            return not_found()
        if isinstance(exc, InvalidSessionToken | SessionMissing):
            return login_required("Invalid or expired session.")
        if isinstance(exc, Unauthorized):
            return login_required("Invalid credentials.")
        if isinstance(exc, OperationForbidden):
            return forbidden(exc.message)
        if isinstance(exc, RequestLimitExceeded):
            return FhirError(429, "throttled", exc.message)
        if isinstance(exc, RequestTooLarge):
            return FhirError(413, "too-costly", exc.message)
        if exc.http_status >= 500:
            return FhirError(500, "exception", "Internal server error.")
        return bad_request(exc.message, "processing")
    return FhirError(500, "exception", "Internal server error.")
