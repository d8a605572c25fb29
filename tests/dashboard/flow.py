"""The Parse Dashboard walk-through, in a real Chromium: the steps and what each must show.

Kept apart from the pytest wrapper (``test_parse_dashboard.py``) so it can also be run by hand
against a server and a Dashboard started elsewhere:
``python -m tests.dashboard.flow DASHBOARD_URL SERVER_URL APP_ID MASTER_KEY SHOTS_DIR``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

APP_NAME = "MindHarbor"
DASHBOARD_USER = "admin"
DASHBOARD_PASSWORD = "dashboard-test-password"
RUN_AS_PASSWORD = "a long enough passphrase"
# Every Core page the Dashboard offers for a Parse Server with MindHarbor's features.
CORE_PAGES = ("browser", "cloud_code", "webhooks", "jobs", "logs", "config", "api_console")


class Rest:
    """The few REST calls the walk-through makes itself, with the master key."""

    def __init__(self, server_url: str, app_id: str, master_key: str) -> None:
        self.url = server_url.rstrip("/")
        self.headers = {"X-Parse-Application-Id": app_id, "X-Parse-Master-Key": master_key}

    def call(self, method: str, path: str, body: Any = None, **params: str) -> Any:
        response = httpx.request(
            method,
            f"{self.url}/{path}",
            headers=self.headers,
            json=body,
            params=params or None,
            timeout=30,
        )
        assert response.status_code < 300, (method, path, response.text)
        return response.json()


def _settle(page: Any, seconds: float = 0.5) -> None:
    page.wait_for_load_state("networkidle")
    time.sleep(seconds)


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def _body(page: Any) -> str:
    return str(page.inner_text("body"))


def run(page: Any, dashboard: str, rest: Rest, shots: Path, note_class: str) -> list[str]:
    """Drive every page; returns the names of the screenshots taken (in ``shots``)."""
    taken: list[str] = []
    app = f"{dashboard.rstrip('/')}/apps/{APP_NAME}"

    def shot(name: str) -> None:
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        taken.append(name)

    # Log in through the Dashboard's own form.
    page.goto(f"{dashboard.rstrip('/')}/login")
    page.fill("input[name=username]", DASHBOARD_USER)
    page.fill("input[name=password]", DASHBOARD_PASSWORD)
    page.click("[type=submit]")
    _settle(page)
    shot("01-apps")
    assert APP_NAME in _body(page)

    # No Core page says "Feature unavailable" (Push is the one documented exception).
    for name in CORE_PAGES:
        page.goto(f"{app}/{name}")
        _settle(page, 1.0)
        assert "Feature unavailable" not in _body(page), name

    # Browser: every class is listed with its count; the note class shows its rows.
    page.goto(f"{app}/browser/{note_class}")
    _wait_for(lambda: "first note" in _body(page), "the note rows")
    sidebar = _body(page)
    for class_name in ("PatientProfile", "Message", "AuditLog", note_class):
        assert class_name in sidebar, class_name
    shot("02-browser")

    # Filter (the Dashboard's own URL form of a filter).
    filters = json.dumps([{"field": "title", "constraint": "eq", "compareTo": "second note"}])
    page.goto(f"{app}/browser/{note_class}?filters={filters}")
    _wait_for(lambda: "second note" in _body(page), "the filtered row")
    assert "first note" not in _body(page)
    shot("03-filter")

    # Edit a non-clinical field in place: double-click the cell, type, Enter.
    page.goto(f"{app}/browser/{note_class}")
    _wait_for(lambda: "first note" in _body(page), "the note rows")
    page.get_by_text("first note", exact=True).dblclick()
    editor = page.locator("textarea").first  # the cell editor takes the focus
    editor.wait_for(timeout=5000)
    editor.fill("edited in the dashboard")
    editor.press("Enter")
    _wait_for(
        lambda: any(
            row["title"] == "edited in the dashboard"
            for row in rest.call("GET", f"classes/{note_class}")["results"]
        ),
        "the edit to reach the server",
    )
    shot("04-edit")

    # Jobs: listed, and one run from the page leaves a _JobStatus.
    page.goto(f"{app}/jobs")
    _wait_for(lambda: "purgeIdempotencyKeys" in _body(page), "the job list")
    before = rest.call("GET", "classes/_JobStatus", count="1", limit="0")["count"]
    row = page.locator("tr", has_text="purgeIdempotencyKeys")
    row.get_by_text("Run...").click()
    page.get_by_role("button", name="Run", exact=True).click()
    _wait_for(
        lambda: rest.call("GET", "classes/_JobStatus", count="1", limit="0")["count"] > before,
        "a job status from the Jobs page",
    )
    shot("05-jobs")
    page.goto(f"{app}/jobs/scheduled")
    _wait_for(lambda: "sealAuditLog" in _body(page), "the scheduled jobs")
    shot("06-jobs-scheduled")

    # Webhooks and Cloud Code list the Python hooks.
    page.goto(f"{app}/webhooks")
    _wait_for(lambda: "assignProvider" in _body(page), "the functions on the Webhooks page")
    assert "Message" in _body(page)
    shot("07-webhooks")
    page.goto(f"{app}/cloud_code")
    _wait_for(lambda: "hooks.md" in _body(page), "the Cloud Code files")
    shot("08-cloud-code")

    # Config: reads a parameter set through the API, writes one through its dialog.
    rest.call("PUT", "config", {"params": {"welcomeText": "from the API"}})
    page.goto(f"{app}/config")
    _wait_for(lambda: "welcomeText" in _body(page), "the config parameter")
    page.get_by_text("Create a parameter").first.click()
    page.get_by_placeholder("New parameter").fill("dashboardParam")
    page.locator("textarea").last.fill("set in the dashboard")
    page.get_by_role("button", name="Create", exact=True).click()
    _wait_for(
        lambda: (
            rest.call("GET", "config")["params"].get("dashboardParam") == "set in the dashboard"
        ),
        "the parameter saved from the Config page",
    )
    shot("09-config")

    # Logs.
    page.goto(f"{app}/logs")
    _settle(page)
    shot("10-logs")

    # API console, REST: a master-key query shows the rows.
    page.goto(f"{app}/api_console")
    _settle(page)
    page.locator("input[placeholder='classes/_User']").fill(f"classes/{note_class}")
    page.get_by_role("button", name="Send query").click()
    _wait_for(lambda: "second note" in _body(page), "the REST console's answer")
    shot("11-api-console-rest")

    # API console, "Run as": session tokens are stored hashed, so the Dashboard's look-up of
    # the user's session is refused with the reason (no token, and no silent anonymous run).
    username = f"runas{int(time.time() * 1000) % 10**8}"
    rest.call("POST", "users", {"username": username, "password": RUN_AS_PASSWORD})
    rest.call("POST", "login", {"username": username, "password": RUN_AS_PASSWORD})
    run_as = page.get_by_placeholder("Username or ID")
    with page.expect_response(lambda r: "/classes/_Session" in r.url) as answer:
        run_as.fill(username)
        run_as.blur()  # the Dashboard looks the user and a session of theirs up on blur
    refused = answer.value.json()
    assert answer.value.status == 400 and refused["code"] == 119, refused
    assert "stored hashed" in refused["error"] and "sessionToken" not in refused
    _wait_for(lambda: "Unable to find any active sessions" in _body(page), "the Run as error")
    shot("12-api-console-run-as")

    # API console, GraphQL (Parse's shape).
    page.goto(f"{app}/api_console/graphql")
    _settle(page, 1.0)
    page.locator(".graphiql-query-editor .CodeMirror").first.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.type("{ health }")
    page.locator("button.graphiql-execute-button").click()
    response = page.locator(".graphiql-response")
    _wait_for(lambda: '"health": true' in response.inner_text(), "the GraphQL console's answer")
    shot("13-api-console-graphql")
    return taken


def main(argv: list[str]) -> None:
    from playwright.sync_api import sync_playwright

    dashboard, server_url, app_id, master_key, shots_dir = argv
    shots = Path(shots_dir)
    shots.mkdir(parents=True, exist_ok=True)
    rest = Rest(server_url, app_id, master_key)
    note_class = seed_notes(rest)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            print(run(page, dashboard, rest, shots, note_class))
        finally:
            page.screenshot(path=str(shots / "last.png"))
            browser.close()


def seed_notes(rest: Rest) -> str:
    """A non-clinical class with three rows to browse, filter and edit."""
    note_class = f"DashNote{int(time.time() * 1000) % 10**8}"
    rest.call(
        "POST",
        "schemas",
        {"className": note_class, "fields": {"title": {"type": "String"}}},
    )
    for title in ("first note", "second note", "third note"):
        rest.call("POST", f"classes/{note_class}", {"title": title})
    return note_class


if __name__ == "__main__":
    main(sys.argv[1:])
