"""The Parse profile (issue 15) through the official Parse JS SDK, both ways.

The default-settings SDK suite (test_parse_js_sdk.py) cannot reach these settings, so this test
starts its own servers, per backend: one with ``MINDHARBOR_PARSE_COMPAT=true`` (plus public
uploads) and one with the defaults, and runs ``profile/sdk_profile.mjs`` against each.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from joserfc.jwk import RSAKey

from tests.api.test_sso_login import jwks, oidc_settings, signing_key, subject
from tests.auth.test_oidc import JwksServer, sign
from tests.compat.test_parse_js_sdk import TIMEOUT_SECONDS, _failing_tests, _run_node, node_sdk
from tests.support import live_server, make_settings

__all__ = ["jwks", "node_sdk", "signing_key"]  # fixtures shared with the modules named


@pytest.mark.node
@pytest.mark.parametrize("profile", ["compat", "strict"])
def test_parse_profile_through_the_sdk(
    profile: str,
    node_sdk: str,
    backend_url: str,
    backend: str,
    tmp_path: Path,
    jwks: JwksServer,
    signing_key: RSAKey,
) -> None:
    extra = {"parse_compat": True, "file_upload_public": True} if profile == "compat" else {}
    settings = make_settings(
        backend_url,
        tmp_path,
        login_rate_per_ip=100_000,
        mfa_required_roles="",
        **oidc_settings(jwks, **extra),
    )
    sub = subject()
    with live_server(settings, backend) as server:
        env = {
            **os.environ,
            "PARSE_SERVER_URL": server.url,
            "PARSE_APP_ID": server.app_id,
            "PARSE_MASTER_KEY": server.master_key,
            "PARSE_PROFILE": profile,
            "PARSE_OIDC_TOKEN": sign(signing_key, sub=sub, email=None, email_verified=None),
            "PARSE_OIDC_SUBJECT": sub,
            "NO_COLOR": "1",
        }
        command = [node_sdk, "--test", "--test-reporter=spec", "profile/sdk_profile.mjs"]
        returncode, stdout, stderr = _run_node(command, env)
    if returncode != 0:
        failing = "\n".join(_failing_tests(stdout)) or "(see output)"
        pytest.fail(
            f"Parse profile SDK run ({profile}) failed (exit {returncode}, "
            f"timeout {TIMEOUT_SECONDS}s)\n--- failing tests ---\n{failing}\n"
            f"--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            pytrace=False,
        )
