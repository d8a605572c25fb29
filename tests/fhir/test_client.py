"""An official FHIR client from PyPI (SMART on FHIR's ``fhirclient``, whose models are
generated from FHIR R4 4.0.1 and parse strictly) reads and searches unchanged: the only
configuration is the base URL and the Bearer session token."""

from __future__ import annotations

from fhirclient import server as fhir_server
from fhirclient.models.bundle import Bundle
from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient
from fhirclient.models.questionnaireresponse import QuestionnaireResponse

from tests.fhir.conftest import FhirWorld, fhir_base


def _server(fw: FhirWorld, caller: str) -> fhir_server.FHIRServer:
    server = fhir_server.FHIRServer(None, base_uri=fhir_base(fw.w) + "/")
    server.session.headers.update(fw.headers(caller))
    return server


def test_fhirclient_reads_and_searches(fw: FhirWorld) -> None:
    server = _server(fw, "providerOn")
    statement = CapabilityStatement.read_from("metadata", server)
    assert statement.fhirVersion == "4.0.1"
    patient_id = fw.w.patients["A"]
    patient = Patient.read(patient_id, server)
    assert patient.name[0].text == "Patient A"
    assert patient.identifier[0].value.startswith("A-")
    phq9 = fw.assessments["PHQ-9"]
    total = Observation.read(f"{phq9}-total", server)
    assert total.code.coding[0].code == "44261-6" and total.valueQuantity.value == 14
    search = Observation.where(
        struct={"patient": f"Patient/{patient_id}", "code": "http://loinc.org|44261-6,70274-6"}
    )
    found = list(search.perform_resources_iter(server))
    assert {o.code.coding[0].code for o in found} == {"44261-6", "70274-6"}
    # Paging: the client follows link.next until the end.
    pages = list(Observation.where(struct={"_count": "5"}).perform_iter(server))
    assert len(pages) > 1 and all(isinstance(p, Bundle) for p in pages)
    paged = [e.resource.id for p in pages for e in (p.entry or [])]
    assert len(paged) == len(set(paged)) == 28
    responses = list(
        QuestionnaireResponse.where(
            struct={"subject": f"Patient/{patient_id}", "status": "completed,amended"}
        ).perform_resources_iter(server)
    )
    published = {fw.assessments[i] for i in ("PHQ-9", "GAD-7", "C-SSRS")}
    assert {r.id for r in responses} == published | {fw.w.records[("IntakeAssessment", "A")]}
    everything = Patient.where(struct={"_id": patient_id}).perform_resources_iter(server)
    assert [p.id for p in everything] == [patient_id]


def test_fhirclient_sees_what_its_user_may_see(fw: FhirWorld) -> None:
    outsider = _server(fw, "providerOff")
    assert list(Observation.where(struct={}).perform_resources_iter(outsider)) == []
    try:
        Patient.read(fw.w.patients["A"], outsider)
    except Exception as exc:  # fhirclient raises requests' HTTPError for a 404
        assert "404" in str(exc)
    else:
        raise AssertionError("an unassigned provider read patient A")
