"""Password hashing and policy.

New hashes are argon2id (argon2-cffi's defaults follow RFC 9106's recommended profile). Hashes
imported from a Parse/Back4app export are bcrypt (``$2a$``/``$2b$``/``$2y$``): they are accepted and
replaced by argon2id at the next successful login, so an import never forces a reset. The policy
follows NIST SP 800-63B: a minimum length, a generous maximum, no composition rules, and a
refusal of the most common passwords and of passwords containing the username.
"""

from __future__ import annotations

import asyncio
import contextlib

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from mindharbor.errors import ValidationFailed
from mindharbor.settings import Settings

_hasher = PasswordHasher()
# A real hash to verify against when the user does not exist, so both paths cost the same.
_DUMMY_HASH = _hasher.hash("mindharbor-timing-equaliser")
_COMMON = frozenset(
    {
        "password",
        "password1",
        "password123",
        "123456789",
        "1234567890",
        "12345678",
        "qwertyuiop",
        "iloveyou",
        "letmein123",
        "welcome123",
        "admin12345",
        "changeme",
        "passw0rd123",
        "abc1234567",
        "qwerty1234",
        "1q2w3e4r5t",
    }
)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> tuple[bool, str | None]:
    """(matches, a new hash to store when the stored one should be upgraded)."""
    if not stored:
        _burn(password)
        return False, None
    if stored.startswith(("$2a$", "$2b$", "$2y$")):
        try:
            ok = bcrypt.checkpw(password.encode(), stored.encode())
        except ValueError:
            return False, None
        return ok, hash_password(password) if ok else None
    try:
        _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, None
    return True, hash_password(password) if _hasher.check_needs_rehash(stored) else None


async def hash_password_async(password: str) -> str:
    """argon2 takes ~0.2 s of CPU by design: run it off the event loop so one login does not
    stall every other request of the worker."""
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(stored: str | None, password: str) -> tuple[bool, str | None]:
    return await asyncio.to_thread(verify_password, stored, password)


def _burn(password: str) -> None:
    with contextlib.suppress(VerificationError):
        _hasher.verify(_DUMMY_HASH, password)


def check_policy(password: object, settings: Settings, username: str | None = None) -> str:
    if not isinstance(password, str) or not password:
        raise ValidationFailed("password is required")
    if len(password) < settings.password_min_length:
        raise ValidationFailed(
            f"Password must be at least {settings.password_min_length} characters."
        )
    if len(password) > settings.password_max_length:
        raise ValidationFailed(
            f"Password must be at most {settings.password_max_length} characters."
        )
    lowered = password.lower()
    if lowered in _COMMON:
        raise ValidationFailed("Password is too common.")
    if username and len(username) >= 3 and username.lower() in lowered:
        raise ValidationFailed("Password must not contain the username.")
    return password
