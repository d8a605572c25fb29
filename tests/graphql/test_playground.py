"""The playground works offline: GraphiQL at ``/graphql`` and the API docs at ``/docs`` load
only assets MindHarbor serves itself, and (where Chromium is installed) render in a real
headless browser without touching any other host.

GraphiQL's schema (docs, autocompletion) comes from introspection, which is for the master key
(issue 19): the page first shows the refusal, and loads the schema once the master key is put in
its Headers tab and the schema re-fetched, as its default query explains."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.graphql.support import origin
from tests.support import REQUIRE_SERVICES, LiveServer

CHROMIUM = Path("/usr/bin/chromium")
ASSET_RE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
PAGES = {"/graphql": ".graphiql-container", "/docs": ".swagger-ui .info .title"}


def _html(server: LiveServer, path: str) -> httpx.Response:
    response = httpx.get(origin(server) + path, headers={"Accept": "text/html"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    return response


@pytest.mark.parametrize("path", sorted(PAGES))
def test_pages_reference_only_local_assets(server: LiveServer, path: str) -> None:
    response = _html(server, path)
    assert not re.search(r"https?://", response.text), response.text
    assets = ASSET_RE.findall(response.text)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        assert asset.startswith("/static/"), asset
        fetched = httpx.get(origin(server) + asset)
        assert fetched.status_code == 200, asset
        assert len(fetched.content) > 0
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp


def test_graphql_get_without_html_is_not_the_page(server: LiveServer) -> None:
    response = httpx.get(
        origin(server) + "/graphql",
        headers={"Accept": "application/json", "X-Parse-Application-Id": server.app_id},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == 107


def test_openapi_document_is_served_for_the_viewer(server: LiveServer) -> None:
    response = httpx.get(server.url + "/openapi.json")
    assert response.status_code == 200
    assert response.json()["openapi"] == "3.1.0"


def _playwright() -> object:
    if not CHROMIUM.exists():
        if REQUIRE_SERVICES:
            pytest.fail("Debian's chromium is required (MINDHARBOR_REQUIRE_SERVICES=1)")
        pytest.skip("headless check skipped: /usr/bin/chromium is not installed (apt chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("headless check skipped: the playwright package is not installed")
    return sync_playwright


@pytest.mark.parametrize("path", sorted(PAGES))
def test_pages_render_in_headless_chromium_offline(server: LiveServer, path: str) -> None:
    sync_playwright = _playwright()
    base = origin(server)
    host = urlsplit(base).netloc
    foreign: list[str] = []
    problems: list[str] = []
    failed: list[str] = []
    graphql_posts: list[int] = []
    with sync_playwright() as p:  # type: ignore[operator]
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()

            def on_request(request: object) -> None:
                url = request.url  # type: ignore[attr-defined]
                if url.startswith("http") and urlsplit(url).netloc != host:
                    foreign.append(url)

            def on_response(response: object) -> None:
                url, status = response.url, response.status  # type: ignore[attr-defined]
                if url.endswith("/graphql") and response.request.method == "POST":  # type: ignore[attr-defined]
                    graphql_posts.append(status)
                if status >= 400 and not url.endswith("/favicon.ico"):
                    failed.append(f"{status} {url}")

            page.on("request", on_request)
            page.on("response", on_response)
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on(
                "console",
                lambda msg: (
                    problems.append(msg.text)
                    if msg.type == "error" and "Failed to load resource" not in msg.text
                    else None
                ),
            )
            if path == "/graphql":
                # GraphiQL asks for the schema itself, with the app id only: refused.
                with page.expect_response(
                    lambda r: r.url.endswith("/graphql") and r.request.method == "POST",
                    timeout=30_000,
                ) as first_post:
                    page.goto(base + path)
                assert first_post.value.status == 403
                assert "Introspection is not allowed" in first_post.value.text()
            page.goto(base + path, wait_until="networkidle", timeout=30_000)
            page.wait_for_selector(PAGES[path], timeout=30_000)
            if path == "/graphql":
                assert graphql_posts and set(graphql_posts) == {403}, graphql_posts
                refused = len(failed)
                assert failed == [f"403 {base}/graphql"] * refused
                failed.clear()
                _load_schema_with_master_key(page, server, failed)
                assert 200 in graphql_posts, graphql_posts
            else:
                assert "MindHarbor REST API" in page.inner_text(PAGES[path])
        finally:
            browser.close()
    assert foreign == []
    assert failed == []
    assert problems == []


def _load_schema_with_master_key(page: Any, server: LiveServer, failed: list[str]) -> None:
    """Type the master key into GraphiQL's Headers editor, re-fetch the schema, open the docs,
    and run a query: what a developer does with the key `make run` prints."""
    headers = {"X-Parse-Application-Id": server.app_id, "X-Parse-Master-Key": server.master_key}
    page.evaluate(
        """(value) => {
            const editors = document.querySelectorAll('.graphiql-editor .CodeMirror');
            const box = Array.from(editors).find(
                e => e.CodeMirror.getValue().includes('X-Parse-Application-Id'));
            box.CodeMirror.setValue(value);
        }""",
        json.dumps(headers, indent=2),
    )
    before = len(failed)
    for _attempt in range(20):  # GraphiQL takes the edited headers after a short debounce
        with page.expect_response(
            lambda r: r.url.endswith("/graphql") and r.request.method == "POST", timeout=30_000
        ) as schema:
            page.click('button[aria-label="Re-fetch GraphQL schema"]')
        if schema.value.status == 200:
            break
        page.wait_for_timeout(250)
    assert schema.value.status == 200
    # Attempts that still carried the old headers were refused, as they must be.
    assert set(failed[before:]) <= {f"403 {schema.value.url}"}, failed
    del failed[before:]
    assert "__schema" in schema.value.json()["data"]
    page.click('button[aria-label="Show Documentation Explorer"]')
    page.wait_for_selector(".graphiql-doc-explorer", timeout=30_000)
    page.wait_for_function(
        "() => document.querySelector('.graphiql-doc-explorer').innerText.includes('Query')",
        timeout=30_000,
    )
    page.evaluate(
        """() => document.querySelector('.graphiql-editor .CodeMirror')
            .CodeMirror.setValue('query Viewer { health }')"""
    )
    with page.expect_response(
        lambda r: r.url.endswith("/graphql") and r.request.method == "POST", timeout=30_000
    ) as run:
        page.click('button[aria-label="Execute query (Ctrl-Enter)"]')
    assert run.value.status == 200
    assert run.value.json() == {"data": {"health": True}}
