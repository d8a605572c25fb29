"""Every resource the FHIR face emits validates against R4 models, and the instruments'
Observations carry their LOINC codes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fhir.conftest import FhirWorld
from tests.fhir.validate import validate, validate_all

TYPES = (
    "Patient",
    "Practitioner",
    "QuestionnaireResponse",
    "Observation",
    "Communication",
    "Appointment",
    "Flag",
    "Provenance",
    "AuditEvent",
)


def _unsigned(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (v.split("?")[0] if k == "url" else _unsigned(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_unsigned(v) for v in value]
    return value


def _codes(resource: dict[str, Any]) -> set[tuple[str, str]]:
    return {(c["system"], c["code"]) for c in resource["code"]["coding"]}


@pytest.mark.parametrize("kind", TYPES)
def test_every_emitted_resource_and_bundle_validates(fw: FhirWorld, kind: str) -> None:
    got = fw.get("master", f"/{kind}", params={"_count": "1000"})
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("application/fhir+json")
    bundle = got.json()
    validate(bundle)
    resources = [e["resource"] for e in bundle["entry"]]
    assert validate_all(resources) > 0
    for resource in resources[:5]:
        read = fw.get("master", f"/{kind}/{resource['id']}")
        assert read.status_code == 200, read.text
        assert _unsigned(read.json()) == _unsigned(resource)  # signed URLs are minted per read
        validate(read.json())


def test_capability_statement_and_outcomes_validate(fw: FhirWorld) -> None:
    meta = fw.http.get("/metadata")
    assert meta.status_code == 200
    statement = meta.json()
    validate(statement)
    assert statement["fhirVersion"] == "4.0.1"
    described = {r["type"] for r in statement["rest"][0]["resource"]}
    assert described == set(TYPES)
    for path, caller, status in (
        ("/Patient", "anon", 401),
        ("/Patient/nosuchthing", "master", 404),
        ("/Patient?bogus=1", "master", 400),
        ("/AuditEvent", "patientA", 403),
        ("/Nonsense", "master", 404),
    ):
        got = fw.get(caller, path)
        assert got.status_code == status, (path, got.text)
        validate(got.json())
        assert got.json()["resourceType"] == "OperationOutcome"


def test_phq9_gad7_and_cssrs_observations_carry_their_codes(fw: FhirWorld) -> None:
    phq9, gad7, cssrs = (fw.assessments[i] for i in ("PHQ-9", "GAD-7", "C-SSRS"))
    by_id = {
        r["id"]: r
        for r in fw.resources("providerOn", "/Observation", patient=f"Patient/{fw.w.patients['A']}")
    }
    validate_all(list(by_id.values()))
    loinc = "http://loinc.org"
    panel, total = by_id[f"{phq9}-panel"], by_id[f"{phq9}-total"]
    assert _codes(panel) == {(loinc, "44249-1")}
    assert _codes(total) == {(loinc, "44261-6")}
    assert {"reference": f"Observation/{phq9}-total"} in panel["hasMember"]
    assert {"reference": f"Observation/{phq9}-item9"} in panel["hasMember"]
    # The amended answers: item1 went from 2 to 3, so the total from 13 to 14.
    assert total["valueQuantity"]["value"] == 14
    assert total["status"] == "amended" and total["meta"]["versionId"] == "2"
    item9 = by_id[f"{phq9}-item9"]
    assert _codes(item9) == {(loinc, "44260-8")}
    assert item9["valueCodeableConcept"]["coding"][0]["code"] == "LA6569-3"  # several days (1)
    assert _codes(by_id[f"{gad7}-panel"]) == {(loinc, "69737-5")}
    assert _codes(by_id[f"{gad7}-total"]) == {(loinc, "70274-6")}
    assert by_id[f"{gad7}-total"]["valueQuantity"]["value"] == 21
    assert by_id[f"{gad7}-item2"]["code"]["coding"][0]["code"] == "68509-9"
    answers = {k: by_id[f"{cssrs}-{k}"]["valueBoolean"] for k in ("q1", "q2", "q3", "q4")}
    assert answers == {"q1": True, "q2": True, "q3": True, "q4": False}
    assert by_id[f"{cssrs}-risk"]["valueCodeableConcept"]["text"] == "moderate"
    # A draft has a QuestionnaireResponse (in progress) but no Observations.
    assert not any(i.startswith(fw.draft) for i in by_id)
    qr = fw.get("providerOn", f"/QuestionnaireResponse/{fw.draft}").json()
    assert qr["status"] == "in-progress"


def test_code_search_picks_observations_across_pages(fw: FhirWorld) -> None:
    phq9 = fw.assessments["PHQ-9"]
    totals = fw.resources("providerOn", "/Observation", code="http://loinc.org|44261-6")
    assert [r["id"] for r in totals] == [f"{phq9}-total"]
    both = fw.resources("providerOn", "/Observation", code="44261-6,70274-6")
    assert {r["id"] for r in both} == {f"{phq9}-total", f"{fw.assessments['GAD-7']}-total"}
    everything = fw.resources("providerOn", "/Observation")
    paged = fw.resources("providerOn", "/Observation", _count="4")
    assert [r["id"] for r in paged] == [r["id"] for r in everything]
    assert len(everything) == len({r["id"] for r in everything}) == 11 + 9 + 8


def test_communication_attachment_is_a_signed_url(fw: FhirWorld) -> None:
    message = fw.get("patientA", f"/Communication/{fw.message}").json()
    attachment = message["payload"][1]["contentAttachment"]
    assert "sig=" in attachment["url"] and "expires=" in attachment["url"]
    assert attachment["title"] == "plan.txt"
    import httpx

    # The URL is bound to the reader's session: the FHIR app's bearer token opens it, and
    # nobody else can use the link.
    body = httpx.get(attachment["url"], headers=fw.headers("patientA"))
    assert body.status_code == 200 and body.content == b"Safety plan: call the clinic."
    assert httpx.get(attachment["url"]).status_code == 403
    assert httpx.get(attachment["url"], headers=fw.headers("patientB")).status_code == 403
    assert message["sender"]["reference"].startswith("Practitioner/")
    assert message["recipient"] == [{"reference": f"Patient/{fw.w.patients['A']}"}]


def test_history_and_provenance_of_an_amendment(fw: FhirWorld) -> None:
    phq9 = fw.assessments["PHQ-9"]
    history = fw.get("providerOn", f"/QuestionnaireResponse/{phq9}/_history")
    assert history.status_code == 200, history.text
    bundle = history.json()
    validate(bundle)
    versions = [e["resource"]["meta"]["versionId"] for e in bundle["entry"]]
    assert versions == ["2", "1"]
    first = fw.get("providerOn", f"/QuestionnaireResponse/{phq9}/_history/1").json()
    assert first["status"] == "completed"
    item1 = next(i for i in first["item"] if i["linkId"] == "item1")
    assert item1["answer"][0]["valueCoding"]["code"] == "LA6570-1"  # 2, before the amendment
    old_total = fw.get("providerOn", f"/Observation/{phq9}-total/_history/1").json()
    assert old_total["valueQuantity"]["value"] == 13
    provenance = fw.resources("providerOn", "/Provenance", target=f"QuestionnaireResponse/{phq9}")
    assert len(provenance) == 1
    assert provenance[0]["target"] == [{"reference": f"QuestionnaireResponse/{phq9}/_history/2"}]
    assert provenance[0]["reason"] == [{"text": "Patient corrected item 1"}]
    assert fw.get("providerOn", f"/Patient/{fw.w.patients['A']}/_history").status_code == 400
