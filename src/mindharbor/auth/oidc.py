"""Single sign-on: OpenID Connect id_token login through Parse's ``authData`` form.

A client logs in with ``{"authData": {"oidc": {"id_token": "...", "nonce": "..."}}}``. The
id_token is a bearer credential minted by the identity provider (IdP); everything that makes it
trustworthy is checked here, with joserfc doing the cryptography:

* The signature must verify against the IdP's published JWKS, with an asymmetric algorithm
  from a fixed allow-list (RS256, ES256, PS256). ``none`` and HS* are never accepted: ``none``
  is unsigned, and HS* with a public key as the "secret" lets anyone who can read the JWKS
  forge tokens (the classic algorithm-confusion attack).
* ``iss`` must be our configured issuer and ``aud`` must name our client, or a token issued to
  another application (or by another IdP) could be replayed here.
* ``exp``/``iat``/``nbf`` bound the token's lifetime (with a small leeway for clock skew),
  ``sub`` must be present, and a client-supplied ``nonce`` must match the token's, which ties
  the token to the login the client started.
* Every failure raises the same ``ObjectNotFound("OIDC auth is invalid for this user.")``:
  telling a caller *which* check failed helps an attacker tune a forgery. The reason is logged
  at debug level, never the token itself.
* The JWKS is cached; an unknown ``kid`` (key rotation) triggers at most one refetch per
  validation, and such forced refetches are throttled so junk tokens cannot turn this server
  into an amplifier against the IdP. An unreachable or malformed JWKS fails closed.

Deployers can add their own providers in Python: each module named in
``settings.auth_provider_modules`` exposes ``providers(settings) -> dict[str, AuthProvider]``.
"""

from __future__ import annotations

import asyncio
import hmac
import importlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from mindharbor import errors
from mindharbor.settings import Settings

logger = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = ("RS256", "ES256", "PS256")
INVALID_MESSAGE = "OIDC auth is invalid for this user."
MAX_TOKEN_CHARS = 16 * 1024
MAX_JWKS_BYTES = 512 * 1024
FORCED_REFRESH_COOLDOWN_SECONDS = 10.0


@dataclass(frozen=True)
class ExternalIdentity:
    """Who the provider vouches for: ``(provider, subject)`` is the stable account key."""

    provider: str
    subject: str
    email: str | None
    email_verified: bool


@runtime_checkable
class AuthProvider(Protocol):
    """A Parse ``authData`` provider: validates its entry or raises a ``ParseError``."""

    name: str

    async def validate(self, auth_data: dict[str, Any]) -> ExternalIdentity: ...


class _Rejected(Exception):
    """Internal: why a token was refused (logged at debug, never shown to the client)."""


def _invalid() -> errors.ObjectNotFound:
    return errors.ObjectNotFound(INVALID_MESSAGE)


class OidcProvider:
    """Validates id_tokens from one OpenID Connect issuer for one client (audience)."""

    name = "oidc"

    def __init__(
        self,
        issuer: str,
        audience: str,
        jwks_url: str,
        *,
        leeway_seconds: int = 60,
        jwks_cache_seconds: int = 300,
        http_timeout: float = 5.0,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.jwks_url = jwks_url
        self.leeway_seconds = leeway_seconds
        self.jwks_cache_seconds = jwks_cache_seconds
        self.http_timeout = http_timeout
        self._http: httpx.AsyncClient | None = None
        self._keys: KeySet | None = None
        self._fetched_at = 0.0
        self._forced_at: float | None = None
        self._lock = asyncio.Lock()

    async def validate(self, auth_data: dict[str, Any]) -> ExternalIdentity:
        try:
            return await self._validate(auth_data)
        except _Rejected as reason:
            logger.debug("OIDC id_token rejected: %s", reason)
        except JoseError as exc:
            logger.debug("OIDC id_token rejected by joserfc: %s", type(exc).__name__)
        except (ValueError, TypeError, KeyError) as exc:  # malformed base64/JSON in the token
            logger.debug("OIDC id_token malformed: %s", type(exc).__name__)
        raise _invalid()

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _validate(self, auth_data: dict[str, Any]) -> ExternalIdentity:
        token = _id_token(auth_data)
        header = jws.extract_compact(token.encode("ascii")).headers()
        if header.get("alg") not in ALLOWED_ALGORITHMS:
            raise _Rejected("algorithm not allowed")
        keys = await self._keys_for(header.get("kid"))
        decoded = jwt.decode(token, keys, algorithms=list(ALLOWED_ALGORITHMS))
        claims = decoded.claims
        self._registry().validate(claims)
        _check_binding(claims, auth_data, self.audience)
        return _identity(self.name, claims)

    def _registry(self) -> jwt.JWTClaimsRegistry:
        essential: jwt.ClaimsOption = {"essential": True}
        return jwt.JWTClaimsRegistry(
            leeway=self.leeway_seconds,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            exp=essential,
            iat=essential,
            sub=essential,
        )

    async def _keys_for(self, kid: object) -> KeySet:
        """The cached key set, refetched once when it lacks the token's ``kid``."""
        keys = await self._cached_keys()
        if isinstance(kid, str) and not _has_kid(keys, kid):
            keys = await self._refresh_for_unknown_kid(keys)
        return keys

    async def _cached_keys(self) -> KeySet:
        async with self._lock:
            fresh = time.monotonic() - self._fetched_at < self.jwks_cache_seconds
            if self._keys is not None and fresh:
                return self._keys
            return await self._fetch()

    async def _refresh_for_unknown_kid(self, seen: KeySet) -> KeySet:
        async with self._lock:
            if self._keys is not None and self._keys is not seen:
                return self._keys  # another request refreshed meanwhile
            now = time.monotonic()
            if (
                self._forced_at is not None
                and now - self._forced_at < FORCED_REFRESH_COOLDOWN_SECONDS
            ):
                raise _Rejected("unknown kid; JWKS refetch throttled")
            self._forced_at = now
            return await self._fetch()

    async def _fetch(self) -> KeySet:
        """Download and import the JWKS; any failure leaves no keys (fail closed)."""
        self._keys = None
        try:
            document = await self._download()
            signing = [k for k in document["keys"] if k.get("use", "sig") == "sig"]
            keys = KeySet.import_key_set({"keys": signing})
        except (httpx.HTTPError, JoseError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise _Rejected(f"JWKS unavailable or invalid ({type(exc).__name__})") from exc
        self._keys, self._fetched_at = keys, time.monotonic()
        return keys

    async def _download(self) -> dict[str, Any]:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.http_timeout, follow_redirects=False)
        async with self._http.stream("GET", self.jwks_url) as response:
            response.raise_for_status()
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError("JWKS document too large")
        document = json.loads(bytes(body))
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("JWKS document has no key list")
        return document


def _id_token(auth_data: object) -> str:
    if not isinstance(auth_data, dict):
        raise _Rejected("authData is not an object")
    token = auth_data.get("id_token")
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise _Rejected("id_token missing or not a string")
    if not token.isascii():
        raise _Rejected("id_token is not ASCII")
    return token


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys)


def _check_binding(claims: Mapping[str, Any], auth_data: Mapping[str, Any], audience: str) -> None:
    """The token was issued to us (``azp``), and the client's ``nonce``/``id`` are the token's."""
    if "azp" in claims and claims["azp"] != audience:  # OIDC Core 3.1.3.7 step 5
        raise _Rejected("azp is not our client")
    if "nonce" in auth_data and auth_data["nonce"] is not None:
        expected, actual = auth_data["nonce"], claims.get("nonce")
        if not (isinstance(expected, str) and isinstance(actual, str)):
            raise _Rejected("nonce missing")
        if not hmac.compare_digest(expected.encode(), actual.encode()):
            raise _Rejected("nonce mismatch")
    if "id" in auth_data and auth_data["id"] is not None and auth_data["id"] != claims["sub"]:
        raise _Rejected("id does not match sub")


def _identity(provider: str, claims: Mapping[str, Any]) -> ExternalIdentity:
    email = claims.get("email")
    verified = claims.get("email_verified")
    return ExternalIdentity(
        provider=provider,
        subject=claims["sub"],
        email=email if isinstance(email, str) and email else None,
        email_verified=verified is True or (isinstance(verified, str) and verified == "true"),
    )


def build_providers(settings: Settings) -> dict[str, AuthProvider]:
    """The configured ``authData`` providers by name (built-in OIDC plus deployer modules)."""
    providers: dict[str, AuthProvider] = {}
    oidc = _oidc_from_settings(settings)
    if oidc is not None:
        providers[oidc.name] = oidc
    for module_name in _module_names(settings.auth_provider_modules):
        providers.update(_load_module_providers(module_name, settings))
    return providers


def _oidc_from_settings(settings: Settings) -> OidcProvider | None:
    values = (settings.oidc_issuer, settings.oidc_audience, settings.oidc_jwks_url)
    if not any(values):
        return None
    issuer, audience, jwks_url = values
    if not (issuer and audience and jwks_url):  # half-configured SSO is a deploy mistake
        raise ValueError(
            "MINDHARBOR_OIDC_ISSUER, MINDHARBOR_OIDC_AUDIENCE and MINDHARBOR_OIDC_JWKS_URL "
            "must be set together"
        )
    return OidcProvider(issuer, audience, jwks_url)


def _module_names(spec: str) -> list[str]:
    return [name.strip() for name in spec.split(",") if name.strip()]


def _load_module_providers(module_name: str, settings: Settings) -> dict[str, AuthProvider]:
    module = importlib.import_module(module_name)
    factory = getattr(module, "providers", None)
    if not callable(factory):
        raise TypeError(f"auth provider module {module_name!r} has no providers(settings)")
    loaded = factory(settings)
    if not isinstance(loaded, dict):
        raise TypeError(f"{module_name}.providers(settings) must return a dict")
    for name, provider in loaded.items():
        if not isinstance(name, str) or not isinstance(provider, AuthProvider):
            raise TypeError(f"{module_name}.providers(settings) returned an invalid provider")
    return loaded
