"""Signed, expiring file URLs.

A file URL is a bearer credential: the Parse SDKs (and ``<img src>``) fetch it with a plain GET
and no session, so the URL itself must prove that the server issued it, recently, to someone
who could read an object referencing the file. It carries::

    {server}/files/{appId}/{name}?expires={unix seconds}&by={userId}&sess={sessionId}&sig={HMAC}

The HMAC covers the app id, the file name, the expiry, ``by`` (the user the URL was minted for,
recorded as the actor of the download's audit entry) and ``sess`` (the session that read the
object). Changing any of them invalidates the signature; verification is constant-time. A URL
minted for a session is that session's alone: the download must present the same session's
token (``X-Parse-Session-Token``), so a link forwarded, logged or leaked is useless to anyone
else, anonymous or signed in, and dies with a logout or revocation (``files/service.py``).

The signing key is derived from the files KEK with HKDF under its own label, so it is never
the same bytes as an encryption key.

URLs are minted only at serialisation time by ``Repository.encode`` (so only for objects the
caller could read) and for the uploader in the upload reply; the short default lifetime (five
minutes) bounds what a leaked link exposes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_SIGNING_LABEL = b"mindharbor/file-url-signing/v1"
_MAX_SIG_CHARS = 64


def derive_signing_key(kek: bytes) -> bytes:
    """A URL-signing key independent of the encryption use of ``kek``."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SIGNING_LABEL).derive(kek)


class UrlSigner:
    """Mints and checks signed file URLs.

    Parameters:
        key: the HMAC key (see ``derive_signing_key``).
        app_id: the Parse application id, part of both the path and the signature.
        base_url: the public server URL including the mount path, e.g. ``https://h/parse``.
        ttl_seconds: how long a minted URL stays valid.
        clock: seconds since the epoch (injectable for tests).
    """

    def __init__(
        self,
        key: bytes,
        app_id: str,
        base_url: str,
        ttl_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = key
        self.app_id = app_id
        self.base_url = base_url.rstrip("/")
        self.ttl = ttl_seconds
        self._clock = clock

    def _mac(self, name: str, expires: int, by: str, session: str) -> str:
        parts = [b"v2", self.app_id.encode(), name.encode(), str(expires).encode(), by.encode()]
        message = b"\x00".join([*parts, session.encode()])
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def url(
        self,
        name: str,
        minted_for: str | None = None,
        ttl: int | None = None,
        session: str | None = None,
    ) -> str:
        """A URL for ``name`` valid for ``ttl`` seconds (default: the signer's) from now, bound
        to ``session`` when one is given."""
        expires = int(self._clock()) + (self.ttl if ttl is None else ttl)
        by = minted_for or ""
        query = f"expires={expires}"
        if by:
            query += f"&by={quote(by, safe='')}"
        if session:
            query += f"&sess={quote(session, safe='')}"
        query += f"&sig={self._mac(name, expires, by, session or '')}"
        return f"{self.base_url}/files/{quote(self.app_id, safe='')}/{quote(name, safe='')}?{query}"

    def verify(
        self,
        name: str,
        expires: str | None,
        by: str | None,
        sig: str | None,
        session: str | None = None,
    ) -> bool:
        """True only for an unexpired URL this server signed. Never says *why* not."""
        if not expires or not sig or len(sig) > _MAX_SIG_CHARS or not expires.isdigit():
            return False
        if len(expires) > 12:
            return False
        expected = self._mac(name, int(expires), by or "", session or "")
        # Compare first, then check the clock: the work done does not depend on which failed.
        authentic = hmac.compare_digest(expected.encode(), sig.encode("utf-8", "replace"))
        return authentic and int(expires) >= self._clock()

    def sign_refs(self, value: Any, minted_for: str | None, session: str | None = None) -> Any:
        """``value`` with every ``{"__type": "File", "name"}`` inside it given a fresh signed
        ``url`` (new dicts and lists; the input is not modified).

        Called on objects that were just read through the access policy, so a URL is only
        ever issued to a caller who may read the object that references the file. Any stale
        or client-supplied ``url`` stored inside Arrays and Objects is replaced."""
        if isinstance(value, dict):
            if value.get("__type") == "File" and isinstance(value.get("name"), str):
                return {**value, "url": self.url(value["name"], minted_for, session=session)}
            return {k: self.sign_refs(v, minted_for, session) for k, v in value.items()}
        if isinstance(value, list):
            return [self.sign_refs(v, minted_for, session) for v in value]
        return value
