"""QuestionnaireResponse, Observation and Provenance from ``IntakeAssessment`` (and its
``AssessmentVersion`` snapshots).

One assessment is one QuestionnaireResponse (every status; drafts only reach those who may read
them) and, once published, a set of Observations: a panel Observation per instrument whose
``hasMember`` lists the total score and one Observation per item (PHQ-9 item 9, the
suicidal-ideation item, is one of them), coded in LOINC; C-SSRS screener answers are coded in
MindHarbor's own code system (LOINC has no screener codes the scoring rules map to one to one).
Observation ids are ``<assessmentId>-<kind>`` so a read of any of them is a read of the one
assessment it comes from, with the same access check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mindharbor.fhir.encode.common import (
    LOINC,
    NS,
    UCUM,
    Context,
    date_iso,
    drop_empty,
    meta,
    patient_ref,
    pointer_id,
    text_or_none,
)

CSSRS_SYSTEM = f"{NS}/CodeSystem/cssrs-screener"
SEVERITY_SYSTEM = f"{NS}/CodeSystem/instrument-severity"
ORDINAL = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
SURVEY = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "survey",
            "display": "Survey",
        }
    ]
}
# LOINC answer list LL358-3, shared by the PHQ-9 and GAD-7 items.
FREQUENCY = (
    ("LA6568-5", "Not at all"),
    ("LA6569-3", "Several days"),
    ("LA6570-1", "More than half the days"),
    ("LA6571-9", "Nearly every day"),
)


@dataclass(frozen=True)
class Item:
    key: str  # the key in IntakeAssessment.responses
    system: str
    code: str
    text: str


@dataclass(frozen=True)
class Instrument:
    name: str
    questionnaire: str  # canonical URL in QuestionnaireResponse.questionnaire
    panel: tuple[str, str, str]  # (system, code, display)
    total: tuple[str, str, str] | None
    items: tuple[Item, ...]
    boolean: bool = False  # yes/no answers (C-SSRS) rather than 0-3 frequencies


def _loinc_items(pairs: tuple[tuple[str, str], ...]) -> tuple[Item, ...]:
    return tuple(Item(f"item{n}", LOINC, code, text) for n, (code, text) in enumerate(pairs, 1))


PHQ9 = Instrument(
    "PHQ-9",
    "http://loinc.org/q/44249-1",
    (LOINC, "44249-1", "PHQ-9 quick depression assessment panel"),
    (LOINC, "44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]"),
    _loinc_items(
        (
            ("44250-9", "Little interest or pleasure in doing things"),
            ("44255-8", "Feeling down, depressed, or hopeless"),
            ("44259-0", "Trouble falling or staying asleep, or sleeping too much"),
            ("44254-1", "Feeling tired or having little energy"),
            ("44251-7", "Poor appetite or overeating"),
            ("44258-2", "Feeling bad about yourself - or that you are a failure"),
            ("44252-5", "Trouble concentrating on things"),
            ("44253-3", "Moving or speaking slowly, or being fidgety or restless"),
            ("44260-8", "Thoughts that you would be better off dead, or of hurting yourself"),
        )
    ),
)
GAD7 = Instrument(
    "GAD-7",
    "http://loinc.org/q/69737-5",
    (LOINC, "69737-5", "Generalized anxiety disorder 7 item (GAD-7)"),
    (LOINC, "70274-6", "Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]"),
    _loinc_items(
        (
            ("69725-0", "Feeling nervous, anxious or on edge"),
            ("68509-9", "Not being able to stop or control worrying"),
            ("69733-4", "Worrying too much about different things"),
            ("69734-2", "Trouble relaxing"),
            ("69735-9", "Being so restless that it is hard to sit still"),
            ("69689-8", "Becoming easily annoyed or irritable"),
            ("69736-7", "Feeling afraid as if something awful might happen"),
        )
    ),
)
CSSRS = Instrument(
    "C-SSRS",
    f"{NS}/Questionnaire/cssrs-screener",
    (CSSRS_SYSTEM, "screener", "Columbia Suicide Severity Rating Scale, screener"),
    None,
    (
        Item("q1", CSSRS_SYSTEM, "q1", "Wished you were dead or could go to sleep and not wake up"),
        Item("q2", CSSRS_SYSTEM, "q2", "Actual thoughts of killing yourself"),
        Item("q3", CSSRS_SYSTEM, "q3", "Thought about how you might do this"),
        Item("q4", CSSRS_SYSTEM, "q4", "Had these thoughts and some intention of acting on them"),
        Item("q5", CSSRS_SYSTEM, "q5", "Started to work out or worked out the details of a plan"),
        Item("q6", CSSRS_SYSTEM, "q6", "Ever done, started or prepared to end your life"),
        Item("q6_recent", CSSRS_SYSTEM, "q6_recent", "Was this within the past 3 months"),
    ),
    boolean=True,
)
CSSRS_RISK = (CSSRS_SYSTEM, "risk-level", "C-SSRS screener risk level")
INSTRUMENTS = {i.name: i for i in (PHQ9, GAD7, CSSRS)}
PUBLISHED = ("final", "amended", "entered-in-error")
QR_STATUS = {
    "draft": "in-progress",
    "assigned": "in-progress",
    "final": "completed",
    "amended": "amended",
    "entered-in-error": "entered-in-error",
}


def observation_kinds(instrument: Instrument) -> list[tuple[str, tuple[str, str, str]]]:
    """(id suffix, code) of every Observation an administration of ``instrument`` yields."""
    kinds: list[tuple[str, tuple[str, str, str]]] = [("panel", instrument.panel)]
    if instrument.total is not None:
        kinds.append(("total", instrument.total))
    else:
        kinds.append(("risk", CSSRS_RISK))
    kinds.extend((item.key, (item.system, item.code, item.text)) for item in instrument.items)
    return kinds


def _frequency(value: Any) -> dict[str, Any] | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(FREQUENCY):
        return None
    code, display = FREQUENCY[value]
    return {
        "system": LOINC,
        "code": code,
        "display": display,
        "extension": [{"url": ORDINAL, "valueDecimal": value}],
    }


def _answer(instrument: Instrument | None, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return {"valueBoolean": value}
    if instrument is not None and not instrument.boolean:
        coding = _frequency(value)
        if coding is not None:
            return {"valueCoding": coding}
    if isinstance(value, int):
        return {"valueInteger": value}
    if isinstance(value, float):
        return {"valueDecimal": value}
    return {"valueString": str(value)}


def questionnaire_response(obj: dict[str, Any], ctx: Context) -> list[dict[str, Any]]:
    name = obj.get("instrument")
    instrument = INSTRUMENTS.get(name) if isinstance(name, str) else None
    responses: dict[str, Any] = obj["responses"] if isinstance(obj.get("responses"), dict) else {}
    items: list[dict[str, Any]] = []
    known = {i.key: i for i in instrument.items} if instrument else {}
    for key, value in responses.items():
        answer = _answer(instrument, value)
        item = known.get(key)
        items.append(
            {
                "linkId": key,
                "text": item.text if item else None,
                "answer": [answer] if answer else [],
            }
        )
    for key in ("details", "recommendations"):
        text = text_or_none(obj.get(key))
        if text:
            items.append(
                {"linkId": key, "text": key.capitalize(), "answer": [{"valueString": text}]}
            )
    if isinstance(obj.get("score"), int | float) and not isinstance(obj.get("score"), bool):
        items.append(
            {
                "linkId": "total",
                "text": "Total score",
                "answer": [{"valueInteger": int(obj["score"])}],
            }
        )
    if text_or_none(obj.get("severity")):
        items.append(
            {"linkId": "severity", "text": "Severity", "answer": [{"valueString": obj["severity"]}]}
        )
    questionnaire = (
        instrument.questionnaire if instrument else f"{NS}/Questionnaire/{name or 'intake'}"
    )
    resource = {
        "resourceType": "QuestionnaireResponse",
        "id": obj["objectId"],
        "meta": meta(obj, obj.get("version") or 1),
        "questionnaire": questionnaire,
        "status": QR_STATUS.get(str(obj.get("status")), "in-progress"),
        "subject": patient_ref(obj),
        "authored": date_iso(obj.get("assessmentDate")),
        "author": ctx.user_ref(pointer_id(obj.get("assessor"))),
        "item": items,
    }
    return [drop_empty(resource)]


def _code(code: tuple[str, str, str]) -> dict[str, Any]:
    system, value, display = code
    return {"coding": [{"system": system, "code": value, "display": display}], "text": display}


def observations(obj: dict[str, Any], ctx: Context) -> list[dict[str, Any]]:
    """Every Observation of one published, scored assessment (none for drafts or intake)."""
    name = obj.get("instrument")
    instrument = INSTRUMENTS.get(name) if isinstance(name, str) else None
    status = obj.get("status")
    if instrument is None or status not in PUBLISHED:
        return []
    aid = obj["objectId"]
    responses: dict[str, Any] = obj["responses"] if isinstance(obj.get("responses"), dict) else {}
    common = {
        "resourceType": "Observation",
        "meta": meta(obj, obj.get("version") or 1),
        "status": status,
        "category": [SURVEY],
        "subject": patient_ref(obj),
        "effectiveDateTime": date_iso(obj.get("assessmentDate")),
        "issued": date_iso(obj.get("updatedAt")),
        "performer": [ref] if (ref := ctx.user_ref(pointer_id(obj.get("assessor")))) else [],
        "derivedFrom": [{"reference": f"QuestionnaireResponse/{aid}"}],
    }
    out: list[dict[str, Any]] = []
    kinds = observation_kinds(instrument)
    for suffix, code in kinds:
        resource: dict[str, Any] = {**common, "id": f"{aid}-{suffix}", "code": _code(code)}
        if suffix == "panel":
            resource["hasMember"] = [
                {"reference": f"Observation/{aid}-{other}"} for other, _ in kinds[1:]
            ]
        elif suffix == "total":
            score = obj.get("score")
            if not isinstance(score, int | float) or isinstance(score, bool):
                continue
            resource["valueQuantity"] = {
                "value": score,
                "unit": "{score}",
                "system": UCUM,
                "code": "{score}",
            }
            if text_or_none(obj.get("severity")):
                resource["interpretation"] = [_severity(str(obj["severity"]), instrument)]
        elif suffix == "risk":
            if not text_or_none(obj.get("severity")):
                continue
            resource["valueCodeableConcept"] = _severity(str(obj["severity"]), instrument)
        else:
            value = responses.get(suffix)
            if value is None:
                continue
            if isinstance(value, bool):
                resource["valueBoolean"] = value
            elif (coding := _frequency(value)) is not None:
                resource["valueCodeableConcept"] = {"coding": [coding], "text": coding["display"]}
            else:
                resource["valueString"] = str(value)
        out.append(drop_empty(resource))
    return out


def _severity(severity: str, instrument: Instrument) -> dict[str, Any]:
    return {
        "coding": [
            {
                "system": SEVERITY_SYSTEM,
                "code": f"{instrument.name.lower()}-{severity.replace(' ', '-')}",
                "display": severity,
            }
        ],
        "text": severity,
    }


def provenance(obj: dict[str, Any], ctx: Context) -> list[dict[str, Any]]:
    """An ``AssessmentVersion``: version ``n`` was replaced by ``n + 1`` for a reason."""
    aid = pointer_id(obj.get("assessment"))
    version = int(obj.get("version") or 1)
    who = ctx.user_ref(pointer_id(obj.get("changedBy"))) or {"display": "MindHarbor"}
    resource = {
        "resourceType": "Provenance",
        "id": obj["objectId"],
        "meta": meta(obj),
        "target": [{"reference": f"QuestionnaireResponse/{aid}/_history/{version + 1}"}],
        "recorded": date_iso(obj.get("createdAt")),
        "activity": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                    "code": "UPDATE",
                    "display": "revise",
                }
            ]
        },
        "reason": [{"text": obj["reason"]}] if text_or_none(obj.get("reason")) else [],
        "agent": [
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                            "code": "author",
                        }
                    ]
                },
                "who": who,
            }
        ],
        "entity": [
            {
                "role": "revision",
                "what": {"reference": f"QuestionnaireResponse/{aid}/_history/{version}"},
            }
        ],
    }
    return [drop_empty(resource)]


def snapshot_object(version: dict[str, Any]) -> dict[str, Any]:
    """The assessment as it was at an ``AssessmentVersion`` (its wire snapshot)."""
    snap = dict(version.get("snapshot") or {})
    snap.setdefault("version", version.get("version"))
    snap["updatedAt"] = snap.get("updatedAt") or version.get("createdAt")
    return snap
