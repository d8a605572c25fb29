"""Parse Dashboard from npm (``parse-dashboard``, pinned in ``package.json`` beside this file),
served against a live MindHarbor and driven in Debian's headless Chromium through Playwright.

The walk-through (``flow.py``) logs in through the Dashboard's form, checks that no Core page
says "Feature unavailable", browses classes with their counts, filters, edits a non-clinical
field in place, runs a job from the Jobs page, sees the scheduled jobs, the Python hooks on the
Webhooks and Cloud Code pages, reads and writes a Config parameter, and queries through the API
console. Screenshots of each step are kept under ``test-artifacts/dashboard/<backend>/``.

Set-up: ``npm ci --prefix tests/dashboard`` (``make node-deps``) and ``apt-get install chromium``.
Without them the test is skipped, or fails when ``MINDHARBOR_REQUIRE_SERVICES=1`` (as in CI).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.dashboard import flow
from tests.support import REQUIRE_SERVICES, LiveServer, free_port

HERE = Path(__file__).resolve().parent
DASHBOARD_BIN = HERE / "node_modules" / "parse-dashboard" / "bin" / "parse-dashboard"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("MINDHARBOR_TEST_ARTIFACTS", HERE.parent.parent / "test-artifacts"))


def _unavailable(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (MINDHARBOR_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def dashboard(server: LiveServer, tmp_path: Path) -> Iterator[str]:
    """A Parse Dashboard process for ``server``, with one dashboard user; its URL."""
    node = shutil.which("node")
    if node is None or not DASHBOARD_BIN.is_file():
        _unavailable("Parse Dashboard is not installed: run `npm ci --prefix tests/dashboard`")
    assert node is not None
    origin = server.url.removesuffix(server.settings.mount_path)
    config = {
        "apps": [
            {
                "serverURL": server.url,
                "graphQLServerURL": f"{origin}/graphql",
                "appId": server.app_id,
                "masterKey": server.master_key,
                "appName": flow.APP_NAME,
            }
        ],
        "users": [{"user": flow.DASHBOARD_USER, "pass": flow.DASHBOARD_PASSWORD}],
    }
    config_path = tmp_path / "parse-dashboard-config.json"
    config_path.write_text(json.dumps(config))
    port = free_port()
    log = (tmp_path / "dashboard.log").open("w")
    process = subprocess.Popen(
        [
            node,
            str(DASHBOARD_BIN),
            "--config",
            str(config_path),
            "--allowInsecureHTTP",
            "true",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=HERE,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/login", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(
                    f"Parse Dashboard did not start:\n{(tmp_path / 'dashboard.log').read_text()}"
                )
            time.sleep(0.3)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.mark.node
def test_parse_dashboard_pages(server: LiveServer, backend: str, dashboard: str) -> None:
    if not CHROMIUM.exists():
        _unavailable("Debian's chromium is required: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    shots = ARTIFACTS / "dashboard" / backend
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    rest = flow.Rest(server.url, server.app_id, server.master_key)
    note_class = flow.seed_notes(rest)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(30_000)
        try:
            taken = flow.run(page, dashboard, rest, shots, note_class)
        except BaseException:
            page.screenshot(path=str(shots / "failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    assert len(taken) == len(list(shots.glob("*.png")))
