"""Browser support for the web-view tests: Debian's Chromium driven by Playwright (never a
downloaded browser), axe-core accessibility checks, and screenshots for the README.

Without /usr/bin/chromium, the Playwright package or axe-core (``npm ci --prefix web``) the tests
skip with the reason, or fail when ``MINDHARBOR_REQUIRE_SERVICES=1`` (as in CI)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.support import REQUIRE_SERVICES

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = os.environ.get("MINDHARBOR_SCREENSHOTS")
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def unavailable(reason: str) -> NoReturn:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (MINDHARBOR_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium, or a skip (a failure in CI) saying what is missing."""
    if not CHROMIUM.exists():
        unavailable("browser tests skipped: /usr/bin/chromium is not installed (apt chromium)")
    if not AXE.exists():
        unavailable("browser tests skipped: axe-core is not installed (npm ci --prefix web)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("browser tests skipped: the playwright package is not installed")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield browser
        finally:
            browser.close()


class Watched:
    """A page whose script errors, CSP refusals and foreign requests are collected."""

    def __init__(self, browser: Any, base: str, *, phone: bool = False) -> None:
        self.base = base
        self.context = browser.new_context(
            viewport=PHONE if phone else DESKTOP, accept_downloads=True
        )
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.urls: list[str] = []
        host = re.sub(r"^https?://", "", base)
        self.page.on("pageerror", lambda exc: self.problems.append(f"pageerror: {exc}"))
        self.page.on("console", self._console)
        self.page.on("request", lambda r: self._request(r.url, host))

    def _console(self, message: Any) -> None:
        text = message.text
        if message.type == "error" and "Failed to load resource" not in text:
            self.problems.append(f"console: {text}")
        if "Content Security Policy" in text:
            self.problems.append(f"csp: {text}")

    def _request(self, url: str, host: str) -> None:
        self.urls.append(url)
        if url.startswith(("http", "ws")) and host not in url:
            self.problems.append(f"foreign request: {url}")

    def close(self) -> None:
        self.context.close()


def axe_check(page: Any, label: str) -> None:
    """axe-core over the page as it is: no serious or critical WCAG 2.2 AA violation.
    (Injected through the DevTools protocol, which the page's CSP does not govern.)"""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    violations = page.evaluate(
        """async (tags) => {
            const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
            return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
              .map(v => `${v.id} (${v.impact}): ` +
                v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '));
        }""",
        AXE_TAGS,
    )
    assert violations == [], f"{label}: {violations}"


def check_page(page: Any, name: str) -> None:
    """axe at desktop and phone width; with MINDHARBOR_SCREENSHOTS set, a screenshot of each."""
    size = page.viewport_size
    for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        page.wait_for_timeout(100)
        axe_check(page, f"{name} at {width} width")
        if SCREENSHOTS:
            out = ROOT / SCREENSHOTS
            out.mkdir(parents=True, exist_ok=True)
            page.screenshot(
                path=str(out / f"{name}-{width}.jpg"), full_page=True, type="jpeg", quality=70
            )
    page.set_viewport_size(size)
