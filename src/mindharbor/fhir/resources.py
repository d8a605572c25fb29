"""The resource types of the FHIR face: which Parse class each reads, its encoder, its search
parameters, sort keys and ``_include`` paths. The CapabilityStatement is generated from this
table, so what the server says it supports is what it does."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mindharbor.fhir import search as s
from mindharbor.fhir.encode import assessments, audit, care, people
from mindharbor.fhir.encode.common import MRN_SYSTEM, USER_SYSTEM, Encoder
from mindharbor.fhir.outcome import bad_request


@dataclass(frozen=True)
class Include:
    field: str  # pointer field on the Parse object
    target: str  # FHIR type: "Patient" (PatientProfile id) or "Practitioner" (a _User's profile)


@dataclass(frozen=True)
class ResourceType:
    name: str
    parse_class: str
    encode: Encoder
    params: dict[str, s.Param]
    sorts: dict[str, str]
    default_sort: str
    includes: dict[str, Include] = field(default_factory=dict)
    base_where: dict[str, Any] = field(default_factory=dict)
    user_fields: tuple[str, ...] = ()  # _User pointers, shown as Practitioner/Patient references
    patient_field: str | None = "patient"  # the patient compartment ($everything)
    expands: bool = False  # one object yields several resources (Observation)
    history: bool = False

    def object_id(self, resource_id: str) -> str:
        """The Parse objectId behind a resource id (``abc-total`` → ``abc``)."""
        return resource_id.split("-", 1)[0] if self.expands else resource_id


def _p(name: str, kind: str, translate: s.Translate, doc: str) -> tuple[str, s.Param]:
    return name, s.Param(name, kind, translate, doc)


def _common(
    patient: bool = True, last_updated: bool = True, expand: bool = False
) -> dict[str, s.Param]:
    out = dict(
        [
            _p(
                "_id",
                "token",
                s.ids((lambda i: i.split("-", 1)[0]) if expand else (lambda i: i)),
                "logical id",
            )
        ]
    )
    if last_updated:
        out.update([_p("_lastUpdated", "date", s.date("updatedAt"), "meta.lastUpdated")])
    if patient:
        ref = s.reference("patient", "Patient", "PatientProfile")
        out.update(
            [
                _p("patient", "reference", ref, "the patient (Patient/id)"),
                _p("subject", "reference", ref, "the patient (Patient/id)"),
            ]
        )
    return out


def _identifier(values: list[str], modifier: str | None) -> s.Clause:
    if modifier:
        raise bad_request(f"Modifier :{modifier} is not supported on identifier.")
    clauses: list[dict[str, Any]] = []
    for system, value in s.token_values(values):
        if system in (None, "", MRN_SYSTEM):
            clauses.append({"medicalRecordNumber": value})
        elif system == USER_SYSTEM:
            clauses.append({"user": {"__type": "Pointer", "className": "_User", "objectId": value}})
        else:
            clauses.append({"objectId": {"$in": []}})  # an identifier system we never issue
    return s.Clause(clauses[0] if len(clauses) == 1 else {"$or": clauses})


def _observation_code(values: list[str], modifier: str | None) -> s.Clause:
    """Which instruments' assessments to read, and which of their Observations to keep."""
    if modifier:
        raise bad_request(f"Modifier :{modifier} is not supported on code.")
    wanted: set[tuple[str | None, str]] = set(s.token_values(values))
    instruments = set()
    for instrument in assessments.INSTRUMENTS.values():
        for _, (system, code, _) in assessments.observation_kinds(instrument):
            if (None, code) in wanted or (system, code) in wanted:
                instruments.add(instrument.name)

    def keep(resource: dict[str, Any]) -> bool:
        for coding in resource.get("code", {}).get("coding", []):
            if (None, coding["code"]) in wanted or (coding["system"], coding["code"]) in wanted:
                return True
        return False

    return s.Clause({"instrument": {"$in": sorted(instruments)}}, keep)


def _category(values: list[str], modifier: str | None) -> s.Clause:
    codes = {code for _, code in s.token_values(values)}
    return s.Clause({} if "survey" in codes else {"objectId": {"$in": []}})


def _questionnaire(values: list[str], modifier: str | None) -> s.Clause:
    names = [i.name for i in assessments.INSTRUMENTS.values() if i.questionnaire in values]
    return s.Clause({"instrument": {"$in": names}})


_PATIENT_INCLUDE = {
    "patient": Include("patient", "Patient"),
    "subject": Include("patient", "Patient"),
}

TYPES: dict[str, ResourceType] = {
    r.name: r
    for r in (
        ResourceType(
            "Patient",
            "PatientProfile",
            people.patient,
            {
                **_common(patient=False),
                **dict(
                    [
                        _p("identifier", "token", _identifier, "MRN or user id"),
                        _p("name", "string", s.string("displayName"), "name (starts with)"),
                        _p("birthdate", "date", s.date("dateOfBirth"), "date of birth"),
                        _p("active", "token", s.boolean("isActive"), "true / false"),
                    ]
                ),
            },
            {"name": "displayName", "birthdate": "dateOfBirth", "_lastUpdated": "updatedAt"},
            "displayName",
            patient_field=None,
        ),
        ResourceType(
            "Practitioner",
            "ProviderProfile",
            people.practitioner,
            {
                **_common(patient=False),
                **dict(
                    [
                        _p("name", "string", s.string("displayName"), "name (starts with)"),
                        _p("active", "token", s.boolean("isActive"), "true / false"),
                    ]
                ),
            },
            {"name": "displayName", "_lastUpdated": "updatedAt"},
            "displayName",
            patient_field=None,
        ),
        ResourceType(
            "QuestionnaireResponse",
            "IntakeAssessment",
            assessments.questionnaire_response,
            {
                **_common(),
                **dict(
                    [
                        _p("authored", "date", s.date("assessmentDate"), "when administered"),
                        _p(
                            "status",
                            "token",
                            s.token_map(
                                "status",
                                {
                                    "in-progress": ["draft", "assigned"],
                                    "completed": ["final"],
                                    "amended": ["amended"],
                                    "entered-in-error": ["entered-in-error"],
                                },
                            ),
                            "in-progress | completed | amended | entered-in-error",
                        ),
                        _p("questionnaire", "reference", _questionnaire, "instrument canonical"),
                    ]
                ),
            },
            {"authored": "assessmentDate", "_lastUpdated": "updatedAt"},
            "-assessmentDate",
            includes={**_PATIENT_INCLUDE, "author": Include("assessor", "Practitioner")},
            user_fields=("assessor",),
            history=True,
        ),
        ResourceType(
            "Observation",
            "IntakeAssessment",
            lambda obj, ctx: assessments.observations(obj, ctx),
            {
                **_common(expand=True),
                **dict(
                    [
                        _p("code", "token", _observation_code, "LOINC or C-SSRS code"),
                        _p("date", "date", s.date("assessmentDate"), "effective date"),
                        _p(
                            "status",
                            "token",
                            s.token_map(
                                "status",
                                {
                                    "final": ["final"],
                                    "amended": ["amended"],
                                    "entered-in-error": ["entered-in-error"],
                                },
                            ),
                            "final | amended | entered-in-error",
                        ),
                        _p("category", "token", _category, "survey"),
                    ]
                ),
            },
            {"date": "assessmentDate", "_lastUpdated": "updatedAt"},
            "-assessmentDate",
            includes={**_PATIENT_INCLUDE, "performer": Include("assessor", "Practitioner")},
            base_where={
                "instrument": {"$in": sorted(assessments.INSTRUMENTS)},
                "status": {"$in": list(assessments.PUBLISHED)},
            },
            user_fields=("assessor",),
            expands=True,
            history=True,
        ),
        ResourceType(
            "Communication",
            "Message",
            care.communication,
            {
                **_common(),
                **dict(
                    [
                        _p("sent", "date", s.date("sentAt"), "when sent"),
                        _p(
                            "status",
                            "token",
                            s.token_map("status", {"completed": ["sent", "delivered", "read"]}),
                            "completed",
                        ),
                        _p(
                            "identifier",
                            "token",
                            lambda v, m: s.Clause(
                                {"conversationId": {"$in": [c for _, c in s.token_values(v)]}}
                            ),
                            "conversation id",
                        ),
                    ]
                ),
            },
            {"sent": "sentAt", "_lastUpdated": "updatedAt"},
            "-sentAt",
            includes={
                **_PATIENT_INCLUDE,
                "sender": Include("from", "Practitioner"),
                "recipient": Include("to", "Practitioner"),
            },
            user_fields=("from", "to"),
        ),
        ResourceType(
            "Appointment",
            "Appointment",
            care.appointment,
            {
                **_common(),
                **dict(
                    [
                        _p("date", "date", s.date("startAt"), "start"),
                        _p(
                            "status",
                            "token",
                            s.token_map(
                                "status",
                                {
                                    "booked": ["scheduled", "confirmed"],
                                    "checked-in": ["checked-in"],
                                    "fulfilled": ["completed"],
                                    "cancelled": ["cancelled"],
                                    "noshow": ["no-show"],
                                },
                            ),
                            "booked | checked-in | fulfilled | cancelled | noshow",
                        ),
                    ]
                ),
            },
            {"date": "startAt", "_lastUpdated": "updatedAt"},
            "startAt",
            includes={
                **_PATIENT_INCLUDE,
                "actor": Include("provider", "Practitioner"),
                "practitioner": Include("provider", "Practitioner"),
            },
            user_fields=("provider",),
        ),
        ResourceType(
            "Flag",
            "CrisisInterventionLog",
            care.flag,
            {
                **_common(),
                **dict(
                    [
                        _p("date", "date", s.date("interventionDate"), "intervention date"),
                        _p(
                            "status",
                            "token",
                            s.token_map(
                                "status",
                                {"active": ["open", "active"], "inactive": ["resolved", "closed"]},
                            ),
                            "active (open crisis logs) | inactive",
                        ),
                    ]
                ),
            },
            {"date": "interventionDate", "_lastUpdated": "updatedAt"},
            "-interventionDate",
            includes={**_PATIENT_INCLUDE, "author": Include("recordedBy", "Practitioner")},
            user_fields=("recordedBy",),
        ),
        ResourceType(
            "Provenance",
            "AssessmentVersion",
            assessments.provenance,
            {
                **_common(),
                **dict(
                    [
                        _p("recorded", "date", s.date("createdAt"), "when amended"),
                        _p(
                            "target",
                            "reference",
                            s.reference("assessment", "QuestionnaireResponse", "IntakeAssessment"),
                            "QuestionnaireResponse/id",
                        ),
                    ]
                ),
            },
            {"recorded": "createdAt", "_lastUpdated": "updatedAt"},
            "-createdAt",
            includes={**_PATIENT_INCLUDE, "agent": Include("changedBy", "Practitioner")},
            user_fields=("changedBy",),
        ),
        ResourceType(
            "AuditEvent",
            "AuditLog",
            audit.audit_event,
            {
                **_common(patient=False, last_updated=False),
                **dict(
                    [
                        _p("date", "date", s.date("createdAt"), "when recorded"),
                        _p(
                            "subtype",
                            "token",
                            lambda v, m: s.Clause(
                                {"action": {"$in": [c for _, c in s.token_values(v)]}}
                            ),
                            "MindHarbor action, e.g. phi.read",
                        ),
                        _p(
                            "agent",
                            "reference",
                            lambda v, m: s.Clause(
                                {
                                    "actor": {
                                        "$in": [
                                            {
                                                "__type": "Pointer",
                                                "className": "_User",
                                                "objectId": c,
                                            }
                                            for _, c in s.token_values(v)
                                        ]
                                    }
                                }
                            ),
                            "user id of the actor",
                        ),
                        _p(
                            "entity-id",
                            "token",
                            lambda v, m: s.Clause({"entityId": {"$in": v}}),
                            "objectId of the entity acted on",
                        ),
                    ]
                ),
            },
            {"date": "createdAt"},
            "-createdAt",
            user_fields=("actor",),
            patient_field=None,
        ),
    )
}
# The patient compartment of $everything, in bundle order.
COMPARTMENT = (
    "QuestionnaireResponse",
    "Observation",
    "Provenance",
    "Flag",
    "Communication",
    "Appointment",
)
