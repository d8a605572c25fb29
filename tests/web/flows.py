"""Shared steps of the web-view tests: the server they run against, staff made by an operator,
and what a person does in the pages (sign up, sign in with MFA enrolment)."""

from __future__ import annotations

import uuid
from typing import Any

import pyotp

from tests.support import LiveServer, ParseClient, pointer
from tests.web.browser import check_page

PASSWORD = "a long enough passphrase"
EMERGENCY_MINUTES = 0.3  # 18 s: long enough to look at the chart, short enough to see it end
LIVE = 20_000  # ms to wait for a LiveQuery-driven change


def origin(server: LiveServer) -> str:
    return server.url.rsplit(server.settings.mount_path, 1)[0]


def staff(api: ParseClient, role: str, display: str) -> tuple[str, str]:
    """A staff account made by an operator (master key): (username, user id)."""
    name = f"{role}-{uuid.uuid4().hex[:8]}"
    made = api.post("/users", {"username": name, "password": PASSWORD, "role": role}, master=True)
    assert made.status_code == 201, made.text
    user_id = made.json()["objectId"]
    if role == "provider":
        api.create("ProviderProfile", {"user": pointer("_User", user_id), "displayName": display})
    return name, user_id


def sign_up_patient(page: Any, base: str, display: str, *, check: bool = False) -> str:
    page.goto(base + "/app/")
    page.get_by_role("button", name="Create account").click()
    if check:
        check_page(page, "portal-signup")
    page.get_by_label("Your name").fill(display)
    name = f"pat-{uuid.uuid4().hex[:8]}"
    page.get_by_label("Email").fill(f"{name}@example.org")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.locator("form").get_by_role("button", name="Create account").click()
    page.get_by_text(f"Signed in as {display}").wait_for()
    return name


def staff_sign_in_with_enrolment(page: Any, base: str, username: str) -> list[str]:
    """Sign in, enrol TOTP from the secret shown beside the QR code; the recovery codes."""
    page.goto(base + "/clinic/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Set up two-step sign-in").wait_for()
    page.get_by_role("img", name="QR code of your authenticator key").wait_for()
    secret = page.locator("#mfa-secret").inner_text()
    check_page(page, "clinic-mfa")
    page.get_by_label("Code from your app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("heading", name="Save your recovery codes").wait_for()
    codes = page.get_by_role("list", name="Recovery codes").inner_text().split()
    page.get_by_role("button", name="I have saved these codes").click()
    page.get_by_role("heading", name="Caseload").wait_for()
    return codes


def sdk(page: Any, script: str) -> Any:
    """Run Parse JS SDK code in the page as its signed-in user (what any client could do)."""
    return page.evaluate(f"async () => {{ {script} }}")


def profile_id_of(page: Any) -> str:
    return str(
        sdk(
            page,
            "const p = await new Parse.Query('PatientProfile')"
            ".equalTo('user', Parse.User.current()).first(); return p.id;",
        )
    )


def rest_staff_session(api: ParseClient, username: str) -> str:
    """A staff session over REST, second factor enrolled as the server demands."""
    login = api.post("/login", {"username": username, "password": PASSWORD})
    token = str(login.json()["sessionToken"])
    headers = {"X-Parse-Session-Token": token}
    secret = api.post("/functions/enrollMfa", {}, headers=headers).json()["result"]["secret"]
    confirmed = api.post(
        "/functions/confirmMfa", {"code": pyotp.TOTP(secret).now()}, headers=headers
    )
    assert confirmed.status_code == 200, confirmed.text
    return token
