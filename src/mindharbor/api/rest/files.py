"""``/files``: Parse-compatible upload, signed download and master-key delete.

These endpoints sit outside the JSON dispatcher because a file body must never be buffered
whole: a raw upload is streamed from the socket straight into the encryptor, with the size
limit enforced as bytes arrive, and a download is streamed out of the decryptor.

* ``POST /files/{name}``: raw bytes with their ``Content-Type`` and credentials in headers, or
  the JS SDK's JSON form (``{base64, _ContentType, _ApplicationId, ...}`` as ``text/plain``),
  recognised as Parse Server does: by the absence of an ``X-Parse-Application-Id`` header.
  Uploads without a session are refused (130), as with Parse Server's default ``fileUpload``
  options, unless ``MINDHARBOR_FILE_UPLOAD_PUBLIC`` (``security/profile.py``).
* ``GET /files/{appId}/{name}?expires=..&by=..&sess=..&sig=..``: the signed URL is the
  credential, and a URL minted for a session (``sess``) also needs that session's token in
  ``X-Parse-Session-Token``: a link someone else holds downloads nothing. Every refusal is
  one indistinguishable 403. The body is sent as an attachment with ``nosniff`` and a
  sandboxing CSP, so even an allowed type can never render as active content in the app's
  origin.
* ``DELETE /files/{name}``: master key only.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any, Protocol

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Message

from mindharbor.api.rest.request import build_request, decode_json_body, read_body
from mindharbor.errors import (
    FileDeleteError,
    FileSaveError,
    InvalidJSON,
    ParseError,
    Unauthorized,
    error_body,
)
from mindharbor.files.blobstore import one_piece
from mindharbor.files.crypto import FileIntegrityError
from mindharbor.files.service import FileAccessDenied, FileService, file_id
from mindharbor.security.auth import Auth
from mindharbor.security.profile import check_file_upload
from mindharbor.settings import Settings

log = logging.getLogger(__name__)

# Credential keys of the JS SDK's JSON form, replayed to ``build_request`` without the file.
_CREDENTIAL_KEYS = (
    "_ApplicationId",
    "_JavaScriptKey",
    "_ClientKey",
    "_RESTAPIKey",
    "_MasterKey",
    "_SessionToken",
    "_InstallationId",
    "_ClientVersion",
)
_JSON_FORM_SLACK = 64 * 1024  # fileData, credentials and JSON punctuation around the base64
_DOWNLOAD_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "private, no-store, max-age=0",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-site",
}
_DENIED = orjson.dumps({"error": "unauthorized"})


class FilesHost(Protocol):
    """What these endpoints need from the server object (``app.state.server``)."""

    settings: Settings
    files: FileService

    async def resolve_session(self, token: str, api: Any) -> Auth: ...


def _host(request: Request) -> FilesHost:
    host: FilesHost = request.app.state.server
    return host


def _json(body: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        headers=headers,
        media_type="application/json; charset=utf-8",
    )


def _replay(request: Request, body: bytes) -> Request:
    """The same request with ``body`` in place of its stream (which is left unread)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(request.scope, receive)


async def upload(request: Request) -> Response:
    """``POST /files/{name}``: 201 ``{name, url}`` + ``Location``."""
    host = _host(request)
    settings = host.settings
    name = request.path_params.get("name")
    trace = uuid.uuid4().hex
    try:
        source: Any
        length: int | None
        if request.headers.get("x-parse-application-id") is None:
            limit = settings.max_file_bytes * 4 // 3 + _JSON_FORM_SLACK
            try:
                body = decode_json_body(await read_body(request, limit))
            except InvalidJSON as exc:
                raise Unauthorized() from exc  # neither header nor JSON credentials, as Parse
            creds = {k: body[k] for k in _CREDENTIAL_KEYS if k in body}
            api = await build_request(
                _replay(request, orjson.dumps(creds)),
                "/files",
                settings,
                host.resolve_session,
                trace,
            )
            data = _decode_base64(body.get("base64"))
            declared = body.get("_ContentType")
            declared = declared if isinstance(declared, str) else None
            source, length = one_piece(data), len(data)
        else:
            api = await build_request(
                _replay(request, b""), "/files", settings, host.resolve_session, trace
            )
            declared = request.headers.get("content-type")
            given = request.headers.get("content-length", "")
            source, length = request.stream(), int(given) if given.isdigit() else None
        auth = api.auth
        check_file_upload(settings, auth, anonymous=await _is_anonymous(host, auth))
        stored = await host.files.upload(
            name, declared, source, owner=auth.user_id, declared_length=length
        )
        url = host.files.url_for(stored.name, auth)
        return _json({"name": stored.name, "url": url}, 201, {"Location": url})
    except ParseError as exc:
        status, error = error_body(exc)
        return _json(error, status)
    except Exception:
        log.exception("file upload failed (request %s)", trace)
        status, error = error_body(RuntimeError())
        return _json(error, status, {"X-Request-Id": trace})


async def _is_anonymous(host: FilesHost, auth: Auth) -> bool:
    """Whether the caller is an anonymous user (``authData.anonymous``): looked up only when
    the server has anonymous users at all."""
    store = host.files.store
    if not host.settings.anonymous_users or auth.user_id is None or store is None:
        return False
    async with store.unit_of_work(Auth.system()) as repo:
        row = await repo.raw_row("_User", "objectId", auth.user_id)
    return "anonymous" in ((row or {}).get("authData") or {})


def _decode_base64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise FileSaveError("Invalid file upload.")
    payload = value.split(",", 1)[1] if value.startswith("data:") and "," in value else value
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FileSaveError("Invalid file upload.") from exc


def _master(request: Request, settings: Settings) -> bool:
    given = request.headers.get("x-parse-master-key")
    expected = settings.master_key
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


async def download(request: Request) -> Response:
    """``GET /files/{appId}/{name}``: the decrypted bytes, or the one generic 403."""
    host = _host(request)
    settings = host.settings
    name = str(request.path_params["name"])
    query = request.query_params
    trace = uuid.uuid4().hex
    denied = Response(_DENIED, status_code=403, media_type="application/json; charset=utf-8")
    if not hmac.compare_digest(
        str(request.path_params["app_id"]).encode(), settings.app_id.encode()
    ):
        return denied
    meta = {
        "requestId": trace,
        "ip": request.client.host if request.client else None,
        "userAgent": request.headers.get("user-agent"),
    }
    try:
        opened = await host.files.open_download(
            name,
            expires=query.get("expires"),
            by=query.get("by"),
            sig=query.get("sig"),
            master=_master(request, settings),
            meta=meta,
            session=query.get("sess"),
            reader=await _reader(host, request) if query.get("sess") else None,
        )
    except FileAccessDenied:
        return denied
    except FileIntegrityError:
        # Not the caller's fault and not something to explain to them; loud in the log.
        log.error("file %s failed authentication on download (request %s)", file_id(name), trace)
        status, error = error_body(RuntimeError())
        return _json(error, status, {"X-Request-Id": trace})
    except Exception:
        log.exception("file download failed (request %s)", trace)
        status, error = error_body(RuntimeError())
        return _json(error, status, {"X-Request-Id": trace})
    headers = {
        **_DOWNLOAD_HEADERS,
        "Content-Length": str(opened.size),
        "Content-Disposition": f'attachment; filename="{opened.filename}"',
    }
    return StreamingResponse(
        _guarded(opened.body, name, trace), media_type=opened.content_type, headers=headers
    )


async def _reader(host: FilesHost, request: Request) -> Auth | None:
    """The session presenting a session-bound URL, if its token is valid (None otherwise: the
    download is then refused with the same 403 as any other)."""
    token = request.headers.get("x-parse-session-token")
    if not token:
        # FHIR apps follow an attachment URL with the bearer token they call the FHIR face with.
        scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
        token = bearer.strip() if scheme.lower() == "bearer" else ""
    if not token:
        return None
    try:
        return await host.resolve_session(token, None)
    except ParseError:
        return None


async def _guarded(body: AsyncIterator[bytes], name: str, trace: str) -> AsyncIterator[bytes]:
    """Re-raise a mid-stream integrity failure (aborting the response, so the client sees a
    short body against ``Content-Length``), after logging it without the file's name."""
    try:
        async for piece in body:
            yield piece
    except FileIntegrityError:
        log.error("file %s failed authentication mid-download (request %s)", file_id(name), trace)
        raise


async def delete(request: Request) -> Response:
    """``DELETE /files/{name}`` (master key): 200 ``{}``; 153 for a file that is not stored,
    as Parse's files adapters answer."""
    host = _host(request)
    trace = uuid.uuid4().hex
    try:
        api = await build_request(request, "/files", host.settings, host.resolve_session, trace)
        if not api.auth.is_master:
            raise Unauthorized("unauthorized: master key is required")
        if not await host.files.delete(str(request.path_params["name"]), meta=api.audit_meta()):
            raise FileDeleteError()
        return _json({}, 200)
    except ParseError as exc:
        status, error = error_body(exc)
        return _json(error, status)
    except Exception:
        log.exception("file delete failed (request %s)", trace)
        status, error = error_body(RuntimeError())
        return _json(error, status, {"X-Request-Id": trace})
