"""LiveQuery: the Parse LiveQuery protocol over WebSocket, on the server's own port.

``Hub`` holds subscriptions and fans committed changes out to them (in-process, or through Redis
across workers); ``routes`` gives the app its WebSocket route at the mount path (``ws://host:port
/parse``, where the Parse SDKs connect by default). The app owns the hub's lifetime:
``await hub.start()`` in its lifespan, ``await hub.stop()`` on shutdown.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, WebSocketRoute

from mindharbor.api.live_query.hub import Hub
from mindharbor.api.live_query.server import LiveQueryEndpoint
from mindharbor.settings import Settings

__all__ = ["Hub", "LiveQueryEndpoint", "routes"]


def routes(hub: Hub, settings: Settings) -> list[BaseRoute]:
    """The WebSocket route(s): ``live_query_path`` if set, else the REST mount path."""
    path = (settings.live_query_path or settings.mount_path).rstrip("/") or "/"
    endpoint = LiveQueryEndpoint(hub).serve
    paths = [path] if path == "/" else [path, path + "/"]
    return [WebSocketRoute(p, endpoint) for p in paths]
