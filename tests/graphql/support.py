"""A small GraphQL-over-HTTP client for tests, and a live server whose app (and engine) the
test can reach, to count SQL statements."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa
from starlette.applications import Starlette

from tests import support
from tests.support import LiveServer


def origin(live: LiveServer) -> str:
    """http://host:port (the live server's URL carries the mount path)."""
    return live.url.removesuffix(live.settings.mount_path)


@dataclass
class GraphQLClient:
    live: LiveServer

    def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        master: bool = False,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        hdrs = {"X-Parse-Application-Id": self.live.app_id}
        if token:
            hdrs["X-Parse-Session-Token"] = token
        if master:
            hdrs["X-Parse-Master-Key"] = self.live.master_key
        hdrs.update(headers or {})
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        return httpx.post(origin(self.live) + "/graphql", json=body, headers=hdrs, timeout=60)

    def data(self, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
        response = self.post(query, variables, **kw)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        return body["data"]


def error_code(response: httpx.Response) -> int | None:
    errors = response.json().get("errors")
    return errors[0].get("extensions", {}).get("code") if errors else None


@contextmanager
def live_app(settings: Any, backend: str) -> Iterator[tuple[LiveServer, Starlette]]:
    """``tests.support.live_server``, also handing back the app it built."""
    built: list[Starlette] = []
    original = support.create_app

    def capture(s: Any) -> Starlette:
        app = original(s)
        built.append(app)
        return app

    support.create_app = capture  # type: ignore[assignment]
    try:
        with support.live_server(settings, backend) as live:
            support.create_app = original  # type: ignore[assignment]
            yield live, built[0]
    finally:
        support.create_app = original  # type: ignore[assignment]


class StatementCounter:
    """Counts SQL statements the server's engine sends (any thread)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.count = 0
        self._lock = threading.Lock()
        sa.event.listen(engine, "before_cursor_execute", self._on_execute)
        self.engine = engine

    def _on_execute(self, *_args: Any) -> None:
        with self._lock:
            self.count += 1

    def close(self) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._on_execute)
