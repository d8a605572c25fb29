"""TOTP verification (window, replay, format) and single-use recovery codes."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qs, unquote, urlparse

import pyotp
import pytest

from mindharbor.auth.mfa import (
    new_enrollment,
    new_recovery_codes,
    use_recovery_code,
    verify_totp,
)

NOW = 1_700_000_000.0  # a fixed instant; step = NOW // 30


def code_at(secret: str, when: float) -> str:
    return pyotp.TOTP(secret).at(when)


def test_enrollment_has_base32_secret_and_uri() -> None:
    enrollment = new_enrollment("alice@example.org", "MindHarbor")
    assert len(enrollment.secret) >= 32
    pyotp.TOTP(enrollment.secret).now()  # valid base32
    uri = urlparse(enrollment.uri)
    assert uri.scheme == "otpauth" and uri.netloc == "totp"
    assert unquote(uri.path) == "/MindHarbor:alice@example.org"
    query = parse_qs(uri.query)
    assert query["secret"] == [enrollment.secret]
    assert query["issuer"] == ["MindHarbor"]
    assert enrollment.secret not in repr(enrollment)
    assert new_enrollment("a", "b").secret != new_enrollment("a", "b").secret


def test_current_code_returns_its_step() -> None:
    secret = pyotp.random_base32()
    step = int(NOW // 30)
    assert verify_totp(secret, code_at(secret, NOW), last_used_step=None, now=NOW) == step


@pytest.mark.parametrize("offset", [-1, 1])
def test_adjacent_steps_accepted(offset: int) -> None:
    secret = pyotp.random_base32()
    when = NOW + 30 * offset
    step = int(NOW // 30) + offset
    assert verify_totp(secret, code_at(secret, when), last_used_step=None, now=NOW) == step


@pytest.mark.parametrize("offset", [-2, 2, 10])
def test_steps_outside_window_refused(offset: int) -> None:
    secret = pyotp.random_base32()
    code = code_at(secret, NOW + 30 * offset)
    assert verify_totp(secret, code, last_used_step=None, now=NOW) is None


def test_replay_of_same_or_older_step_refused() -> None:
    secret = pyotp.random_base32()
    code = code_at(secret, NOW)
    step = verify_totp(secret, code, last_used_step=None, now=NOW)
    assert step is not None
    assert verify_totp(secret, code, last_used_step=step, now=NOW) is None
    assert verify_totp(secret, code, last_used_step=step, now=NOW + 25) is None
    previous = code_at(secret, NOW - 30)
    assert verify_totp(secret, previous, last_used_step=step, now=NOW) is None
    following = code_at(secret, NOW + 30)
    assert verify_totp(secret, following, last_used_step=step, now=NOW + 30) == step + 1


def test_spaces_tolerated_other_formats_refused() -> None:
    secret = pyotp.random_base32()
    code = code_at(secret, NOW)
    spaced = f" {code[:3]} {code[3:]} "
    assert verify_totp(secret, spaced, last_used_step=None, now=NOW) is not None
    for bad in ["", code[:5], code + "0", "abcdef", "١٢٣٤٥٦", f"{code[:3]}-{code[3:]}"]:
        assert verify_totp(secret, bad, last_used_step=None, now=NOW) is None


def test_wrong_code_refused() -> None:
    secret = pyotp.random_base32()
    code = code_at(secret, NOW)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert verify_totp(secret, wrong, last_used_step=None, now=NOW) is None
    assert verify_totp(pyotp.random_base32(), code, last_used_step=None, now=NOW) is None


def test_real_clock_default() -> None:
    secret = pyotp.random_base32()
    assert verify_totp(secret, pyotp.TOTP(secret).now(), last_used_step=None) is not None


def test_recovery_codes_are_random_and_stored_hashed() -> None:
    codes, hashes = new_recovery_codes()
    assert len(codes) == len(hashes) == 10
    assert len(set(codes)) == 10
    for code, digest in zip(codes, hashes, strict=True):
        assert len(code.replace("-", "")) >= 10
        assert code not in digest
        assert digest == hashlib.sha256(code.replace("-", "").encode()).hexdigest()
    assert len(new_recovery_codes(3)[0]) == 3
    with pytest.raises(ValueError):
        new_recovery_codes(0)


def test_recovery_code_single_use() -> None:
    codes, hashes = new_recovery_codes(4)
    remaining = use_recovery_code(codes[2], hashes)
    assert remaining == hashes[:2] + hashes[3:]
    assert use_recovery_code(codes[2], remaining) is None
    again = use_recovery_code(codes[0], remaining)
    assert again == [hashes[1], hashes[3]]


def test_recovery_code_normalisation() -> None:
    codes, hashes = new_recovery_codes(1)
    sloppy = " " + codes[0].upper().replace("-", " ") + " "
    assert use_recovery_code(sloppy, hashes) == []
    assert use_recovery_code(codes[0].replace("-", ""), hashes) == []


def test_unknown_recovery_code_refused() -> None:
    _, hashes = new_recovery_codes(3)
    other, _ = new_recovery_codes(1)
    assert use_recovery_code(other[0], hashes) is None
    assert use_recovery_code("", hashes) is None
    assert use_recovery_code("x" * 1000, hashes) is None
    assert use_recovery_code(other[0], []) is None
