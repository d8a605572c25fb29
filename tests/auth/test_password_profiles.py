"""argon2id parameters are a setting, and a hash made with other parameters is upgraded at the
next successful login (as bcrypt imports are): both backends over HTTP, and the unit rules."""

from __future__ import annotations

from pathlib import Path

from mindharbor.auth import passwords
from mindharbor.settings import Settings
from tests.api.identity_helpers import create_user, identity_server, login, run_sql

PASSWORD = "correct-horse-battery-9"


def _stored(live: object, user_id: str) -> str:
    (row,) = run_sql(
        live,  # type: ignore[arg-type]
        'SELECT "_hashed_password" FROM "_User" WHERE "objectId" = :id',
        id=user_id,
    )
    return str(row[0])


def test_profiles_and_rehash_rules() -> None:
    owasp = Settings(password_hash_profile="owasp")
    rfc = Settings(password_hash_profile="rfc9106")
    assert "$m=19456,t=2,p=1$" in passwords.hash_password(PASSWORD, owasp)
    old = passwords.hash_password(PASSWORD, rfc)
    assert "$m=65536,t=3,p=4$" in old
    ok, upgraded = passwords.verify_password(old, PASSWORD, owasp)
    assert ok and upgraded is not None and "$m=19456,t=2,p=1$" in upgraded
    ok, again = passwords.verify_password(upgraded, PASSWORD, owasp)
    assert ok and again is None
    assert passwords.verify_password(old, "wrong password!", owasp) == (False, None)
    assert passwords.verify_password(None, PASSWORD, owasp) == (False, None)


def test_a_login_upgrades_a_hash_of_another_profile(
    backend_url: str, backend: str, tmp_path: Path
) -> None:
    with identity_server(
        backend_url, backend, tmp_path / "a", password_hash_profile="rfc9106"
    ) as live:
        user = create_user(live.client(), "patient", password=PASSWORD)
        assert "$m=65536,t=3,p=4$" in _stored(live, user["objectId"])
    with identity_server(backend_url, backend, tmp_path / "b") as live:  # the default: owasp
        assert login(live.client(), user["username"], PASSWORD).status_code == 200
        assert "$m=19456,t=2,p=1$" in _stored(live, user["objectId"])
