"""The patient portal beyond the story: screener forms, an ended session, idle log-off."""

from __future__ import annotations

import re

import pytest

from tests.support import LiveServer, live_server, make_settings
from tests.web.browser import Watched, check_page, chromium
from tests.web.flows import origin, profile_id_of, rest_staff_session, sign_up_patient, staff


def test_screener_forms_follow_the_published_questions(web: LiveServer) -> None:
    """GAD-7 (no banner for a negative screen) and the C-SSRS screener, whose follow-up
    questions appear only where the screener asks them; the server scores both."""
    api = web.client()
    base = origin(web)
    provider, provider_id = staff(api, "provider", "Dr. Ali Grant")
    provider_headers = {"X-Parse-Session-Token": rest_staff_session(api, provider)}
    with chromium() as browser:
        watched = Watched(browser, base, phone=True)
        page = watched.page
        try:
            sign_up_patient(page, base, "Riley Chen")
            chart_id = profile_id_of(page)
            api.post(
                "/functions/assignProvider",
                {"patientId": chart_id, "providerId": provider_id},
                master=True,
            )
            for instrument in ("GAD-7", "C-SSRS"):
                assigned = api.post(
                    "/functions/assignInstrument",
                    {"patientId": chart_id, "instrument": instrument},
                    headers=provider_headers,
                )
                assert assigned.status_code == 200, assigned.text
            # Both assignments listed first: each arrives live and re-renders the list, and a
            # click while the second one lands can hit a button that was just replaced.
            page.get_by_role("button", name="Start C-SSRS").wait_for()
            page.get_by_role("button", name="Start GAD-7").click()
            for n in range(1, 8):
                group = page.get_by_role("group", name=re.compile(rf"^{n}\. "))
                group.get_by_label("Several days").check()
            page.get_by_role("button", name="Submit answers").click()
            page.get_by_text("Score 7, mild.").wait_for()
            assert not page.get_by_role("alert").filter(has_text="988").count()

            page.get_by_role("button", name="Start C-SSRS").click()
            questions = page.get_by_role("group")
            assert questions.count() == 3  # q1, q2, q6: the follow-ups wait for a yes
            page.get_by_role("group", name=re.compile("wished you were dead")).get_by_label(
                "Yes"
            ).check()
            page.get_by_role("group", name=re.compile("thoughts of killing")).get_by_label(
                "No"
            ).check()
            page.get_by_role("group", name=re.compile("ever done anything")).get_by_label(
                "Yes"
            ).check()
            assert questions.count() == 4  # "within the past 3 months?" now asked
            check_page(page, "portal-cssrs")
            page.get_by_role("group", name=re.compile("past 3 months")).get_by_label("No").check()
            page.get_by_role("button", name="Submit answers").click()
            page.get_by_text("moderate.", exact=True).wait_for()
            page.get_by_role("alert").filter(has_text="988").wait_for()
            assert watched.problems == []
        finally:
            watched.close()


def test_an_ended_session_signs_the_view_out(web: LiveServer) -> None:
    """The server ends a session (here: revoked elsewhere); the next answer (209) signs the
    portal out, and nothing of the account stays in the browser."""
    api = web.client()
    with chromium() as browser:
        watched = Watched(browser, origin(web), phone=True)
        page = watched.page
        try:
            sign_up_patient(page, origin(web), "Drew Hale")
            token = page.evaluate("() => Parse.User.current().getSessionToken()")
            assert (
                api.post("/logout", {}, headers={"X-Parse-Session-Token": token}).status_code == 200
            )
            page.get_by_role("button", name="Who viewed my record").click()
            page.get_by_text("Your session ended. Please sign in again.").wait_for()
            page.get_by_role("heading", name="Sign in").wait_for()
            assert page.evaluate("() => Object.keys(sessionStorage).length") == 0
        finally:
            watched.close()


IDLE_SERVER_MINUTES = 1


def test_idle_log_off_warns_first(
    backend_url: str, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """HIPAA automatic log-off in the browser: a warning half a minute before, then sign-out
    (the server's own idle limit, one minute here, is what the page counts down to)."""
    settings = make_settings(
        backend_url,
        tmp_path_factory.mktemp("idle"),
        login_rate_per_ip=100_000,
        session_idle_minutes_patient=IDLE_SERVER_MINUTES,
    )
    with live_server(settings, backend) as live, chromium() as browser:
        watched = Watched(browser, origin(live), phone=True)
        page = watched.page
        try:
            sign_up_patient(page, origin(live), "Eli North")
            dialog = page.get_by_role("alertdialog", name="Are you still there?")
            dialog.wait_for(timeout=45_000)
            assert "signed out in" in dialog.inner_text()
            check_page(page, "portal-idle-warning")
            page.get_by_text("You were signed out after a period of inactivity.").wait_for(
                timeout=45_000
            )
            page.get_by_role("heading", name="Sign in").wait_for()
            assert page.evaluate("() => Object.keys(localStorage).length") == 0
        finally:
            watched.close()
