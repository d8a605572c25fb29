"""Single sign-on from the patient portal: the button goes to the identity provider (a real
local one here), which sends the browser back with an id_token; the server checks it and the
portal is signed in. The token never stays in the address bar."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.support import free_port, live_server, make_settings
from tests.web.browser import Watched, check_page, chromium

AUDIENCE = "mindharbor-portal"


@contextmanager
def identity_provider() -> Iterator[str]:
    """An OIDC provider's authorization endpoint (implicit id_token flow) and JWKS."""
    key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    subject = f"sub-{uuid.uuid4().hex[:8]}"

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/jwks":
                body = json.dumps({"keys": [key.as_dict(private=False)]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)
                return
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            assert query["response_type"] == "id_token" and query["client_id"] == AUDIENCE
            now = int(time.time())
            claims = {
                "iss": issuer,
                "aud": AUDIENCE,
                "sub": subject,
                "iat": now,
                "exp": now + 300,
                "nonce": query["nonce"],
                "email": f"{subject}@example.org",
                "email_verified": True,
            }
            token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key, algorithms=["RS256"])
            fragment = urlencode({"id_token": token, "state": query["state"]})
            self.send_response(302)
            self.send_header("Location", f"{query['redirect_uri']}#{fragment}")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()


def test_patient_signs_in_with_the_clinic_identity_provider(
    backend_url: str, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with identity_provider() as issuer:
        settings = make_settings(
            backend_url,
            tmp_path_factory.mktemp("sso"),
            login_rate_per_ip=100_000,
            oidc_issuer=issuer,
            oidc_audience=AUDIENCE,
            oidc_jwks_url=f"{issuer}/jwks",
            oidc_authorize_url=f"{issuer}/authorize",
        )
        with live_server(settings, backend) as live, chromium() as browser:
            base = live.url.rsplit(settings.mount_path, 1)[0]
            watched = Watched(browser, base, phone=True)
            page = watched.page
            try:
                page.goto(base + "/app/")
                check_page(page, "portal-signin-sso")
                page.get_by_role("button", name="Sign in with your organisation").click()
                page.get_by_role("heading", name="Complete your profile").wait_for()
                assert page.url == base + "/app/"  # the token left the address bar
                check_page(page, "portal-profile")
                page.get_by_label("Your name").fill("Quinn Avery")
                page.get_by_role("button", name="Save").click()
                page.get_by_text("Signed in as Quinn Avery").wait_for()
                assert page.evaluate("() => Object.keys(localStorage)") == []
                foreign = [p for p in watched.problems if "foreign request" in p]
                assert all(f"{issuer}/authorize?" in p for p in foreign), foreign
                assert [p for p in watched.problems if p not in foreign] == []
            finally:
                watched.close()
