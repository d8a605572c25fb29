"""One record per HTTP request: timing, request id, route template, status, user and role.

A pure ASGI middleware (outermost) opens a :class:`RequestFacts` for each HTTP request and
keeps it in a context variable; code that learns something about the request (the REST
dispatcher its route template, ``build_request`` its caller) writes it there. When the response
is done the facts become one log line (``mindharbor.request``) and the request metrics.

Nothing from the URL is kept but the route *template* (``/parse/classes/{className}/{objectId}``):
never the query string, never an id, a name or a search term (they can be PHI).
"""

from __future__ import annotations

import contextvars
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mindharbor.security.auth import Auth

log = logging.getLogger("mindharbor.request")


@dataclass
class RequestFacts:
    request_id: str
    method: str
    started: float
    route: str | None = None  # the Starlette route's template
    parse_route: str | None = None  # the REST dispatcher's template, under the mount path
    status: int = 0
    user_id: str | None = None
    role: str = "anonymous"

    def template(self, mount: str) -> str:
        if self.parse_route is not None:
            return mount + self.parse_route
        return self.route or "unmatched"


_current: contextvars.ContextVar[RequestFacts | None] = contextvars.ContextVar(
    "mindharbor_request", default=None
)


def current() -> RequestFacts | None:
    return _current.get()


def request_id() -> str:
    """This request's id (a fresh one outside a request)."""
    facts = _current.get()
    return facts.request_id if facts is not None else os.urandom(16).hex()


def note_route(template: str) -> None:
    """The REST route template that matched (``/classes/{className}``), mount path excluded."""
    facts = _current.get()
    if facts is not None and facts.parse_route is None:
        facts.parse_route = template


def role_of(auth: Auth) -> str:
    """One word for the caller, never a custom role's name (names of care teams and the like
    may say who a patient is)."""
    if auth.is_system:
        return "system"
    if auth.is_master:
        return "master"
    for role in ("admin", "compliance", "provider", "patient"):
        if role in auth.roles:
            return role
    return "user" if auth.user_id else "anonymous"


def note_auth(auth: Auth) -> None:
    facts = _current.get()
    if facts is not None:
        facts.user_id = auth.user_id
        facts.role = role_of(auth)


Observer = Callable[[RequestFacts, str, float], None]
LineSink = Callable[[dict[str, object]], None]
_line_sink: LineSink | None = None


def set_line_sink(sink: LineSink | None) -> None:
    """Where request lines go as plain dicts (``logs.write_off_loop``); without one they are
    ``logging`` records of ``mindharbor.request`` (tests, embedding)."""
    global _line_sink
    _line_sink = sink


class RequestObserver:
    """ASGI middleware: a request id (also answered as ``X-Request-Id``), then, once the
    response is complete, one log line and the ``observers`` (metrics) with the facts."""

    def __init__(self, app: ASGIApp, mount: str, observers: tuple[Observer, ...] = ()) -> None:
        self.app = app
        self.mount = mount.rstrip("/")
        self.observers = observers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        facts = RequestFacts(os.urandom(16).hex(), scope["method"], time.perf_counter())
        token = _current.set(facts)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                facts.status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", facts.request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except BaseException:
            facts.status = facts.status or 500
            raise
        finally:
            _current.reset(token)
            route = scope.get("route")
            facts.route = getattr(route, "path", None)
            self.finish(facts)

    def finish(self, facts: RequestFacts) -> None:
        seconds = time.perf_counter() - facts.started
        template = facts.template(self.mount)
        fields: dict[str, object] = {
            "requestId": facts.request_id,
            "method": facts.method,
            "route": template,
            "status": facts.status,
            "durationMs": round(seconds * 1000, 2),
            "userId": facts.user_id,
            "role": facts.role,
        }
        sink = _line_sink
        if sink is not None:
            now = datetime.now(UTC).isoformat(timespec="milliseconds")
            head = {"time": now, "level": "info", "logger": log.name, "message": "request"}
            sink(head | fields)
        else:
            log.info("request", extra=fields)
        for observe in self.observers:
            observe(facts, template, seconds)
