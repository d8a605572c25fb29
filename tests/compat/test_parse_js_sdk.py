"""Drive a live MindHarbor server through the official Parse JavaScript SDK.

The JS suite lives beside this file (``*.test.mjs``, run by Node's built-in test runner). This
test starts it once per backend of the ``server`` fixture and fails with Node's full output if
any JS test fails. Set-up: ``npm ci --prefix tests/compat`` (Node 20 or newer).

Without ``node`` or the installed SDK the test is skipped, or fails when
``MINDHARBOR_REQUIRE_SERVICES=1`` (as in CI).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import NoReturn, Protocol

import pytest

COMPAT_DIR = Path(__file__).resolve().parent
SDK_DIR = COMPAT_DIR / "node_modules" / "parse"
TIMEOUT_SECONDS = 300
MIN_NODE_MAJOR = 20


class LiveServer(Protocol):
    """What the ``server`` fixture of tests/conftest.py yields (one per backend)."""

    @property
    def url(self) -> str:  # e.g. http://127.0.0.1:PORT/parse
        ...

    @property
    def app_id(self) -> str: ...

    @property
    def master_key(self) -> str: ...


def _unavailable(reason: str) -> NoReturn:
    """Skip, or fail when the environment demands every service and tool."""
    if os.environ.get("MINDHARBOR_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (MINDHARBOR_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def node_sdk() -> str:
    """The path of a Node.js >= 20 binary, once the Parse SDK is installed beside this file."""
    node = shutil.which("node")
    if node is None:
        _unavailable("node is not on PATH; install Node.js 20+ to run the Parse JS SDK suite")
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, timeout=30, check=False
    ).stdout.strip()
    match = re.match(r"v(\d+)\.", version)
    if not match or int(match.group(1)) < MIN_NODE_MAJOR:
        _unavailable(f"node {version or '(unknown version)'} is older than {MIN_NODE_MAJOR}")
    if not (SDK_DIR / "package.json").is_file():
        _unavailable("the Parse JS SDK is not installed: run `npm ci --prefix tests/compat`")
    return node


def _run_node(command: list[str], env: dict[str, str]) -> tuple[int | None, str, str]:
    """Run `command` in its own process group; on timeout kill the group. Returns rc, out, err."""
    process = subprocess.Popen(
        command,
        cwd=COMPAT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        return None, stdout, stderr
    return process.returncode, stdout, stderr


def _client_class_creation(server: LiveServer) -> str | None:
    """The server's allowClientClassCreation as "true"/"false", when its settings say."""
    allowed = getattr(getattr(server, "settings", None), "allow_client_class_creation", None)
    return None if allowed is None else str(bool(allowed)).lower()


def _failing_tests(stdout: str) -> list[str]:
    """The names listed under the spec reporter's closing 'failing tests:' section."""
    _, marker, tail = stdout.partition("✖ failing tests:")
    if not marker:
        return []
    return [line.strip() for line in tail.splitlines() if line.startswith("✖ ")]


@pytest.mark.node
def test_parse_js_sdk(node_sdk: str, server: LiveServer) -> None:
    # MINDHARBOR_SDK_SPECS narrows the run to some files (a glob), e.g. while writing them.
    pattern = os.environ.get("MINDHARBOR_SDK_SPECS") or "*.test.mjs"
    files = sorted(path.name for path in COMPAT_DIR.glob(pattern))
    assert files, f"no *.test.mjs files in {COMPAT_DIR}"
    env = {
        **os.environ,
        "PARSE_SERVER_URL": server.url,
        "PARSE_APP_ID": server.app_id,
        "PARSE_MASTER_KEY": server.master_key,
        "NO_COLOR": "1",
    }
    if (mode := _client_class_creation(server)) is not None:
        env["PARSE_CLIENT_CLASS_CREATION"] = mode
    command = [node_sdk, "--test", "--test-reporter=spec", *files]

    returncode, stdout, stderr = _run_node(command, env)

    if returncode is None:
        pytest.fail(
            f"Parse JS SDK suite timed out after {TIMEOUT_SECONDS}s against {server.url}\n"
            f"--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            pytrace=False,
        )
    if returncode != 0:
        failing = "\n".join(_failing_tests(stdout)) or "(see output)"
        pytest.fail(
            f"Parse JS SDK suite failed (exit {returncode}) against {server.url}\n"
            f"--- failing tests ---\n{failing}\n"
            f"--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            pytrace=False,
        )
