"""``MINDHARBOR_PARSE_COMPAT`` and the password-policy settings, without a server."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from mindharbor.auth.passwords import check_policy
from mindharbor.errors import ValidationFailed
from mindharbor.settings import PARSE_COMPAT_DEFAULTS, Settings

SAFE = {
    "password_min_length": 10,
    "password_reject_common": True,
    "password_reject_username": True,
    "user_custom_fields": False,
    "auth_linking": False,
    "anonymous_users": False,
}


def values(settings: Settings) -> dict[str, object]:
    return {name: getattr(settings, name) for name in SAFE}


def test_safe_defaults() -> None:
    assert values(Settings()) == SAFE
    assert Settings().file_upload_public is False


def test_parse_compat_turns_every_parse_default_on() -> None:
    assert values(Settings(parse_compat=True)) == PARSE_COMPAT_DEFAULTS
    assert Settings(parse_compat=True).file_upload_public is False  # off in Parse too


def test_an_explicit_setting_overrides_the_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINDHARBOR_PARSE_COMPAT", "true")
    monkeypatch.setenv("MINDHARBOR_ANONYMOUS_USERS", "false")
    monkeypatch.setenv("MINDHARBOR_PASSWORD_MIN_LENGTH", "12")
    settings = Settings()
    assert settings.anonymous_users is False
    assert settings.password_min_length == 12
    assert settings.auth_linking is True and settings.password_reject_common is False
    assert Settings(parse_compat=True, user_custom_fields=False).user_custom_fields is False


def test_each_password_check_is_a_setting() -> None:
    strict = Settings()
    with pytest.raises(ValidationFailed, match="too common"):
        check_policy("Password123", strict)
    with pytest.raises(ValidationFailed, match="username"):
        check_policy("jordan-long-passphrase", strict, "Jordan")
    check_policy("Password123", Settings(password_reject_common=False))
    check_policy("jordan-long-passphrase", Settings(password_reject_username=False), "Jordan")
    with pytest.raises(ValidationFailed, match="at least 10"):
        check_policy("short", strict)
    check_policy("x", Settings(password_min_length=0))  # never empty, whatever the minimum
    with pytest.raises(ValidationFailed):
        check_policy("", Settings(password_min_length=0))


@pytest.mark.parametrize("suffix", [".txt", ".txt.gz"])
def test_a_deployer_common_password_list(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"common{suffix}"
    text = "correcthorsebattery\n  Tr0ub4dor&3xyz \n"
    if suffix.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    settings = Settings(password_common_list=path)
    for password in ("CorrectHorseBattery", "tr0ub4dor&3xyz"):
        with pytest.raises(ValidationFailed, match="too common"):
            check_policy(password, settings)
    check_policy("a-phrase-nobody-lists-9", settings)
