"""Validation of emitted resources with two independent model sets.

* ``fhir.resources`` (pydantic models; its ``R4B`` package, FHIR 4.3.0 — PyPI's fhir.resources
  has no 4.0.1 build that runs on pydantic 2, and R4B changed none of the resources we emit);
* ``fhirclient``'s models, generated from FHIR 4.0.1 (R4) itself, in strict mode (an unknown
  element, a missing required one or a wrong type raises).
"""

from __future__ import annotations

import importlib
from typing import Any

from fhirclient.models import fhirelementfactory


def validate(resource: dict[str, Any]) -> None:
    kind = resource["resourceType"]
    module = importlib.import_module(f"fhir.resources.R4B.{kind.lower()}")
    getattr(module, kind).model_validate(resource)
    fhirelementfactory.FHIRElementFactory.instantiate(kind, resource)  # strict: raises


def validate_all(resources: list[dict[str, Any]]) -> int:
    for resource in resources:
        validate(resource)
    return len(resources)
