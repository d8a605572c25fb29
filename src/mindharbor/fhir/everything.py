"""``Patient/{id}/$everything`` and the right-of-access export (Bundle + PDF summary).

Both gather the patient's record through the caller's Repository (so a patient gets their own
chart, an assigned provider their patient's, and anyone else a 404), and both are recorded as a
disclosure (``phi.disclosure``) in the same transaction as the reads, on top of the per-read
entries the Repository writes. HIPAA 164.524 gives a patient the right to a copy of their record
in the form they ask for; the PDF is the human-readable form, the Bundle the machine-readable one.
"""

from __future__ import annotations

import asyncio
import io
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mindharbor.domain import audit
from mindharbor.errors import OperationForbidden
from mindharbor.fhir import query, search
from mindharbor.fhir.context import FHIR_PATH, Call, unit_of_work
from mindharbor.fhir.outcome import bad_request
from mindharbor.fhir.resources import COMPARTMENT, TYPES
from mindharbor.storage.codec import iso, utcnow
from mindharbor.storage.repository import FindQuery, Repository

if TYPE_CHECKING:
    from mindharbor.fhir.routes import FhirFace

PAGE = 500


@dataclass
class Record:
    patient: dict[str, Any]
    resources: list[dict[str, Any]]  # the compartment, in COMPARTMENT order
    practitioners: list[dict[str, Any]]

    def all(self) -> list[dict[str, Any]]:
        return [self.patient, *self.resources, *self.practitioners]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for resource in self.all():
            out[resource["resourceType"]] = out.get(resource["resourceType"], 0) + 1
        return out


async def gather(
    repo: Repository,
    patient_id: str,
    base: str,
    *,
    types: list[str] | None = None,
    since: str | None = None,
) -> Record:
    """The patient's record as the caller may see it (404 if the patient is invisible)."""
    patient = await query.read_one(repo, TYPES["Patient"], patient_id, base)
    pointer = {"__type": "Pointer", "className": "PatientProfile", "objectId": patient_id}
    resources: list[dict[str, Any]] = []
    practitioners: dict[str, dict[str, Any]] = {}
    fetched: dict[str, list[dict[str, Any]]] = {}
    for name in COMPARTMENT:
        if types is not None and name not in types:
            continue
        rtype = TYPES[name]
        where: dict[str, Any] = {rtype.patient_field or "patient": pointer, **rtype.base_where}
        if since:
            where = {"$and": [where, search.date_clause("updatedAt", "ge" + since)]}
        key = f"{rtype.parse_class}:{sorted(rtype.base_where)}"
        objects = fetched.get(key)
        if objects is None:
            try:
                objects = await _all(repo, rtype.parse_class, where, rtype.default_sort)
            except OperationForbidden:
                objects = []  # the class is closed to this caller: nothing of it to disclose
            fetched[key] = objects
        encoded, _, providers = await query.encode_page(repo, rtype, base, objects)
        resources.extend(encoded)
        for provider in providers.values():
            practitioners[provider["objectId"]] = provider
    ctx, _ = await query.user_context(repo, base, [], ())
    people = [r for p in practitioners.values() for r in TYPES["Practitioner"].encode(p, ctx)]
    return Record(patient, resources, people)


async def _all(
    repo: Repository, cls: str, where: dict[str, Any], order: str
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        found = await repo.find(
            cls, FindQuery(where=where, order=f"{order},objectId", limit=PAGE, skip=len(out))
        )
        out.extend(found.results)
        if len(found.results) < PAGE:
            return out


async def disclose(repo: Repository, record: Record, operation: str, form: str) -> None:
    """The disclosure entry (HIPAA accounting of disclosures), in the reads' transaction."""
    await audit.record(
        repo,
        "phi.disclosure",
        entity_type="PatientProfile",
        entity_id=record.patient["id"],
        summary=f"Patient record disclosed ({operation}, {form})",
        metadata={"operation": operation, "format": form, "resources": record.counts()},
    )


def _params(request: Request, allowed: set[str]) -> dict[str, str]:
    params = dict(request.query_params)
    for key in params:
        if key not in allowed:
            raise bad_request(f"Unknown parameter {key[:40]!r}.")
    return params


async def everything(face: FhirFace, request: Request, call: Call) -> Response:
    from mindharbor.fhir.routes import fhir_response

    params = _params(request, {"_type", "_since", "_format"})
    types = params["_type"].split(",") if params.get("_type") else None
    if types and set(types) - set(COMPARTMENT) - {"Patient", "Practitioner"}:
        raise bad_request(f"_type may list: {', '.join(COMPARTMENT)}.")
    since = params.get("_since")
    if since:
        search.date_range(since)
    async with unit_of_work(face.server, call, writes=True) as repo:
        record = await gather(repo, request.path_params["id"], call.base, types=types, since=since)
        await disclose(repo, record, "$everything", "fhir+json")
    entries = record.all()
    body = query.bundle("searchset", call.base, entries, total=len(entries))
    body["link"] = [{"relation": "self", "url": str(request.url)}]
    return fhir_response(body)


async def right_of_access(face: FhirFace, request: Request, call: Call) -> Response:
    """The patient's copy of their record: a ZIP of ``record.json`` (a FHIR Bundle) and
    ``summary.pdf`` (the same record for people), or one of them with ``_format``."""
    from mindharbor.fhir.pdf import render_summary

    params = _params(request, {"_format"})
    form = params.get("_format", "zip")
    forms = {
        "zip": "zip",
        "application/zip": "zip",
        "pdf": "pdf",
        "application/pdf": "pdf",
        "json": "json",
        "application/fhir+json": "json",
    }
    if form not in forms:
        raise bad_request("_format must be zip, pdf or json.")
    form = forms[form]
    async with unit_of_work(face.server, call, writes=True) as repo:
        record = await gather(repo, request.path_params["id"], call.base)
        await disclose(repo, record, "$right-of-access", form)
    generated = iso(utcnow())
    bundle = query.bundle("collection", call.base, record.all())
    bundle["timestamp"] = generated
    json_bytes = query_json(bundle)
    name = f"health-record-{record.patient['id']}"
    headers = {"Cache-Control": "no-store"}
    if form == "json":
        headers["Content-Disposition"] = f'attachment; filename="{name}.json"'
        return Response(json_bytes, media_type="application/fhir+json", headers=headers)
    pdf = await asyncio.to_thread(render_summary, record, generated)
    if form == "pdf":
        headers["Content-Disposition"] = f'attachment; filename="{name}.pdf"'
        return Response(pdf, media_type="application/pdf", headers=headers)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("record.json", json_bytes)
        archive.writestr("summary.pdf", pdf)
    headers["Content-Disposition"] = f'attachment; filename="{name}.zip"'
    return Response(buffer.getvalue(), media_type="application/zip", headers=headers)


def query_json(body: dict[str, Any]) -> bytes:
    import orjson

    return orjson.dumps(body, option=orjson.OPT_INDENT_2)


def routes(face: FhirFace) -> list[Route]:
    async def run_everything(request: Request, call: Call) -> Response:
        return await everything(face, request, call)

    async def run_access(request: Request, call: Call) -> Response:
        return await right_of_access(face, request, call)

    return [
        Route(
            f"{FHIR_PATH}/Patient/{{id}}/$everything",
            face.route("operation:everything", run_everything),
            methods=["GET"],
        ),
        Route(
            f"{FHIR_PATH}/Patient/{{id}}/$right-of-access",
            face.route("operation:right-of-access", run_access),
            methods=["GET"],
        ),
    ]
