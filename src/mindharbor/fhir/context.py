"""Who is calling the FHIR face, and the unit of work a FHIR request runs in.

Credentials, in the order they are looked for:

* ``X-Parse-Master-Key`` (the master key; everything, as on the REST face);
* ``Authorization: Bearer <session token>`` — the Parse session token a login returned, which is
  what FHIR clients (fhirclient, fhirpy, SMART apps) send;
* ``X-Parse-Session-Token`` (the Parse SDKs' header).

``X-Parse-Application-Id`` is optional here (FHIR clients do not send it) but must match when
present. The session is resolved from the worker's identity cache, exactly as the REST
dispatcher does, so the Repository the handler gets carries the caller's ``Auth``: the access
policy's SQL filter and the read audit apply to everything the handler reads.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from mindharbor.auth import sessions
from mindharbor.fhir.outcome import forbidden, login_required
from mindharbor.observe import requests as observe
from mindharbor.security.auth import Auth
from mindharbor.storage.repository import Repository

if TYPE_CHECKING:
    from mindharbor.app import MindHarbor

FHIR_PATH = "/fhir/R4"


def _same(given: str | None, expected: str | None) -> bool:
    return bool(given and expected) and hmac.compare_digest(
        str(given).encode(), str(expected).encode()
    )


@dataclass
class Call:
    """One FHIR request: its base URL and the request context its audit entries carry."""

    request: Request
    base: str
    master: bool
    token: str | None
    meta: dict[str, Any]

    @property
    def authenticated(self) -> bool:
        return self.master or self.token is not None


def base_url(server: MindHarbor, request: Request) -> str:
    public = server.settings.public_url
    root = public.rstrip("/") if public else str(request.base_url).rstrip("/")
    return root + FHIR_PATH


def read_call(server: MindHarbor, request: Request, interaction: str) -> Call:
    settings = server.settings
    headers = request.headers
    app_id = headers.get("x-parse-application-id")
    if app_id is not None and not _same(app_id, settings.app_id):
        raise login_required("Unknown application id.")
    master_key = headers.get("x-parse-master-key")
    master = False
    token = None
    if master_key is not None:
        if not _same(master_key, settings.master_key):
            raise login_required("Invalid credentials.")
        master = True
    else:
        authorization = headers.get("authorization", "")
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            token = value.strip()
        elif headers.get("x-parse-session-token"):
            token = headers["x-parse-session-token"]
    meta = {
        "requestId": uuid.uuid4().hex,
        "ip": request.client.host if request.client else None,
        "userAgent": headers.get("user-agent"),
        "face": "fhir",
        "interaction": interaction,
    }
    return Call(request, base_url(server, request), master, token, meta)


@asynccontextmanager
async def unit_of_work(
    server: MindHarbor, call: Call, *, writes: bool = False
) -> AsyncIterator[Repository]:
    """The caller's Repository: read-only by default (no transaction; what it reads is
    group-committed to the audit log before the caller gets it), or one transaction that
    commits with its audit entries on exit (``writes``). The session comes from the worker's
    identity cache, as for REST."""
    if call.master:
        auth = Auth.master()
    elif call.token is not None:
        auth = await sessions.authenticate(server.store, call.token)
    else:
        raise login_required()
    observe.note_auth(auth)
    if auth.restricted:
        raise forbidden("Multi-factor enrolment is required before using this API.")
    context = server.store.unit_of_work(auth) if writes else server.store.read_only(auth)
    async with context as repo:
        repo.meta = {k: v for k, v in call.meta.items() if v is not None}
        yield repo
