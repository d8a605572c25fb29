"""The clinic workspace beyond the story: the chart's versions, history and the server's errors,
and the admin and compliance panels."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect

from tests.support import LiveServer, pointer
from tests.web.browser import Watched, check_page, chromium
from tests.web.flows import (
    LIVE,
    PASSWORD,
    origin,
    rest_staff_session,
    staff,
    staff_sign_in_with_enrolment,
)


def test_admin_and_compliance_panels(web: LiveServer) -> None:
    api = web.client()
    base = origin(web)
    admin, _ = staff(api, "admin", "")
    provider, provider_id = staff(api, "provider", "Dr. Kim Park")
    provider_headers = {"X-Parse-Session-Token": rest_staff_session(api, provider)}
    patient_id = api.create(
        "PatientProfile",
        {
            "user": pointer(
                "_User",
                api.post("/users", {"username": uuid.uuid4().hex, "password": PASSWORD}).json()[
                    "objectId"
                ],
            ),
            "displayName": "Casey Moss",
            "isActive": True,
        },
    )
    granted = api.post(
        "/functions/requestEmergencyAccess",
        {"patientId": patient_id, "reason": "Overdose reported by family"},
        headers=provider_headers,
    )
    assert granted.status_code == 200, granted.text
    with chromium() as browser:
        watched = Watched(browser, base)
        page = watched.page
        try:
            staff_sign_in_with_enrolment(page, base, admin)
            page.get_by_role("button", name="Administration").click()
            page.get_by_label("Role").select_option("compliance")
            page.get_by_role("button", name="Create invitation").click()
            token = page.locator("form code").inner_text()
            joined = api.post(
                "/users",
                {"username": uuid.uuid4().hex, "password": PASSWORD, "invitationToken": token},
            )
            assert joined.status_code == 201, joined.text
            assert "compliance" in page.get_by_role("status").inner_text()
            page.get_by_label("Patient chart id").fill(patient_id)
            page.get_by_label("Provider user id").fill(provider_id)
            page.get_by_role("button", name="Assign provider", exact=True).click()
            page.get_by_text("Assigned.").wait_for()
            check_page(page, "clinic-admin")
            seen = api.get(f"/classes/PatientProfile/{patient_id}", headers=provider_headers)
            assert seen.status_code == 200
            page.get_by_role("button", name="Unassign provider").click()
            page.get_by_text("Unassigned.").wait_for()

            page.get_by_role("button", name="Compliance").click()
            page.get_by_role("cell", name="Overdose reported by family").wait_for()
            page.get_by_role("button", name="Verify audit log").click()
            page.get_by_text(re.compile(r"Audit log verified: \d+ entries")).wait_for()
            page.get_by_label("Action").fill("careteam.unassign")
            page.get_by_role("button", name="Filter").click()
            # The unfiltered list shown first has both actions: wait for the filtered answer.
            expect(page.get_by_role("cell", name="careteam.assign", exact=True)).to_have_count(0)
            page.get_by_role("cell", name="careteam.unassign").first.wait_for()
            check_page(page, "clinic-compliance")
            assert watched.problems == []
        finally:
            watched.close()


def test_the_chart_keeps_versions_history_and_the_server_s_errors(web: LiveServer) -> None:
    """Amend with a reason and mark entered-in-error (each version kept), move a crisis log
    forward with a note (its history shown), and a double booking shown as the server's error."""
    api = web.client()
    base = origin(web)
    provider, provider_id = staff(api, "provider", "Dr. Jo Banks")
    name = f"pat-{uuid.uuid4().hex[:8]}"
    made = api.post("/users", {"username": name, "password": PASSWORD})
    patient_headers = {"X-Parse-Session-Token": made.json()["sessionToken"]}
    profile = api.post(
        "/classes/PatientProfile",
        {
            "user": pointer("_User", made.json()["objectId"]),
            "displayName": "Morgan Reed",
        },
        headers=patient_headers,
    ).json()["objectId"]
    api.post(
        "/functions/assignProvider", {"patientId": profile, "providerId": provider_id}, master=True
    )
    with chromium() as browser:
        watched = Watched(browser, base)
        page = watched.page
        try:
            staff_sign_in_with_enrolment(page, base, provider)
            page.get_by_role("button", name="Open chart of Morgan Reed").click()
            page.get_by_role("button", name="Assign GAD-7").click()
            page.get_by_text("GAD-7 · assigned").wait_for()
            waiting = api.get(
                "/classes/IntakeAssessment",
                params={"where": {"status": "assigned"}},
                headers=patient_headers,
            ).json()["results"]
            submitted = api.post(
                "/functions/submitInstrument",
                {
                    "assessmentId": waiting[0]["objectId"],
                    "responses": {f"item{n}": 2 for n in range(1, 8)},
                },
                headers=patient_headers,
            )
            assert submitted.status_code == 200, submitted.text
            page.get_by_text(re.compile(r"GAD-7 · final · v1 .* score 14")).wait_for(timeout=LIVE)

            page.get_by_label("Recommendations").fill("Weekly CBT sessions")
            page.get_by_label("Reason for the amendment").fill("Plan agreed with the patient")
            page.get_by_role("button", name="Amend", exact=True).click()
            page.get_by_text(re.compile(r"GAD-7 · amended · v2")).wait_for()
            page.get_by_text("Earlier versions (1)").click()
            page.get_by_text("reason: Plan agreed with the patient").wait_for()
            page.get_by_label("Entered in error: reason").fill("Wrong patient's answers")
            page.get_by_role("button", name="Mark entered-in-error").click()
            page.get_by_text(re.compile(r"GAD-7 · entered-in-error · v3")).wait_for()

            page.get_by_text("Open a crisis log").click()
            page.get_by_label("Risk level").select_option("high")
            page.get_by_label("What happened").fill("Called the clinic in distress")
            page.get_by_role("button", name="Open crisis log").click()
            page.get_by_text("Risk high · status open").wait_for()
            page.get_by_label("Note for moving to active").fill("Safety plan started")
            page.get_by_role("button", name="Mark active").click()
            page.get_by_text("Risk high · status active").wait_for()
            page.get_by_text("History (2)").click()
            page.get_by_text(
                re.compile(r"status: open → active \(note: Safety plan started\)")
            ).wait_for()

            for _ in range(2):
                page.get_by_label("Start").fill("2031-03-04T10:00")
                page.get_by_role("button", name="Book appointment").click()
                page.wait_for_timeout(500)
            refusal = page.get_by_role("alert").filter(has_text=re.compile("book", re.I))
            refusal.wait_for()
            assert page.locator("#appts-title + ul li").count() == 1
            assert watched.problems == []
        finally:
            watched.close()
