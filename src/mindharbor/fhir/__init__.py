"""The FHIR R4 face (``/fhir/R4``): read, search, history, $everything, right-of-access and
Bulk Data export over the same object service, access policy and audit as the Parse faces."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import Route

if TYPE_CHECKING:
    from mindharbor.app import MindHarbor


def face_routes(server: MindHarbor) -> list[Route]:
    from mindharbor.fhir.routes import FhirFace

    face = FhirFace(server)
    server.fhir = face
    return face.routes()
