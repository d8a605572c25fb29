"""Decode an HTTP request into an ``ApiRequest``: credentials, method override, params, body.

Handles both forms the SDKs send: real headers and methods (REST clients, curl, most SDKs) and
the JS SDK's ``POST`` + ``text/plain`` JSON body carrying ``_method``, ``_ApplicationId``,
``_SessionToken`` and friends (parse-rest-reference.md §1).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import ClientDisconnect, Request

from mindharbor.errors import InvalidJSON, RequestTimeout, RequestTooLarge, Unauthorized
from mindharbor.observe import requests as observe
from mindharbor.security.auth import Auth
from mindharbor.settings import Settings

if TYPE_CHECKING:
    pass

SessionResolver = Callable[[str, "ApiRequest"], Awaitable[Auth]]
# Resolves a token inside a unit of work that is already open (``Store.unit_of_work(resolve=)``).

# JS SDK body keys that carry credentials or options rather than data.
_SDK_KEYS = {
    "_method",
    "_ApplicationId",
    "_JavaScriptKey",
    "_ClientKey",
    "_RESTAPIKey",
    "_MasterKey",
    "_SessionToken",
    "_InstallationId",
    "_ClientVersion",
    "_context",
    "_RevocableSession",
    "_ContentType",
}


@dataclass
class ApiRequest:
    """One logical Parse API call (a batch holds several)."""

    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)
    auth: Auth = field(default_factory=Auth.anonymous)
    request_id: str | None = None
    session_token: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None
    path_params: dict[str, str] = field(default_factory=dict)
    trace_id: str | None = None
    # A session token not resolved yet: the dispatcher resolves it inside the request's own
    # unit of work (``auth`` is anonymous until then). None once ``auth`` is the session's.

    def audit_meta(self) -> dict[str, Any]:
        """Request context for audit entries (never bodies or query values)."""
        return {"requestId": self.trace_id, "ip": self.client_ip, "userAgent": self.user_agent}


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) anything over ``limit`` without buffering it whole."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge(f"Request body too large (limit {limit} bytes).")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise RequestTooLarge(f"Request body too large (limit {limit} bytes).")
            chunks.append(chunk)
    except ClientDisconnect as exc:  # timed out (mindharbor/httpguard.py) or gone
        raise RequestTimeout() from exc
    return b"".join(chunks)


def decode_json_body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSON("Invalid JSON.") from exc
    if not isinstance(value, dict):
        raise InvalidJSON("The request body must be a JSON object.")
    return value


def _same(given: str | None, expected: str | None) -> bool:
    return bool(given and expected) and hmac.compare_digest(
        str(given).encode(), str(expected).encode()
    )


async def build_request(
    request: Request,
    path: str,
    settings: Settings,
    resolve_session: SessionResolver,
    trace_id: str | None = None,
) -> ApiRequest:
    """Authenticate and normalise one HTTP request to the Parse API (the session comes from
    the worker's identity cache when it can: no query)."""
    raw = await read_body(request, settings.max_body_bytes)
    body = decode_json_body(raw) if request.method in ("POST", "PUT", "DELETE") else {}
    headers = request.headers

    def cred(header: str, body_key: str) -> str | None:
        value = headers.get(header)
        if value is None:
            value = body.get(body_key)
        return value if isinstance(value, str) else None

    if not _same(cred("x-parse-application-id", "_ApplicationId"), settings.app_id):
        raise Unauthorized()
    method = request.method
    override = body.get("_method")
    if method == "POST" and isinstance(override, str):
        method = override.upper()
        if method not in ("GET", "PUT", "DELETE", "POST"):
            raise InvalidJSON(f"Unsupported _method: {override}")
    api = ApiRequest(
        method=method,
        path=path,
        request_id=headers.get("x-parse-request-id"),
        client_ip=request.client.host if request.client else None,
        user_agent=headers.get("user-agent"),
        trace_id=trace_id,
    )
    master_key = cred("x-parse-master-key", "_MasterKey")
    if master_key is not None:
        if not _same(master_key, settings.master_key):
            raise Unauthorized()
        api.auth = Auth.master()
    else:
        _check_client_key(headers, body, settings)
    installation = cred("x-parse-installation-id", "_InstallationId")
    data = {k: v for k, v in body.items() if k not in _SDK_KEYS}
    if method == "GET" or method == "DELETE":
        # Query parameters arrive in the URL (header form) or in the body (JS SDK form).
        api.params = {**dict(request.query_params), **data}
    else:
        api.params = dict(request.query_params)
        api.body = data
    token = cred("x-parse-session-token", "_SessionToken")
    if token is not None and not api.auth.is_master:
        api.session_token = token
        api.auth = await resolve_session(token, api)
    if installation:
        api.auth = replace(api.auth, installation_id=installation)
    observe.note_auth(api.auth)
    return api


def _check_client_key(headers: Any, body: dict[str, Any], settings: Settings) -> None:
    configured = [
        k for k in (settings.rest_api_key, settings.javascript_key, settings.client_key) if k
    ]
    if not configured:
        return
    given = [
        headers.get("x-parse-rest-api-key"),
        headers.get("x-parse-javascript-key"),
        headers.get("x-parse-client-key"),
        headers.get("x-parse-windows-key"),
        body.get("_JavaScriptKey"),
        body.get("_ClientKey"),
        body.get("_RESTAPIKey"),
    ]
    if not any(_same(g, k) for g in given if isinstance(g, str) for k in configured):
        raise Unauthorized()
