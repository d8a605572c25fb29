"""Database errors, translated once: what a client provoked becomes its Parse error, an unusable
database a 503. Both SQLAlchemy's wrapped errors and asyncpg's own (compiled shapes run on raw
asyncpg, ``storage/shapes.py``) are understood."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from mindharbor.errors import (
    AccountAlreadyLinked,
    DuplicateValue,
    EmailTaken,
    IncorrectType,
    InvalidJSON,
    InvalidQuery,
    ParseError,
    ServiceUnavailable,
    UsernameTaken,
    ValidationFailed,
)


def _original(exc: BaseException) -> Any:
    return exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc


def sqlstate(exc: BaseException) -> str | None:
    """PostgreSQL's SQLSTATE of a driver error (None on SQLite)."""
    orig = _original(exc)
    found = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return str(found) if found else None


def is_database_error(exc: BaseException) -> bool:
    """A driver's error (SQLAlchemy-wrapped, or asyncpg's raised outside SQLAlchemy)."""
    return isinstance(exc, sa.exc.DBAPIError) or type(exc).__module__.startswith("asyncpg")


# SQLSTATE classes of an unusable database: connection exceptions (08), operator intervention
# (57P01-57P03: shutdown, crash, cannot connect now), insufficient resources (53: disk full, out
# of memory, too many connections).
_OUTAGE_STATES = ("08", "57P01", "57P02", "57P03", "53")
_SQLITE_OUTAGE = ("disk i/o error", "unable to open database", "database is locked")
_ASYNCPG_OUTAGE = frozenset(
    {
        "ConnectionDoesNotExistError",
        "InterfaceError",
        "CannotConnectNowError",
        "PoolConnectionLimitError",
    }
)


def outage(exc: BaseException) -> ServiceUnavailable | None:
    """The 503 for a failure that means the database cannot be used right now (not the
    request's fault, and worth a retry): refused or dropped connections, a shut-down or
    starting server, a full disk, an exhausted pool."""
    if is_database_error(exc):
        state = sqlstate(exc) or ""
        text = str(_original(exc)).lower()
        if state == "53100" or "database or disk is full" in text:
            return ServiceUnavailable(
                "The database has no space left; nothing was changed. Retry once space is freed."
            )
        invalidated = getattr(exc, "connection_invalidated", False)
        if invalidated or state.startswith(_OUTAGE_STATES):
            return ServiceUnavailable()
        if any(marker in text for marker in _SQLITE_OUTAGE):
            return ServiceUnavailable()
        if type(_original(exc)).__name__ in _ASYNCPG_OUTAGE:
            return ServiceUnavailable()
        return None
    if isinstance(exc, sa.exc.TimeoutError | OSError | ConnectionError):
        return ServiceUnavailable()  # pool exhausted; connection refused or reset
    return None


# A unique key's name (PostgreSQL) or columns (SQLite) in the lower-cased message -> the error
# Parse answers when that key refuses a write, so a sign-up that loses a race answers as one
# that came second (202/203), not with the generic 137.
_UNIQUE_KEYS: tuple[tuple[tuple[str, ...], type[ParseError]], ...] = (
    (("_authidentity",), AccountAlreadyLinked),  # storage/auth_identities.py
    (("uq__user_username", "_user.username", "_user._username_key"), UsernameTaken),
    (("uq__user_email", "_user.email"), EmailTaken),
)


def unique_violation(exc: BaseException) -> ParseError:
    """The Parse error for a write a unique key refused: 208 for a second holder of one sign-in
    identity, 202/203 for a taken username/email, 137 for any other key."""
    text = str(_original(exc)).lower()
    for markers, error in _UNIQUE_KEYS:
        if any(marker in text for marker in markers):
            return error()
    return DuplicateValue()


def translate_db_error(exc: BaseException) -> ParseError | None:
    """Map the database errors a client can provoke to Parse errors (never their raw text)."""
    down = outage(exc)
    if down is not None:
        return down
    orig = _original(exc)
    state = sqlstate(exc)
    text = str(orig).lower()
    if state == "57014" or "canceling statement" in text:
        return InvalidQuery("The query took too long and was cancelled.")
    if state == "2201B" or "invalid regular expression" in text or "regexp" in text:
        return InvalidQuery("Invalid regular expression.")
    if state == "23P01":  # an exclusion constraint: only BOOKING_GUARDS has one
        return ValidationFailed("The provider is already booked at that time.")
    if state == "23505" or "unique constraint" in text:
        return unique_violation(exc)
    if state in ("22003", "22P02") or "out of range" in text:
        return IncorrectType("A value is out of range for its field.")
    if state in ("22021", "22P05") or "0x00" in text or "unicode escape" in text:
        return InvalidJSON("Strings may not contain NUL characters.")
    if state == "54001" or "too complex" in text or "expression tree is too large" in text:
        return InvalidQuery("The query is too complex.")
    return None
