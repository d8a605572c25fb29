"""Search parameters: dates with prefixes, tokens, references, strings, _sort, _include,
paging, and the OperationOutcome of a bad search."""

from __future__ import annotations

import pytest

from tests.fhir.conftest import FhirWorld


def _ids(fw: FhirWorld, caller: str, path: str, **params: str) -> list[str]:
    return [r["id"] for r in fw.resources(caller, path, **params)]


def test_date_prefixes(fw: FhirWorld) -> None:
    phq9 = fw.assessments["PHQ-9"]
    qr = "/QuestionnaireResponse"
    on_day = _ids(fw, "providerOn", qr, authored="2026-02-03")
    assert phq9 in on_day and fw.draft not in on_day  # the draft is dated the 4th
    assert phq9 in _ids(fw, "providerOn", qr, authored="eq2026-02")
    assert phq9 in _ids(fw, "providerOn", qr, authored="ge2026-02-03T09:30:00Z")
    assert phq9 not in _ids(fw, "providerOn", qr, authored="gt2026-02-03")
    assert phq9 in _ids(fw, "providerOn", qr, authored="lt2026-02-04")
    assert phq9 not in _ids(fw, "providerOn", qr, authored="lt2026-02-03")
    assert phq9 in _ids(fw, "providerOn", qr, authored="le2026-02-03")
    assert phq9 not in _ids(fw, "providerOn", qr, authored="ne2026-02-03")
    # Two date parameters are ANDed: a range.
    got = fw.get(
        "providerOn", qr, params=[("authored", "ge2026-02-01"), ("authored", "lt2026-02-04")]
    )
    ids = [e["resource"]["id"] for e in got.json()["entry"]]
    assert phq9 in ids and fw.draft not in ids
    # A time zone offset is honoured: 10:30+01:00 is 09:30Z.
    assert phq9 in _ids(fw, "providerOn", qr, authored="2026-02-03T10:30+01:00")


def test_tokens_strings_references_and_sort(fw: FhirWorld) -> None:
    w = fw.w
    # Other modules' worlds share the database (and the names): look for ours among them.
    named_a = _ids(fw, "admin", "/Patient", name="patient a")
    assert w.patients["A"] in named_a and w.patients["B"] not in named_a
    exact_b = _ids(fw, "admin", "/Patient", **{"name:exact": "Patient B"})
    assert w.patients["B"] in exact_b and w.patients["A"] not in exact_b
    assert w.patients["A"] not in _ids(fw, "admin", "/Patient", **{"name:exact": "patient a"})
    mrn = fw.get("admin", f"/Patient/{w.patients['A']}").json()["identifier"][0]["value"]
    assert _ids(fw, "admin", "/Patient", identifier=mrn) == [w.patients["A"]]
    names = [p["name"][0]["text"] for p in fw.resources("admin", "/Patient", _sort="-name")]
    assert names == sorted(names, reverse=True)
    active = _ids(fw, "providerOn", "/Flag", status="active")
    assert set(fw.crisis) <= set(active)
    assert not set(fw.crisis) & set(_ids(fw, "providerOn", "/Flag", status="inactive"))
    mine = _ids(fw, "providerOn", "/Appointment", patient=f"Patient/{w.patients['A']}")
    assert mine == [w.records[("Appointment", "A")]]
    assert _ids(fw, "providerOn", "/Appointment", patient=f"Patient/{w.patients['B']}") == []
    dates = [
        r["authored"]
        for r in fw.resources("providerOn", "/QuestionnaireResponse", _sort="authored")
    ]
    assert dates == sorted(dates)


def test_include_brings_the_patient_and_the_author(fw: FhirWorld) -> None:
    got = fw.get(
        "providerOn",
        "/Observation",
        params=[
            ("code", "44261-6"),
            ("_include", "Observation:subject"),
            ("_include", "Observation:performer"),
        ],
    )
    assert got.status_code == 200, got.text
    entries = got.json()["entry"]
    modes = {(e["resource"]["resourceType"], e["search"]["mode"]) for e in entries}
    assert modes == {("Observation", "match"), ("Patient", "include"), ("Practitioner", "include")}
    # An include never reveals what the caller may not read: patient B's own searches do not
    # bring in patient A.
    got = fw.get("patientB", "/Communication", params={"_include": "Communication:subject"})
    included = [
        e["resource"]["id"] for e in got.json()["entry"] if e["search"]["mode"] == "include"
    ]
    assert included == [fw.w.patients["B"]]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"bogus": "1"}, "Unknown search parameter"),
        ({"authored": "yesterday"}, "Invalid date"),
        ({"_sort": "colour"}, "Cannot sort"),
        ({"_include": "QuestionnaireResponse:nothing"}, "Unsupported _include"),
        ({"status": "whatever"}, "Unknown code"),
        ({"_count": "-1"}, "_count"),
        ({"subject": "Practitioner/abc"}, "Expected a reference to Patient"),
        ({"_format": "xml"}, "Only JSON"),
    ],
)
def test_bad_searches_answer_400_with_an_outcome(
    fw: FhirWorld, params: dict[str, str], fragment: str
) -> None:
    got = fw.get("providerOn", "/QuestionnaireResponse", params=params)
    assert got.status_code == 400, got.text
    issue = got.json()["issue"][0]
    assert issue["severity"] == "error" and fragment in issue["diagnostics"]


def test_post_search_and_count_only(fw: FhirWorld) -> None:
    got = fw.request(
        "providerOn",
        "POST",
        "/Flag/_search",
        data={"patient": f"Patient/{fw.w.patients['A']}"},
    )
    assert got.status_code == 200, got.text
    assert {e["resource"]["id"] for e in got.json()["entry"]} >= set(fw.crisis)
    counted = fw.get("providerOn", "/Flag", params={"_count": "0"}).json()
    assert counted["total"] >= len(fw.crisis) and "entry" not in counted
