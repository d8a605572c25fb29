"""Seeding and probing that survive a keep-alive connection closed under a request.

On a loaded machine a server may close an idle keep-alive connection just as the client sends
the next request on it; httpx then raises ``ReadError`` or ``RemoteProtocolError`` although the
server never saw the request. (The clients also drop idle connections after 2 s, below the
servers' 5 s, which makes this rare.) Such a request is sent once more:

* idempotent ones (``GET``, ``PUT``, a login, ``assignProvider``) simply again;
* a transactional batch of creates only after looking its objects up by the fields that
  identify them: if they exist, the first attempt committed and the replies are rebuilt from
  the lookup; if none exists, nothing happened and the batch is sent again; anything else
  stops the seed;
* a sign-up that answers "username taken" (202) after a lost reply is the account this run
  just created: the caller logs it in (``dataset.sign_up``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import httpx

from bench.find_messages import BATCH_SIZE, MOUNT, SEED_CONCURRENCY, Call, SeedError

TRANSIENT = (httpx.ReadError, httpx.RemoteProtocolError)
RETRY_PAUSE = 0.5  # seconds before the second attempt
COMMIT_GRACE = 1.0  # seconds before looking up what a lost batch may have committed
IDEMPOTENT_FUNCTIONS = frozenset({"assignProvider"})  # adds a member to a role: once is enough

# The fields that identify one seeded object of each class (unique in the seed plan).
IDENTITY_FIELDS: dict[str, tuple[str, ...]] = {
    "/users": ("username",),
    "/roles": ("name",),
    "/classes/PatientProfile": ("user",),
    "/classes/IntakeAssessment": ("patient", "assessmentDate"),
    "/classes/Message": ("conversationId", "body"),
}


async def send(
    client: httpx.AsyncClient, method: str, url: str, *, retry: bool = True, **kwargs: Any
) -> httpx.Response:
    """``client.request``, sent a second time after a transient connection error if ``retry``."""
    try:
        return await client.request(method, url, **kwargs)
    except TRANSIENT:
        if not retry:
            raise
        await asyncio.sleep(RETRY_PAUSE)
        return await client.request(method, url, **kwargs)


def idempotent(call: Call) -> bool:
    method, path, _ = call
    if method in ("GET", "PUT", "DELETE"):
        return True
    return method == "POST" and path.removeprefix("/functions/") in IDEMPOTENT_FUNCTIONS


async def find_created(client: httpx.AsyncClient, call: Call) -> list[dict[str, Any]]:
    """The objects already stored that ``call`` (a create) would have made."""
    _, path, body = call
    fields = IDENTITY_FIELDS.get(path)
    if fields is None:
        raise SeedError(f"no way to tell whether a lost {path} create committed")
    where = {name: body[name] for name in fields}
    response = await send(
        client,
        "GET",
        f"{MOUNT}{path}",
        params={"where": json.dumps(where), "keys": "objectId", "limit": "2"},
    )
    if response.status_code != 200:
        raise SeedError(f"lookup of {path} {where}: HTTP {response.status_code}")
    return list(response.json()["results"])


async def recover(client: httpx.AsyncClient, what: str, chunk: list[Call]) -> list[Any] | None:
    """After a lost reply to a transactional batch of creates: its replies if it committed,
    None if it did not (all or nothing, so the first and last entries decide)."""
    await asyncio.sleep(COMMIT_GRACE)
    first, last = await find_created(client, chunk[0]), await find_created(client, chunk[-1])
    if not first and not last:
        return None
    if len(first) != 1 or len(last) != 1:
        raise SeedError(f"batch of {what}: partly stored after a lost reply")
    found = [await find_created(client, call) for call in chunk]
    if any(len(rows) != 1 for rows in found):
        raise SeedError(f"batch of {what}: partly stored after a lost reply")
    return [{"objectId": rows[0]["objectId"]} for rows in found]


async def run_batched(
    client: httpx.AsyncClient, what: str, calls: list[Call], in_flight: int = SEED_CONCURRENCY
) -> list[Any]:
    """Transactional batches of 50, ``in_flight`` at a time, replies in order (as
    ``bench.find_messages.run_batched``), each batch sent again once after a lost reply."""
    gate = asyncio.Semaphore(in_flight)

    async def post(chunk: list[Call]) -> httpx.Response:
        requests = [{"method": m, "path": f"{MOUNT}{p}", "body": b} for m, p, b in chunk]
        return await client.post(f"{MOUNT}/batch", json={"requests": requests, "transaction": True})

    async def one_batch(chunk: list[Call]) -> list[Any]:
        async with gate:
            try:
                response = await post(chunk)
            except TRANSIENT:
                if not all(idempotent(call) for call in chunk):
                    recovered = await recover(client, what, chunk)
                    if recovered is not None:
                        return recovered
                await asyncio.sleep(RETRY_PAUSE)
                response = await post(chunk)
        if response.status_code != 200:
            raise SeedError(f"batch of {what}: HTTP {response.status_code} {response.text[:300]}")
        replies = response.json()
        failed = [r for r in replies if "success" not in r]
        if failed:
            raise SeedError(f"batch of {what}: {failed[0]}")
        return [r["success"] for r in replies]

    chunks = [calls[i : i + BATCH_SIZE] for i in range(0, len(calls), BATCH_SIZE)]
    results = await asyncio.gather(*(one_batch(c) for c in chunks))
    return list(itertools.chain.from_iterable(results))
