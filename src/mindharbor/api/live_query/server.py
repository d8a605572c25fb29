"""The LiveQuery WebSocket endpoint: socket I/O only; the hub owns the protocol's state.

Each connection runs two tasks. The reader hands frames to the hub; the writer drains the
connection's bounded outbox onto the socket, one send at a time, and gives up on a client whose
send does not complete within ``live_query_send_timeout_seconds`` (a stalled reader whose TCP
window is shut). Dead peers are found by the server's WebSocket keepalive pings (uvicorn's
``ws_ping_interval``/``ws_ping_timeout``), which end the reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.websockets import WebSocket, WebSocketState

from mindharbor.api.live_query import protocol
from mindharbor.api.live_query.hub import Connection, Hub

log = logging.getLogger(__name__)


class LiveQueryEndpoint:
    """``WebSocketRoute(path, LiveQueryEndpoint(hub).serve)``."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def serve(self, websocket: WebSocket) -> None:
        await websocket.accept()
        client = websocket.client
        conn = self.hub.open(
            client.host if client is not None else None,
            (websocket.headers.get("user-agent") or "")[:300] or None,
        )
        reader = asyncio.create_task(self._read(websocket, conn))
        writer = asyncio.create_task(self._write(websocket, conn))
        try:
            await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.hub.close(conn)
            for task in (reader, writer):
                task.cancel()
            await asyncio.gather(reader, writer, return_exceptions=True)
            if websocket.application_state != WebSocketState.DISCONNECTED:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(websocket.close(conn.close_code), 1.0)

    async def _read(self, websocket: WebSocket, conn: Connection) -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            frame = message.get("text") or message.get("bytes") or ""
            try:
                await self.hub.handle(conn, frame)
            except Exception:
                log.exception("live query: request failed")
                conn.push(protocol.error(1, "Internal server error.", reconnect=False))

    async def _write(self, websocket: WebSocket, conn: Connection) -> None:
        timeout = self.hub.settings.live_query_send_timeout_seconds
        while True:
            data = await conn.outbox.get()
            if data is None:
                return
            try:
                await asyncio.wait_for(websocket.send_text(data.decode()), timeout)
            except TimeoutError:
                log.info("live query: client %s stalled; closing", conn.client_id)
                conn.close_code = 1013
                return
            except Exception:
                return  # the peer is gone; the reader sees the disconnect
