"""The CapabilityStatement (``GET /metadata``), generated from the resource table."""

from __future__ import annotations

from typing import Any

from mindharbor import __version__
from mindharbor.fhir.resources import TYPES

OPERATIONS = (
    ("everything", "http://hl7.org/fhir/OperationDefinition/Patient-everything", "Patient"),
    (
        "right-of-access",
        "https://mindharbor.dev/fhir/OperationDefinition/right-of-access",
        "Patient",
    ),
    ("export", "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export", None),
    ("export", "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export", "Patient"),
)


def capability_statement(base: str, published: str) -> dict[str, Any]:
    resources = []
    for rtype in TYPES.values():
        interactions = [{"code": "read"}, {"code": "search-type"}]
        if rtype.history:
            interactions += [{"code": "vread"}, {"code": "history-instance"}]
        resource: dict[str, Any] = {
            "type": rtype.name,
            "interaction": interactions,
            "versioning": "versioned" if rtype.history else "no-version",
            "readHistory": rtype.history,
            "updateCreate": False,
            "searchInclude": [f"{rtype.name}:{name}" for name in sorted(rtype.includes)],
            "searchParam": [
                {"name": p.name, "type": p.kind, "documentation": p.doc}
                for p in rtype.params.values()
            ],
        }
        ops = [
            {"name": name, "definition": definition}
            for name, definition, on in OPERATIONS
            if on == rtype.name
        ]
        if ops:
            resource["operation"] = ops
        if not resource["searchInclude"]:
            del resource["searchInclude"]
        resources.append(resource)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": published,
        "publisher": "MindHarbor",
        "kind": "instance",
        "software": {"name": "MindHarbor", "version": __version__},
        "implementation": {"description": "MindHarbor FHIR R4 face (read-only)", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Read-only. Authenticate with the Parse session token a login returned, as "
                    "'Authorization: Bearer <token>', or with the master key. Access control and "
                    "read auditing are those of the Parse REST API."
                ),
                "security": {
                    "cors": True,
                    "description": "Bearer Parse session token; X-Parse-Master-Key for bulk export",
                },
                "resource": resources,
                "operation": [
                    {"name": name, "definition": definition}
                    for name, definition, on in OPERATIONS
                    if on is None
                ],
            }
        ],
    }
