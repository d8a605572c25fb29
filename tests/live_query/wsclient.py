"""A minimal LiveQuery client over real WebSockets, for tests (the `websockets` package)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect


def ws_url(http_url: str) -> str:
    """``http://host:port/parse`` → ``ws://host:port/parse``, as the Parse SDKs derive it."""
    return "ws" + http_url.removeprefix("http")


class LiveClient:
    """One socket; ``expect`` waits for the next message, ``silent`` asserts there is none."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, url: str, **kw: Any) -> LiveClient:
        return cls(await connect(ws_url(url), **kw))

    async def send(self, body: dict[str, Any]) -> None:
        await self.ws.send(orjson.dumps(body).decode())

    async def recv(self, timeout: float = 10.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        return dict(orjson.loads(raw))

    async def expect(self, op: str, timeout: float = 10.0) -> dict[str, Any]:
        message = await self.recv(timeout)
        assert message["op"] == op, message
        return message

    async def silent(self, seconds: float = 0.7) -> None:
        try:
            message = await asyncio.wait_for(self.ws.recv(), seconds)
        except TimeoutError:
            return
        raise AssertionError(f"expected no message, got {message!r}")

    async def connect(self, app_id: str, **extra: Any) -> dict[str, Any]:
        await self.send({"op": "connect", "applicationId": app_id, **extra})
        return await self.expect("connected")

    async def subscribe(
        self,
        request_id: int,
        class_name: str,
        where: dict[str, Any] | None = None,
        token: str | None = None,
        op: str = "subscribe",
        **query: Any,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "op": op,
            "requestId": request_id,
            "query": {"className": class_name, "where": where or {}, **query},
        }
        if token:
            body["sessionToken"] = token
        await self.send(body)
        return await self.recv()

    async def close(self) -> None:
        await self.ws.close()


async def session_client(
    url: str, app_id: str, *, token: str | None = None, master_key: str | None = None
) -> LiveClient:
    client = await LiveClient.open(url)
    extra: dict[str, Any] = {}
    if token:
        extra["sessionToken"] = token
    if master_key:
        extra["masterKey"] = master_key
    try:
        await client.connect(app_id, **extra)
    except BaseException:
        await client.close()  # a refused or slow connect must not leak the socket
        raise
    return client
