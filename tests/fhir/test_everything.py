"""``$everything`` and the right-of-access export: what each caller gets, and the disclosure
entries they leave."""

from __future__ import annotations

import io
import zipfile

import pytest
from pypdf import PdfReader

from tests.fhir.conftest import FhirWorld
from tests.fhir.validate import validate
from tests.support import pointer


def _disclosures(fw: FhirWorld, caller: str) -> list[dict]:
    return fw.w.api.get(
        "/classes/AuditLog",
        master=True,
        params={
            "where": {"action": "phi.disclosure", "actor": pointer("_User", fw.w.users[caller])},
            "order": "-createdAt",
        },
    ).json()["results"]


@pytest.mark.parametrize(
    ("caller", "outcome"),
    [
        ("patientA", "full"),
        ("providerOn", "full"),
        ("admin", "demographics"),
        ("patientB", 404),
        ("providerOff", 404),
        ("compliance", 404),
        ("anon", 401),
    ],
)
def test_everything(fw: FhirWorld, caller: str, outcome: object) -> None:
    patient = fw.w.patients["A"]
    got = fw.get(caller, f"/Patient/{patient}/$everything")
    if isinstance(outcome, int):
        assert got.status_code == outcome, got.text
        return
    assert got.status_code == 200, got.text
    bundle = got.json()
    validate(bundle)
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds[0] == "Patient" and bundle["entry"][0]["resource"]["id"] == patient
    if outcome == "demographics":  # an admin sees the chart's identity, not its content
        assert set(kinds) == {"Patient"}
    else:
        assert {
            "QuestionnaireResponse",
            "Observation",
            "Flag",
            "Communication",
            "Appointment",
            "Provenance",
            "Practitioner",
        } <= set(kinds)
        subjects = {
            e["resource"].get("subject", {}).get("reference")
            for e in bundle["entry"]
            if "subject" in e["resource"]
        }
        assert subjects == {f"Patient/{patient}"}
        ids = {e["resource"]["id"] for e in bundle["entry"]}
        assert (fw.draft in ids) == (caller == "providerOn")  # drafts stay with the team
    entry = _disclosures(fw, caller)[0]
    assert entry["entityId"] == patient
    assert entry["metadata"]["operation"] == "$everything"
    assert entry["metadata"]["resources"]["Patient"] == 1


def test_right_of_access_zip_has_the_bundle_and_a_readable_pdf(fw: FhirWorld) -> None:
    patient = fw.w.patients["A"]
    got = fw.get("patientA", f"/Patient/{patient}/$right-of-access")
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(got.content))
    assert sorted(archive.namelist()) == ["record.json", "summary.pdf"]
    import orjson

    bundle = orjson.loads(archive.read("record.json"))
    validate(bundle)
    assert bundle["type"] == "collection"
    text = "\n".join(
        page.extract_text() for page in PdfReader(io.BytesIO(archive.read("summary.pdf"))).pages
    )
    for expected in (
        "Health record summary",
        "Patient A",
        "PHQ-9",
        "GAD-7",
        "C-SSRS",
        "14",
        "Patient corrected item 1",
        "Your safety plan is attached.",
    ):
        assert expected in text, expected
    entry = _disclosures(fw, "patientA")[0]
    assert entry["metadata"]["operation"] == "$right-of-access"
    assert entry["metadata"]["format"] == "zip"
    pdf = fw.get("providerOn", f"/Patient/{patient}/$right-of-access", params={"_format": "pdf"})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert fw.get("patientB", f"/Patient/{patient}/$right-of-access").status_code == 404
