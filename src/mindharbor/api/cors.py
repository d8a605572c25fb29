"""CORS as a pure ASGI wrapper: every header it adds is computed once, at startup.

Behaves like Starlette's ``CORSMiddleware(allow_origins=["*"], allow_headers=["*"],
allow_methods=..., expose_headers=...)`` without credentials, which it replaces on the hot path:

* a preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) is answered
  here: 200 ``OK``, or 400 ``Disallowed CORS method`` / ``private-network``; the requested
  headers are mirrored back;
* every other response gets ``Vary: Origin`` (appended to any ``Vary`` the app set),
  ``Access-Control-Allow-Origin: *`` and ``Access-Control-Expose-Headers``, with or without an
  ``Origin`` in the request: Parse Server sends them always, and the Parse JS SDK reads a
  response header (``X-Parse-Job-Status-Id`` for ``Parse.Cloud.startJob``) only when the
  expose list names it, in Node as in a browser.

The request headers are scanned once as raw bytes; no ``Headers``/``MutableHeaders`` objects are
built per request.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_ORIGIN = b"origin"
_REQUEST_METHOD = b"access-control-request-method"
_REQUEST_HEADERS = b"access-control-request-headers"
_PRIVATE_NETWORK = b"access-control-request-private-network"
_ALLOW_ORIGIN = b"access-control-allow-origin"
_EXPOSE = b"access-control-expose-headers"
_VARY = b"vary"
_PREFLIGHT_VARY = (
    b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers, "
    b"Access-Control-Request-Private-Network"
)


class Cors:
    """Pure ASGI CORS for a public API (any origin, no credentials)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        allow_methods: Iterable[str],
        expose_headers: Iterable[str],
        max_age: int = 600,
    ) -> None:
        self.app = app
        self.allow_methods = frozenset(allow_methods)
        self._with_origin: tuple[tuple[bytes, bytes], ...] = (
            (_ALLOW_ORIGIN, b"*"),
            (_EXPOSE, ", ".join(expose_headers).encode("latin-1")),
        )
        # In the order Starlette's CORSMiddleware declared them (kept for identical responses).
        methods = ", ".join(allow_methods).encode("latin-1")
        self._preflight: tuple[tuple[bytes, bytes], ...] = (
            (_VARY, _PREFLIGHT_VARY),
            (_ALLOW_ORIGIN, b"*"),
            (b"access-control-allow-methods", methods),
            (b"access-control-max-age", str(max_age).encode("latin-1")),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = request_method = requested_headers = private_network = None
        for key, value in scope["headers"]:
            if key == _ORIGIN:
                origin = value
            elif key == _REQUEST_METHOD:
                request_method = value
            elif key == _REQUEST_HEADERS:
                requested_headers = value
            elif key == _PRIVATE_NETWORK:
                private_network = value
        if origin is not None and request_method is not None and scope["method"] == "OPTIONS":
            await self._answer_preflight(
                send, request_method, requested_headers, private_network is not None
            )
            return
        extra = self._with_origin

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _with_cors(message.get("headers", ()), extra)
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _answer_preflight(
        self,
        send: Send,
        request_method: bytes,
        requested_headers: bytes | None,
        private_network: bool,
    ) -> None:
        headers = list(self._preflight)
        if requested_headers is not None:
            headers.append((b"access-control-allow-headers", requested_headers))
        failures = []
        if request_method.decode("latin-1") not in self.allow_methods:
            failures.append("method")
        if private_network:
            failures.append("private-network")
        if failures:
            status, body = 400, ("Disallowed CORS " + ", ".join(failures)).encode()
        else:
            status, body = 200, b"OK"
        headers.append((b"content-length", str(len(body)).encode("latin-1")))
        headers.append((b"content-type", b"text/plain; charset=utf-8"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _with_cors(
    headers: Iterable[tuple[bytes, bytes]], extra: tuple[tuple[bytes, bytes], ...]
) -> list[tuple[bytes, bytes]]:
    """The response headers plus the CORS ones: ``extra`` replaces same-named headers, and
    ``Vary`` becomes one header listing the app's values and ``Origin``."""
    out: list[tuple[bytes, bytes]] = []
    vary: list[bytes] = []
    for key, value in headers:
        lowered = key.lower()
        if lowered == _VARY:
            vary.append(value)
        elif not extra or (lowered != _ALLOW_ORIGIN and lowered != _EXPOSE):
            out.append((key, value))
    out.extend(extra)
    vary.append(b"Origin")
    out.append((_VARY, b", ".join(vary)))
    return out
