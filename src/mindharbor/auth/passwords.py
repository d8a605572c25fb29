"""Password hashing and policy.

New hashes are argon2id with the configured parameter profile (``PROFILES``); a stored hash made
with other parameters is re-hashed at the next successful login. Hashes
imported from a Parse/Back4app export are bcrypt (``$2a$``/``$2b$``/``$2y$``): they are accepted and
replaced by argon2id at the next successful login, so an import never forces a reset. The policy
follows NIST SP 800-63B: a minimum length, a generous maximum, no composition rules, and a
refusal of the most common passwords and of passwords containing the username. Each check is a
setting (``password_min_length``, ``password_reject_common``, ``password_reject_username``):
Parse Server has none of them by default, and ``MINDHARBOR_PARSE_COMPAT`` turns them off.

The common-password list is bundled (no PyPI package is both maintained and offline: the
breach-corpus checkers call a web service with a hash prefix of every new password, which a
clinic's server should not do); ``MINDHARBOR_PASSWORD_COMMON_LIST`` adds a deployer's own list,
one password per line (plain or ``.gz``), e.g. a breached-password top list.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
from pathlib import Path

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from mindharbor.errors import ValidationFailed
from mindharbor.settings import Settings

# argon2id parameter profiles (``MINDHARBOR_PASSWORD_HASH_PROFILE``). "owasp" is OWASP's
# Password Storage Cheat Sheet minimum for argon2id (19 MiB, 2 passes, 1 lane: about the CPU of
# Parse's bcrypt cost 10 here); "rfc9106" is RFC 9106's second recommended option (64 MiB,
# 3 passes, 4 lanes), argon2-cffi's default, about three times the cost per login.
PROFILES: dict[str, tuple[int, int, int]] = {  # (time cost, memory KiB, lanes)
    "owasp": (2, 19 * 1024, 1),
    "rfc9106": (3, 64 * 1024, 4),
}
DEFAULT_PROFILE = "owasp"
_HASHERS: dict[str, tuple[PasswordHasher, str]] = {}


def _hasher_for(settings: Settings | None) -> tuple[PasswordHasher, str]:
    """The hasher of the configured profile, and a real hash of it to verify against when
    the user does not exist (so both paths cost the same)."""
    profile = settings.password_hash_profile if settings is not None else DEFAULT_PROFILE
    found = _HASHERS.get(profile)
    if found is None:
        time_cost, memory_cost, parallelism = PROFILES[profile]
        hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism
        )
        found = _HASHERS[profile] = (hasher, hasher.hash("mindharbor-timing-equaliser"))
    return found


_COMMON = frozenset(
    {
        "123456",
        "1234567",
        "qwerty",
        "qwerty123",
        "abc123",
        "111111",
        "123123",
        "000000",
        "football",
        "monkey",
        "dragon",
        "sunshine",
        "princess",
        "baseball",
        "trustno1",
        "superman",
        "letmein",
        "welcome",
        "admin",
        "admin123",
        "password12",
        "password1234",
        "qwertyuiop123",
        "1qaz2wsx3edc",
        "zaq12wsxcde3",
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


def hash_password(password: str, settings: Settings | None = None) -> str:
    return _hasher_for(settings)[0].hash(password)


def verify_password(
    stored: str | None, password: str, settings: Settings | None = None
) -> tuple[bool, str | None]:
    """(matches, a new hash to store when the stored one should be upgraded: a bcrypt import,
    or an argon2id hash made with other parameters than the configured profile's)."""
    hasher, dummy = _hasher_for(settings)
    if not stored:
        with contextlib.suppress(VerificationError):
            hasher.verify(dummy, password)
        return False, None
    if stored.startswith(("$2a$", "$2b$", "$2y$")):
        try:
            ok = bcrypt.checkpw(password.encode(), stored.encode())
        except ValueError:
            return False, None
        return ok, hasher.hash(password) if ok else None
    try:
        hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, None
    return True, hasher.hash(password) if hasher.check_needs_rehash(stored) else None


async def hash_password_async(password: str, settings: Settings | None = None) -> str:
    """argon2 takes tens of milliseconds of CPU by design: run it off the event loop so one
    login does not stall every other request of the worker."""
    return await asyncio.to_thread(hash_password, password, settings)


async def verify_password_async(
    stored: str | None, password: str, settings: Settings | None = None
) -> tuple[bool, str | None]:
    return await asyncio.to_thread(verify_password, stored, password, settings)


@functools.cache
def _deployer_list(path: Path) -> frozenset[str]:
    """A deployer's list of common passwords, read once per process."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as lines:
        return frozenset(line.strip().lower() for line in lines if line.strip())


def is_common(password: str, settings: Settings) -> bool:
    lowered = password.lower()
    extra = settings.password_common_list
    return lowered in _COMMON or (extra is not None and lowered in _deployer_list(extra))


def check_policy(password: object, settings: Settings, username: str | None = None) -> str:
    if not isinstance(password, str) or not password:
        raise ValidationFailed("password is required")
    if len(password) < max(1, settings.password_min_length):
        raise ValidationFailed(
            f"Password must be at least {settings.password_min_length} characters."
        )
    if len(password) > settings.password_max_length:
        raise ValidationFailed(
            f"Password must be at most {settings.password_max_length} characters."
        )
    if settings.password_reject_common and is_common(password, settings):
        raise ValidationFailed("Password is too common.")
    if (
        settings.password_reject_username
        and username
        and len(username) >= 3
        and username.lower() in password.lower()
    ):
        raise ValidationFailed("Password must not contain the username.")
    return password
