"""OIDC id_token login against a JWKS served by a real local HTTP server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from mindharbor import errors
from mindharbor.auth.oidc import (
    AuthProvider,
    ExternalIdentity,
    OidcProvider,
    build_providers,
)
from mindharbor.settings import Settings
from tests.support import free_port

ISSUER = "https://idp.example.org"
AUDIENCE = "mindharbor-client"
MESSAGE = "OIDC auth is invalid for this user."

pytestmark = pytest.mark.anyio


@dataclass
class JwksServer:
    """Serves ``jwks`` at ``url``; ``hits`` counts the fetches."""

    url: str
    jwks: dict[str, Any] = field(default_factory=lambda: {"keys": []})
    hits: int = 0
    status: int = 200

    def publish(self, *keys: RSAKey | ECKey) -> None:
        self.jwks = {"keys": [k.as_dict(private=False) for k in keys]}


@contextmanager
def serve_jwks() -> Iterator[JwksServer]:
    """A real HTTP server on 127.0.0.1 publishing a JwksServer's keys (shared with SSO tests)."""
    port = free_port()
    state = JwksServer(f"http://127.0.0.1:{port}/.well-known/jwks.json")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits += 1
            body = json.dumps(state.jwks).encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    with serve_jwks() as state:
        yield state


@pytest.fixture
def signing_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "key-1", "use": "sig", "alg": "RS256"})


@pytest.fixture
async def provider(jwks_server: JwksServer, signing_key: RSAKey) -> AsyncIterator[OidcProvider]:
    jwks_server.publish(signing_key)
    oidc = OidcProvider(ISSUER, AUDIENCE, jwks_server.url, http_timeout=2)
    try:
        yield oidc
    finally:
        await oidc.aclose()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-123",
        "iat": now,
        "exp": now + 300,
        "email": "pat@example.org",
        "email_verified": True,
        "nonce": "n-0S6_WzA2Mj",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: RSAKey | ECKey, alg: str = "RS256", kid: str | None = None, **over: Any) -> str:
    header = {"alg": alg, "kid": kid or key.kid}
    return jwt.encode(header, claims(**over), key, algorithms=[alg])


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"


async def refused(provider: OidcProvider, auth_data: Any) -> None:
    with pytest.raises(errors.ObjectNotFound) as caught:
        await provider.validate(auth_data)
    assert caught.value.message == MESSAGE
    assert caught.value.code == 101


async def test_valid_token_gives_identity(provider: OidcProvider, signing_key: RSAKey) -> None:
    token = sign(signing_key)
    identity = await provider.validate({"id_token": token, "nonce": "n-0S6_WzA2Mj"})
    assert identity == ExternalIdentity("oidc", "user-123", "pat@example.org", True)
    assert isinstance(provider, AuthProvider)


async def test_email_verified_variants(provider: OidcProvider, signing_key: RSAKey) -> None:
    for claim, expected in [(True, True), ("true", True), (False, False), ("false", False)]:
        identity = await provider.validate({"id_token": sign(signing_key, email_verified=claim)})
        assert identity.email_verified is expected
    identity = await provider.validate(
        {"id_token": sign(signing_key, email=None, email_verified=None)}
    )
    assert (identity.email, identity.email_verified) == (None, False)


async def test_audience_list_and_id_match(provider: OidcProvider, signing_key: RSAKey) -> None:
    token = sign(signing_key, aud=["other-client", AUDIENCE], azp=AUDIENCE)
    identity = await provider.validate({"id_token": token, "id": "user-123"})
    assert identity.subject == "user-123"


async def test_es256_accepted(jwks_server: JwksServer, signing_key: RSAKey) -> None:
    ec_key = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
    jwks_server.publish(signing_key, ec_key)
    oidc = OidcProvider(ISSUER, AUDIENCE, jwks_server.url)
    try:
        identity = await oidc.validate({"id_token": sign(ec_key, "ES256")})
        assert identity.subject == "user-123"
    finally:
        await oidc.aclose()


async def test_expired_refused_beyond_leeway(provider: OidcProvider, signing_key: RSAKey) -> None:
    now = int(time.time())
    await refused(provider, {"id_token": sign(signing_key, iat=now - 900, exp=now - 120)})
    # within the 60 s leeway: accepted (clock skew)
    await provider.validate({"id_token": sign(signing_key, iat=now - 900, exp=now - 10)})


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "another-client"},
        {"aud": ["another-client", "third"]},
        {"iss": "https://evil.example.org"},
        {"sub": None},
        {"sub": ""},
        {"exp": None},
        {"iat": None},
        {"iat": int(time.time()) + 3600, "exp": int(time.time()) + 7200},
        {"nbf": int(time.time()) + 3600},
        {"azp": "another-client"},
        {"exp": "tomorrow"},
    ],
    ids=[
        "wrong-aud",
        "wrong-aud-list",
        "wrong-iss",
        "no-sub",
        "empty-sub",
        "no-exp",
        "no-iat",
        "iat-future",
        "nbf-future",
        "wrong-azp",
        "exp-not-number",
    ],
)
async def test_bad_claims_refused(
    provider: OidcProvider, signing_key: RSAKey, overrides: dict[str, Any]
) -> None:
    await refused(provider, {"id_token": sign(signing_key, **overrides)})


async def test_forged_signature_refused(provider: OidcProvider, signing_key: RSAKey) -> None:
    assert signing_key.kid is not None
    attacker = RSAKey.generate_key(2048, parameters={"kid": signing_key.kid})
    await refused(provider, {"id_token": sign(attacker)})
    genuine = sign(signing_key).split(".")
    tampered = unsigned({"alg": "RS256", "kid": "key-1"}, claims(sub="admin"))
    await refused(provider, {"id_token": f"{tampered}.{genuine[2]}"})


async def test_alg_none_refused(provider: OidcProvider) -> None:
    token = unsigned({"alg": "none", "kid": "key-1"}, claims()) + "."
    await refused(provider, {"id_token": token})
    await refused(provider, {"id_token": unsigned({"alg": "none"}, claims()) + "."})


async def test_hs256_with_public_key_as_secret_refused(
    provider: OidcProvider, signing_key: RSAKey
) -> None:
    """Algorithm confusion: HMAC keyed with the (public) RSA key must not verify."""
    for secret in [signing_key.as_pem(private=False), json.dumps(signing_key.as_dict()).encode()]:
        signing_input = unsigned({"alg": "HS256", "kid": "key-1"}, claims())
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        await refused(provider, {"id_token": f"{signing_input}.{b64(mac)}"})


async def test_nonce_mismatch_refused(provider: OidcProvider, signing_key: RSAKey) -> None:
    token = sign(signing_key)
    await refused(provider, {"id_token": token, "nonce": "another-nonce"})
    await refused(provider, {"id_token": sign(signing_key, nonce=None), "nonce": "n-0S6_WzA2Mj"})
    await refused(provider, {"id_token": token, "nonce": 12})
    await refused(provider, {"id_token": token, "id": "somebody-else"})


@pytest.mark.parametrize(
    "auth_data",
    [
        None,
        "token",
        [],
        {},
        {"id_token": 5},
        {"id_token": ""},
        {"id_token": "a.b.c"},
        {"id_token": "not a jwt"},
        {"id_token": "é.é.é"},
        {"id_token": "x" * 20_000},
    ],
)
async def test_malformed_auth_data_refused(provider: OidcProvider, auth_data: Any) -> None:
    await refused(provider, auth_data)


async def test_jwks_cached(
    provider: OidcProvider, jwks_server: JwksServer, signing_key: RSAKey
) -> None:
    for _ in range(3):
        await provider.validate({"id_token": sign(signing_key)})
    assert jwks_server.hits == 1


async def test_key_rotation_refetches_once(
    provider: OidcProvider, jwks_server: JwksServer, signing_key: RSAKey
) -> None:
    await provider.validate({"id_token": sign(signing_key)})
    assert jwks_server.hits == 1
    rotated = RSAKey.generate_key(2048, parameters={"kid": "key-2"})
    jwks_server.publish(signing_key, rotated)
    identity = await provider.validate({"id_token": sign(rotated)})
    assert identity.subject == "user-123"
    assert jwks_server.hits == 2
    await provider.validate({"id_token": sign(signing_key)})  # old key still published
    assert jwks_server.hits == 2
    # junk kids cannot force refetch after refetch: throttled, and refused
    stranger = RSAKey.generate_key(2048, parameters={"kid": "key-unknown"})
    for _ in range(3):
        await refused(provider, {"id_token": sign(stranger)})
    assert jwks_server.hits == 2


async def test_unknown_kid_refetched_at_most_once(
    provider: OidcProvider, jwks_server: JwksServer, signing_key: RSAKey
) -> None:
    stranger = RSAKey.generate_key(2048, parameters={"kid": "key-unknown"})
    await refused(provider, {"id_token": sign(stranger)})
    assert jwks_server.hits == 2  # initial fetch + one refetch for the unknown kid


async def test_jwks_server_down_refused(signing_key: RSAKey) -> None:
    oidc = OidcProvider(
        ISSUER, AUDIENCE, f"http://127.0.0.1:{free_port()}/jwks.json", http_timeout=2
    )
    try:
        await refused(oidc, {"id_token": sign(signing_key)})
    finally:
        await oidc.aclose()


@pytest.mark.parametrize("status,document", [(500, {"keys": []}), (200, {"nokeys": 1})])
async def test_jwks_error_or_garbage_refused(
    jwks_server: JwksServer, signing_key: RSAKey, status: int, document: dict[str, Any]
) -> None:
    jwks_server.status, jwks_server.jwks = status, document
    oidc = OidcProvider(ISSUER, AUDIENCE, jwks_server.url)
    try:
        await refused(oidc, {"id_token": sign(signing_key)})
    finally:
        await oidc.aclose()


async def test_jwks_recovers_after_outage(jwks_server: JwksServer, signing_key: RSAKey) -> None:
    jwks_server.status = 503
    oidc = OidcProvider(ISSUER, AUDIENCE, jwks_server.url)
    try:
        await refused(oidc, {"id_token": sign(signing_key)})
        jwks_server.status = 200
        jwks_server.publish(signing_key)
        assert (await oidc.validate({"id_token": sign(signing_key)})).subject == "user-123"
    finally:
        await oidc.aclose()


# --- build_providers ---------------------------------------------------------------------------


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "data_dir": tmp_path,
        "oidc_issuer": None,
        "oidc_audience": None,
        "oidc_jwks_url": None,
        "auth_provider_modules": "",
    }
    base.update(overrides)
    return Settings(**base)


async def test_build_providers_empty_by_default(tmp_path: Path) -> None:
    assert build_providers(settings(tmp_path)) == {}


async def test_build_providers_oidc(tmp_path: Path) -> None:
    providers = build_providers(
        settings(
            tmp_path,
            oidc_issuer=ISSUER,
            oidc_audience=AUDIENCE,
            oidc_jwks_url="https://idp.example.org/jwks",
        )
    )
    oidc = providers["oidc"]
    assert isinstance(oidc, OidcProvider)
    assert (oidc.issuer, oidc.audience) == (ISSUER, AUDIENCE)
    await oidc.aclose()


async def test_build_providers_half_configured_oidc_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        build_providers(settings(tmp_path, oidc_issuer=ISSUER))


DEPLOYER_MODULE = """
from mindharbor.auth.oidc import ExternalIdentity
from mindharbor import errors


class Clinic:
    name = "clinic"

    def __init__(self, secret):
        self.secret = secret

    async def validate(self, auth_data):
        if auth_data.get("badge") != self.secret:
            raise errors.ObjectNotFound("Clinic auth is invalid for this user.")
        return ExternalIdentity("clinic", auth_data["badge"], None, False)


def providers(settings):
    return {"clinic": Clinic(settings.app_id + "-badge")}
"""


@pytest.fixture
def deployer_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"mh_deployer_{uuid.uuid4().hex}"
    code_dir = tmp_path / "plugins"
    code_dir.mkdir()
    (code_dir / f"{name}.py").write_text(DEPLOYER_MODULE)
    (code_dir / "mh_no_factory.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(code_dir))
    try:
        yield name
    finally:
        sys.modules.pop(name, None)
        sys.modules.pop("mh_no_factory", None)


async def test_build_providers_with_deployer_module(tmp_path: Path, deployer_module: str) -> None:
    providers = build_providers(
        settings(
            tmp_path,
            app_id="demo",
            oidc_issuer=ISSUER,
            oidc_audience=AUDIENCE,
            oidc_jwks_url="https://idp.example.org/jwks",
            auth_provider_modules=f" {deployer_module} ,",
        )
    )
    assert set(providers) == {"oidc", "clinic"}
    clinic = providers["clinic"]
    assert clinic.name == "clinic"
    identity = await clinic.validate({"badge": "demo-badge"})
    assert identity == ExternalIdentity("clinic", "demo-badge", None, False)
    with pytest.raises(errors.ObjectNotFound):
        await clinic.validate({"badge": "nope"})
    oidc = providers["oidc"]
    assert isinstance(oidc, OidcProvider)
    await oidc.aclose()


async def test_build_providers_bad_module(tmp_path: Path, deployer_module: str) -> None:
    with pytest.raises(TypeError):
        build_providers(settings(tmp_path, auth_provider_modules="mh_no_factory"))
    with pytest.raises(ImportError):
        build_providers(settings(tmp_path, auth_provider_modules="mh_does_not_exist_xyz"))
