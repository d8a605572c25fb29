"""One account per sign-in identity, enforced by the database (storage/auth_identities.py).

Before: sign-in and linking looked for another holder with a query and then wrote, so concurrent
first log-ins of one identity on PostgreSQL each found none and each created an account (10 of
10 here); a master-key write of ``authData`` was not checked at all. Now a unique key kept by
triggers on ``_User`` refuses a second holder on every path (208, as Parse), a first log-in that
loses the race signs in to the winner's account, and a migration over legacy duplicates keeps
the first holder.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from joserfc.jwk import RSAKey

from mindharbor.security.auth import Auth
from mindharbor.storage import auth_identities
from mindharbor.storage.db import Store
from tests.api.identity_helpers import PASSWORD, identity_server, sign_up
from tests.api.test_sso_login import jwks, oidc_settings, signing_key, subject
from tests.auth.test_oidc import JwksServer, sign
from tests.support import LiveServer, ParseClient, make_settings, open_store

__all__ = ["jwks", "signing_key"]  # module fixtures shared with test_sso_login

RACERS = 10


@pytest.fixture(scope="module")
def compat_server(
    backend_url: str, backend: str, tmp_path_factory: pytest.TempPathFactory, jwks: JwksServer
) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("identities")
    with identity_server(backend_url, backend, data, **oidc_settings(jwks, parse_compat=True)) as s:
        yield s


@pytest.fixture(scope="module")
def compat(compat_server: LiveServer) -> ParseClient:
    return compat_server.client()


async def _race(server: LiveServer, body: dict[str, Any]) -> list[httpx.Response]:
    headers = {"X-Parse-Application-Id": server.app_id}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as http:
        return await asyncio.gather(*(http.post("/users", json=body) for _ in range(RACERS)))


def _holders(compat: ParseClient, provider: str, sub: str) -> list[str]:
    found = compat.find("_User", where=f'{{"authData.{provider}.id": "{sub}"}}')
    return [row["objectId"] for row in found["results"]]


def _one_account(responses: list[httpx.Response]) -> str:
    """Exactly one first log-in created the account and every other one signed in to it (a
    racer that lost inside its transaction falls back to the winner's account)."""
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * (RACERS - 1) + [201], [r.text for r in responses]
    accounts = {r.json()["objectId"] for r in responses}
    assert len(accounts) == 1, accounts
    return accounts.pop()


def test_concurrent_first_anonymous_log_ins_make_one_account(
    compat_server: LiveServer, compat: ParseClient
) -> None:
    anon_id = str(uuid.uuid4())
    responses = asyncio.run(_race(compat_server, {"authData": {"anonymous": {"id": anon_id}}}))
    account = _one_account(responses)
    assert _holders(compat, "anonymous", anon_id) == [account]


def test_concurrent_first_sso_log_ins_make_one_account(
    compat_server: LiveServer, compat: ParseClient, signing_key: RSAKey
) -> None:
    sub = subject()
    token = sign(signing_key, sub=sub, email=None, email_verified=None)
    responses = asyncio.run(_race(compat_server, {"authData": {"oidc": {"id_token": token}}}))
    account = _one_account(responses)
    assert _holders(compat, "oidc", sub) == [account]


def test_master_key_cannot_give_one_identity_to_two_accounts(
    compat: ParseClient, signing_key: RSAKey
) -> None:
    first, second, sub = sign_up(compat), sign_up(compat), subject()
    linked = {"authData": {"oidc": {"id": sub}}}
    assert compat.put(f"/users/{first['objectId']}", linked, master=True).status_code == 200
    taken = compat.put(f"/users/{second['objectId']}", linked, master=True)
    assert (taken.status_code, taken.json()["code"]) == (400, 208), taken.text
    # The refused write changed nothing, and the identity signs in to its one holder.
    assert _holders(compat, "oidc", sub) == [first["objectId"]]
    login = compat.post(
        "/users", {"authData": {"oidc": {"id_token": sign(signing_key, sub=sub, email=None)}}}
    )
    assert login.status_code == 200 and login.json()["objectId"] == first["objectId"]
    # Deleting the holder frees the identity for another account.
    assert compat.delete(f"/users/{first['objectId']}", master=True).status_code == 200
    assert compat.put(f"/users/{second['objectId']}", linked, master=True).status_code == 200
    assert _holders(compat, "oidc", sub) == [second["objectId"]]


# -- migrating a database that already holds duplicates ---------------------------------------
_DROP = {
    "postgresql": ['DROP TRIGGER auth_identity ON "_User"'],
    "sqlite": [f'DROP TRIGGER "_User_auth_identity_{op}"' for op in ("insert", "update", "delete")],
}


async def _legacy_duplicates(store: Store, sub: str) -> list[str]:
    """Two accounts holding one identity, written as an older version could (no triggers)."""
    async with store.unit_of_work(Auth.system()) as repo:
        for statement in _DROP[store.dialect]:
            await repo.conn.execute(sa.text(statement))
        await repo.conn.execute(sa.text('DELETE FROM "_AuthIdentity"'))
    ids = []
    for n in range(2):
        async with store.unit_of_work(Auth.system()) as repo:
            body = {"username": f"legacy_{n}_{sub}", "authData": {"oidc": {"id": sub}}}
            ids.append((await repo.create("_User", body))["objectId"])
    return ids


async def _holder(store: Store, sub: str) -> str | None:
    async with store.unit_of_work(Auth.system()) as repo:
        return await auth_identities.holder(repo, "oidc", sub)


@pytest.mark.anyio
async def test_migration_keeps_the_first_holder_of_a_shared_identity(
    fresh_backend_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(fresh_backend_url, tmp_path)
    sub = subject()
    async with open_store(settings) as store:
        first, second = await _legacy_duplicates(store, sub)
        assert await _holder(store, sub) is None
        caplog.set_level(logging.WARNING, logger=auth_identities.__name__)
        await store.migrate()  # recreates the triggers and fills the table
        assert await _holder(store, sub) == first
        assert "shared by several accounts before this version: 1" in caplog.text
        assert sub not in caplog.text  # counts only, never an identity
        caplog.clear()
        await store.migrate()  # present: nothing to do, nothing logged
        assert caplog.text == ""
        # The second account keeps its stored authData but cannot re-take the identity.
        with pytest.raises(Exception) as refused:
            async with store.unit_of_work(Auth.system()) as repo:
                await repo.update("_User", second, {"authData": {"oidc": {"id": sub}}})
        assert getattr(refused.value, "code", None) == 208


@pytest.mark.anyio
async def test_a_first_log_in_that_loses_the_race_signs_in_to_the_winner(
    fresh_backend_url: str, tmp_path: Path
) -> None:
    """The fallback itself, deterministically: the loser's insert waits for the winner's
    transaction, fails on the key when it commits, and answers the winner's account."""
    settings = make_settings(fresh_backend_url, tmp_path)
    sub = subject()

    async def loser(store: Store) -> tuple[str, bool]:
        async with store.unit_of_work(Auth.system()) as repo:

            async def create() -> str:
                body = {"username": f"loser_{sub}", "authData": {"oidc": {"id": sub}}}
                return str((await repo.create("_User", body))["objectId"])

            return await auth_identities.create_unless_held(repo, "oidc", sub, create)

    async with open_store(settings) as store:
        async with store.unit_of_work(Auth.system()) as winner:
            body = {"username": f"winner_{sub}", "authData": {"oidc": {"id": sub}}}
            won = (await winner.create("_User", body))["objectId"]
            racing = asyncio.create_task(loser(store))
            await asyncio.sleep(0.3)  # the loser is now waiting for this transaction
            assert not racing.done()
        assert await racing == (won, False)
        assert await _holder(store, sub) == won


def test_concurrent_sign_ups_of_one_name_or_email_answer_as_parse(
    compat_server: LiveServer,
) -> None:
    """A sign-up that loses the race on the username or email key answers 202/203, as one that
    came second (it answered 137 "duplicate value" on PostgreSQL)."""
    name, email = f"race_{uuid.uuid4().hex[:10]}", f"race_{uuid.uuid4().hex[:10]}@example.org"
    same_name = [
        {"username": name, "password": PASSWORD, "email": f"{name}_{n}@example.org"}
        for n in range(RACERS)
    ]
    same_email = [
        {"username": f"{name}_{n}", "password": PASSWORD, "email": email} for n in range(RACERS)
    ]
    for bodies, code in ((same_name, 202), (same_email, 203)):
        responses = asyncio.run(_sign_ups(compat_server, bodies))
        codes = sorted(r.status_code for r in responses)
        assert codes == [201] + [400] * (RACERS - 1), [r.text for r in responses]
        refused = {r.json()["code"] for r in responses if r.status_code == 400}
        assert refused == {code}, [r.text for r in responses]


async def _sign_ups(server: LiveServer, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    headers = {"X-Parse-Application-Id": server.app_id}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as http:
        return await asyncio.gather(*(http.post("/users", json=body) for body in bodies))
