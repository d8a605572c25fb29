"""Second factor: TOTP (RFC 6238) codes and single-use recovery codes.

Why it is built this way:

* The TOTP arithmetic is pyotp's; nothing here re-implements HMAC or dynamic truncation.
* A code is accepted for the current 30-second step and one step either side (clock drift
  between a phone and the server), never wider: each extra step is another window in which a
  phished or shoulder-surfed code still works.
* ``verify_totp`` returns the step that matched so the caller can store it; a code whose step
  is not *after* the stored one is refused. Without that, a code observed on the wire or on
  screen could be replayed for up to 90 seconds (RFC 6238 section 5.2).
* Comparisons use ``hmac.compare_digest`` so response timing does not reveal how many leading
  digits of a guess were right.
* Recovery codes come from ``secrets`` (60 bits each). Only their SHA-256 digests are stored:
  a slow password hash (argon2) exists to make guessing *low-entropy* human passwords
  expensive, but brute-forcing a 60-bit uniformly random code through a fast hash is already
  out of reach (2^60 SHA-256 evaluations per code), and a fast hash keeps the login path cheap.
  The digest is unsalted on purpose: codes are unique random values, so there is nothing
  for a salt to protect against (no shared or guessable inputs, no rainbow tables).
* Codes are single use: a match returns the remaining digests for the caller to store.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import pyotp

TOTP_DIGITS = 6
VALID_WINDOW = 1  # steps accepted either side of the current one
# Crockford's base32 alphabet: no i, l, o, u, so a code read aloud or from paper is unambiguous.
_RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_RECOVERY_GROUPS = (4, 4, 4)  # 12 symbols x 5 bits = 60 bits of entropy
_LOOKALIKES = str.maketrans({"o": "0", "i": "1", "l": "1"})


@dataclass(frozen=True)
class TotpEnrollment:
    """What a user needs to set up an authenticator app; the secret is shown once, then stored."""

    secret: str  # base32
    uri: str  # otpauth:// provisioning URI (issuer + account name)

    def __repr__(self) -> str:  # keep the shared secret out of logs and tracebacks
        return "TotpEnrollment(secret='***', uri='***')"


def new_enrollment(account_name: str, issuer: str) -> TotpEnrollment:
    """A fresh 160-bit secret and its provisioning URI (for a QR code)."""
    secret = pyotp.random_base32()
    uri = pyotp.TOTP(secret, digits=TOTP_DIGITS).provisioning_uri(
        name=account_name, issuer_name=issuer
    )
    return TotpEnrollment(secret=secret, uri=uri)


def _normalise_totp(code: str) -> str | None:
    """The code without whitespace, or None unless it is exactly six ASCII digits."""
    digits = "".join(code.split())
    if len(digits) != TOTP_DIGITS or not (digits.isascii() and digits.isdigit()):
        return None
    return digits


def verify_totp(
    secret: str, code: str, *, last_used_step: int | None, now: float | None = None
) -> int | None:
    """The time step ``code`` is valid for (current +/- 1), or None.

    A step at or before ``last_used_step`` is refused: each code is usable once. Store the
    returned step as the new ``last_used_step``.
    """
    digits = _normalise_totp(code)
    if digits is None:
        return None
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS)
    current = totp.timecode(time.time() if now is None else now)
    matched: int | None = None
    # Check every candidate step (no early exit) so timing does not depend on which matched.
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        fresh = last_used_step is None or step > last_used_step
        if hmac.compare_digest(totp.generate_otp(step), digits) and fresh and matched is None:
            matched = step
    return matched


def _normalise_recovery(code: str) -> str:
    """Lower case, without dashes or whitespace, with look-alike letters mapped to digits."""
    return "".join(code.lower().replace("-", "").split()).translate(_LOOKALIKES)


def _hash_recovery(normalised: str) -> str:
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def _new_recovery_code() -> str:
    groups = (
        "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(size))
        for size in _RECOVERY_GROUPS
    )
    return "-".join(groups)


def new_recovery_codes(count: int = 10) -> tuple[list[str], list[str]]:
    """(codes to show the user once, SHA-256 digests of them to store)."""
    if count < 1:
        raise ValueError("count must be positive")
    codes = [_new_recovery_code() for _ in range(count)]
    return codes, [_hash_recovery(_normalise_recovery(code)) for code in codes]


def use_recovery_code(code: str, hashes: list[str]) -> list[str] | None:
    """The digests left once ``code`` is spent, or None when it matches none of ``hashes``."""
    normalised = _normalise_recovery(code)
    if len(normalised) != sum(_RECOVERY_GROUPS):
        return None
    candidate = _hash_recovery(normalised)
    matched: int | None = None
    for index, stored in enumerate(hashes):  # compare against all: timing reveals no position
        if hmac.compare_digest(candidate.encode(), stored.encode()) and matched is None:
            matched = index
    if matched is None:
        return None
    return hashes[:matched] + hashes[matched + 1 :]
