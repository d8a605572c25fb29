"""The patient portal (/app/) and clinic workspace (/clinic/) in headless Chromium, on SQLite and
PostgreSQL, through nothing but their pages (the Parse JS SDK and LiveQuery underneath).

The story of issue 16: a patient signs up and completes a PHQ-9 with item 9 positive and sees
the crisis banner; the assigned provider (who enrols MFA here) sees the alert and the crisis log
arrive live, and messages the patient with an attachment; the patient receives it live,
downloads it, and finds the provider in "who viewed my record"; a second patient sees none of
it; an unassigned provider sees none of it until break-the-glass, which then expires. Every
page passes axe-core (no serious or critical WCAG 2.2 AA violation) at desktop and phone width.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from tests.support import LiveServer, ParseClient
from tests.web.browser import Watched, check_page, chromium
from tests.web.flows import (
    LIVE,
    origin,
    profile_id_of,
    sdk,
    sign_up_patient,
    staff,
    staff_sign_in_with_enrolment,
)


def test_pages_are_shells_under_a_strict_csp(web: LiveServer) -> None:
    for path in ("/app/", "/clinic/"):
        response = httpx.get(origin(web) + path)
        assert response.status_code == 200
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "connect-src 'self'" in csp
        assert "unsafe" not in csp
        assert not re.search(r"https?://", response.text)
        assert "<script>" not in response.text  # configuration travels in data attributes
    assert httpx.get(origin(web) + "/app").headers["location"] == "/app/"


def test_the_issue_16_story(web: LiveServer) -> None:
    api = web.client()
    base = origin(web)
    provider, provider_id = staff(api, "provider", "Dr. Robin Lee")
    outsider, _ = staff(api, "provider", "Dr. Sam Other")
    with chromium() as browser:
        patient = Watched(browser, base, phone=True)  # the portal on a phone
        clinic = Watched(browser, base)
        try:
            _story(web, api, patient, clinic, provider, provider_id, outsider, browser, base)
        except BaseException:
            for watched in (patient, clinic):  # what each page showed, for the failure report
                print(watched.page.url, watched.problems, watched.page.inner_text("body")[:3000])
            raise
        finally:
            patient.close()
            clinic.close()


def _story(
    web: LiveServer,
    api: ParseClient,
    patient: Watched,
    clinic: Watched,
    provider: str,
    provider_id: str,
    outsider: str,
    browser: Any,
    base: str,
) -> None:
    pa, pc = patient.page, clinic.page
    pa.goto(base + "/app/")
    check_page(pa, "portal-signin")
    sign_up_patient(pa, base, "Alex Rivera", check=True)
    chart_id = profile_id_of(pa)
    # An admin's act (the admin panel has its own test): Alex joins Dr. Lee's caseload.
    assigned = api.post(
        "/functions/assignProvider", {"patientId": chart_id, "providerId": provider_id}, master=True
    )
    assert assigned.status_code == 200, assigned.text

    # The provider enrols MFA, finds Alex on the caseload and assigns a PHQ-9.
    pc.goto(base + "/clinic/")
    check_page(pc, "clinic-signin")
    codes = staff_sign_in_with_enrolment(pc, base, provider)
    assert len(codes) >= 8
    pc.get_by_role("button", name="Open chart of Alex Rivera").click()
    pc.get_by_role("heading", name="Patient chart: Alex Rivera").wait_for()
    pc.get_by_role("button", name="Assign PHQ-9").click()
    pc.get_by_text("PHQ-9 · assigned").wait_for()
    pc.get_by_role("button", name="Back to caseload").click()
    pc.get_by_role("heading", name="Care alerts").wait_for()
    assert pc.get_by_text("No alerts.").is_visible()

    # The assignment reaches the patient live; item 9 positive.
    pa.get_by_role("button", name="Start PHQ-9").wait_for(timeout=LIVE)
    check_page(pa, "portal-home")
    pa.get_by_role("button", name="Start PHQ-9").click()
    for n in range(1, 10):
        group = pa.get_by_role("group", name=re.compile(rf"^{n}\. "))
        group.get_by_label("Several days" if n == 9 else "Not at all").check()
    check_page(pa, "portal-phq9")
    pa.get_by_role("button", name="Submit answers").click()
    pa.get_by_role("heading", name="Thank you: your answers were received").wait_for()
    assert "Score 1, minimal" in pa.locator("#result").inner_text()
    banner = pa.get_by_role("alert").filter(has_text="988")
    banner.wait_for()
    assert "988 Suicide & Crisis Lifeline" in banner.inner_text()
    assert web.settings.clinic_emergency_instructions in banner.inner_text()
    check_page(pa, "portal-result")

    # The provider's open caseload page shows the alert and the open crisis log, unreloaded.
    pc.get_by_text("crisis alert, moderate").wait_for(timeout=LIVE)
    pc.locator("td").get_by_text("1 open").wait_for(timeout=LIVE)
    check_page(pc, "clinic-caseload")
    pc.get_by_role("button", name="Open chart of Alex Rivera").click()
    pc.get_by_text("Risk moderate · status open").wait_for()
    pc.get_by_text("suicidal-ideation").first.wait_for()

    # A message with an attachment, from the chart.
    pc.get_by_role("button", name="New conversation").click()
    pc.get_by_label("Message", exact=True).fill("Thank you for answering. Here is our safety plan.")
    pc.get_by_label("Attachment (optional)").set_input_files(
        files=[{"name": "safety-plan.txt", "mimeType": "text/plain", "buffer": b"Call 988.\n"}]
    )
    pc.get_by_role("button", name="Send").click()
    pc.get_by_text("Here is our safety plan.").last.wait_for()
    check_page(pc, "clinic-chart")

    # The patient, already on the messages page, receives it live.
    pa.get_by_role("button", name="Messages").click()
    thread = pa.get_by_role("button", name=re.compile("Thank you for answering"))
    thread.wait_for(timeout=LIVE)
    assert "1 unread" in thread.inner_text()
    thread.click()
    pa.get_by_text("Here is our safety plan.").wait_for()
    with pa.expect_download() as download:
        pa.get_by_role("link", name="Download attachment.txt").click()
    assert Path(download.value.path()).read_bytes() == b"Call 988.\n"
    check_page(pa, "portal-messages")
    # The read receipt reaches the provider live; the patient's reply reaches the inbox live.
    pc.get_by_text(re.compile(r"You · .* · read")).wait_for(timeout=LIVE)
    pc.get_by_role("button", name="Inbox").click()
    pc.get_by_role("heading", name="Inbox 0 unread").wait_for()
    pa.get_by_label("Message", exact=True).fill("Thanks, I will read it tonight.")
    pa.get_by_role("button", name="Send").click()
    pc.get_by_role("heading", name="Inbox 1 unread").wait_for(timeout=LIVE)
    assert "Alex Rivera: Thanks, I will read it tonight." in pc.locator("main").inner_text()
    check_page(pc, "clinic-inbox")

    pa.get_by_role("button", name="Assessments").click()
    pa.get_by_role("img", name=re.compile("PHQ-9 score over time")).wait_for()
    check_page(pa, "portal-history")
    pa.get_by_role("button", name="Who viewed my record").click()
    viewer = pa.get_by_role("cell", name="Dr. Robin Lee (provider)").first
    viewer.wait_for()
    assert pa.get_by_role("cell", name="care team").first.is_visible()
    check_page(pa, "portal-access")

    # Nothing of it in the browser's storage, or in any URL the views requested.
    for watched in (patient, clinic):
        storage = watched.page.evaluate("() => Object.keys(localStorage)")
        assert storage == [], storage
        # (the attachment travels as "attachment.txt": its own name could carry PHI)
        phi = ("Alex", "Rivera", "answering", "safety")
        assert not [u for u in watched.urls if any(word in u for word in phi)]

    _second_patient_sees_nothing(browser, base, chart_id)
    _outsider_needs_the_glass(browser, base, outsider, chart_id)

    # Logout clears the session everywhere.
    pa.get_by_role("button", name="Sign out").click()
    pa.get_by_role("heading", name="Sign in").wait_for()
    assert pa.evaluate("() => sessionStorage.length + localStorage.length") == 0
    assert patient.problems == [] and clinic.problems == []


def _second_patient_sees_nothing(browser: Any, base: str, chart_id: str) -> None:
    other = Watched(browser, base, phone=True)
    try:
        page = other.page
        sign_up_patient(page, base, "Blair Stone")
        assert page.get_by_text("Nothing to complete right now.").is_visible()
        assert not page.get_by_role("alert").filter(has_text="988").count()
        page.get_by_role("button", name="Messages").click()
        page.get_by_text("No conversations yet.").wait_for()
        page.get_by_role("button", name="Who viewed my record").click()
        page.get_by_text("No staff access recorded.").wait_for()
        seen = sdk(
            page,
            f"""const n = {{}};
            for (const c of ['IntakeAssessment', 'CrisisInterventionLog', 'Message', 'CareAlert'])
              n[c] = (await new Parse.Query(c).find()).length;
            try {{ await new Parse.Query('PatientProfile').get('{chart_id}'); n.chart = 'seen'; }}
            catch (e) {{ n.chart = e.code; }}
            return n;""",
        )
        assert seen == {
            "IntakeAssessment": 0,
            "CrisisInterventionLog": 0,
            "Message": 0,
            "CareAlert": 0,
            "chart": 101,
        }
        assert other.problems == []
    finally:
        other.close()


def _outsider_needs_the_glass(browser: Any, base: str, outsider: str, chart_id: str) -> None:
    watched = Watched(browser, base)
    try:
        page = watched.page
        staff_sign_in_with_enrolment(page, base, outsider)
        page.get_by_text("No patients assigned to you.").wait_for()
        assert page.get_by_text("No alerts.").is_visible()
        refused = sdk(
            page,
            f"try {{ await new Parse.Query('PatientProfile').get('{chart_id}'); return 'seen'; }}"
            " catch (e) { return e.code; }",
        )
        assert refused == 101
        page.get_by_role("button", name="Emergency access").click()
        page.get_by_label("Patient chart id").fill(chart_id)
        page.get_by_label("Reason (required)").fill("short")
        page.get_by_role("button", name="Request emergency access").click()
        assert page.get_by_role("alert").inner_text()  # the server's refusal, shown
        page.get_by_label("Reason (required)").fill(
            "Patient unresponsive in the ER, no team on call"
        )
        check_page(page, "clinic-emergency")
        page.get_by_role("button", name="Request emergency access").click()
        page.get_by_role("heading", name="Patient chart: Alex Rivera").wait_for()
        page.get_by_role("timer").filter(has_text="Emergency access ends in").wait_for()
        page.get_by_text("Risk moderate · status open").wait_for()
        # The grant ends by itself: the server refuses the chart again.
        page.get_by_text("Emergency access has ended.").wait_for(timeout=40_000)
        page.get_by_text("This chart is not available to you").wait_for(timeout=LIVE)
        assert not page.get_by_text("Risk moderate").count()
        assert watched.problems == []
    finally:
        watched.close()
