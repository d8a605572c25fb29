"""The FHIR R4 face at ``/fhir/R4``: a route table and thin handlers.

Each handler reads its inputs, opens the caller's unit of work (``context.unit_of_work``), asks
the object service through ``query``, and answers FHIR JSON. Errors of any kind become an
OperationOutcome in ``respond``. The face is read-only (see docs/fhir.md for why); writes answer
405 with an OperationOutcome.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mindharbor.api.rest.request import read_body
from mindharbor.fhir import bulk, everything, query
from mindharbor.fhir.capability import capability_statement
from mindharbor.fhir.context import FHIR_PATH, Call, base_url, read_call, unit_of_work
from mindharbor.fhir.encode.assessments import snapshot_object
from mindharbor.fhir.outcome import FhirError, bad_request, from_exception, not_found, outcome
from mindharbor.storage.codec import iso, utcnow
from mindharbor.storage.repository import FindQuery, Repository

if TYPE_CHECKING:
    from mindharbor.app import MindHarbor

log = logging.getLogger(__name__)
FHIR_JSON = "application/fhir+json; charset=utf-8"
Handler = Callable[[Request, Call], Awaitable[Response]]


def fhir_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type=FHIR_JSON)


def error_response(error: FhirError) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="mindharbor"'} if error.status == 401 else None
    return fhir_response(outcome(error.code, error.diagnostics), error.status, headers)


class FhirFace:
    """The handlers, bound to one server (its store, settings and file service)."""

    def __init__(self, server: MindHarbor) -> None:
        self.server = server
        self.settings = server.settings
        self.started = iso(utcnow())
        self.exports: Any = None  # bulk.BulkExports, set by bulk.routes

    async def respond(self, request: Request, interaction: str, handler: Handler) -> Response:
        try:
            call = read_call(self.server, request, interaction)
            return await handler(request, call)
        except Exception as exc:
            error = from_exception(exc)
            if error.status >= 500:
                route = getattr(request.scope.get("route"), "path", "?")  # never the ids
                log.exception("FHIR %s %s failed", request.method, route)
            return error_response(error)

    def route(self, interaction: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await self.respond(request, interaction, handler)

        return endpoint

    # -- handlers -------------------------------------------------------------------------------
    async def metadata(self, request: Request) -> Response:
        return fhir_response(capability_statement(base_url(self.server, request), self.started))

    async def search(self, request: Request, call: Call) -> Response:
        rtype = query.resource_type(request.path_params["type"])
        params = list(request.query_params.multi_items())
        if request.method == "POST":
            params += await _form(request, self.settings.max_body_bytes)
        plan = query.plan_search(
            rtype, params, self.settings.default_limit, self.settings.max_limit
        )
        async with unit_of_work(self.server, call) as repo:
            page = await query.run_search(repo, plan, call.base)
        body = query.bundle(
            "searchset",
            call.base,
            page.matches,
            page.includes,
            total=page.total,
            links=query.page_links(call.base, plan, page.next_offset),
        )
        return fhir_response(body)

    async def read(self, request: Request, call: Call) -> Response:
        rtype = query.resource_type(request.path_params["type"])
        _check_no_params(request)
        async with unit_of_work(self.server, call) as repo:
            resource = await query.read_one(repo, rtype, request.path_params["id"], call.base)
        return fhir_response(resource)

    async def history(self, request: Request, call: Call) -> Response:
        rtype = query.resource_type(request.path_params["type"])
        if not rtype.history:
            raise bad_request(
                f"{rtype.name} keeps no versions: _history is not supported.", "not-supported"
            )
        resource_id = request.path_params["id"]
        async with unit_of_work(self.server, call) as repo:
            versions = await _versions(repo, rtype.name, resource_id, call.base)
        entries = []
        for version, resource in versions:
            entries.append(
                {
                    "fullUrl": f"{call.base}/{rtype.name}/{resource_id}",
                    "resource": resource,
                    "request": {
                        "method": "POST" if version == 1 else "PUT",
                        "url": f"{rtype.name}/{resource_id}" if version > 1 else rtype.name,
                    },
                    "response": {
                        "status": "201 Created" if version == 1 else "200 OK",
                        "lastModified": resource["meta"].get("lastUpdated"),
                    },
                }
            )
        body = {
            "resourceType": "Bundle",
            "type": "history",
            "total": len(entries),
            "entry": entries,
        }
        return fhir_response(body)

    async def vread(self, request: Request, call: Call) -> Response:
        rtype = query.resource_type(request.path_params["type"])
        if not rtype.history:
            raise bad_request(
                f"{rtype.name} keeps no versions: vread is not supported.", "not-supported"
            )
        wanted = request.path_params["vid"]
        async with unit_of_work(self.server, call) as repo:
            versions = await _versions(repo, rtype.name, request.path_params["id"], call.base)
        for version, resource in versions:
            if str(version) == wanted:
                return fhir_response(resource)
        raise not_found("No such version.")

    async def not_allowed(self, request: Request) -> Response:
        error = FhirError(
            405,
            "not-supported",
            "The FHIR face is read-only: write through the Parse REST API (see docs/fhir.md).",
        )
        return error_response(error)

    def routes(self) -> list[Route]:
        base = FHIR_PATH
        r = self.route
        return [
            Route(f"{base}/metadata", self.metadata, methods=["GET"]),
            *bulk.routes(self),
            *everything.routes(self),
            Route(f"{base}/{{type}}", r("search-type", self.search), methods=["GET"]),
            Route(f"{base}/{{type}}/_search", r("search-type", self.search), methods=["POST"]),
            Route(
                f"{base}/{{type}}/{{id}}/_history",
                r("history-instance", self.history),
                methods=["GET"],
            ),
            Route(
                f"{base}/{{type}}/{{id}}/_history/{{vid}}", r("vread", self.vread), methods=["GET"]
            ),
            Route(f"{base}/{{type}}/{{id}}", r("read", self.read), methods=["GET"]),
            Route(
                f"{base}/{{path:path}}",
                self.not_allowed,
                methods=["POST", "PUT", "PATCH", "DELETE"],
            ),
            Route(base, self.not_allowed, methods=["POST", "PUT", "PATCH", "DELETE"]),
        ]


async def _form(request: Request, limit: int) -> list[tuple[str, str]]:
    """``POST [type]/_search``: parameters as application/x-www-form-urlencoded."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await read_body(request, limit)
    if not raw.strip():
        return []
    if kind != "application/x-www-form-urlencoded":
        raise bad_request("_search takes application/x-www-form-urlencoded parameters.")
    try:
        return parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad_request("Malformed form body.") from exc


def _check_no_params(request: Request) -> None:
    for key in request.query_params:
        if key not in ("_format", "_pretty", "_summary"):
            raise bad_request(f"Unknown parameter {key[:40]!r} on read.")
        if key == "_format" and "json" not in request.query_params[key]:
            raise bad_request("Only JSON is supported (_format=json).", "not-supported")
        if key == "_summary" and request.query_params[key] != "false":
            raise bad_request("_summary is not supported.", "not-supported")


async def _versions(
    repo: Repository, type_name: str, resource_id: str, base: str
) -> list[tuple[int, dict[str, Any]]]:
    """Every version of an assessment-backed resource, newest first: the current object and
    each ``AssessmentVersion`` snapshot, encoded by the same encoder."""
    rtype = query.resource_type(type_name)
    current = await query.read_one(repo, rtype, resource_id, base)
    object_id = rtype.object_id(resource_id)
    pointer = {"__type": "Pointer", "className": "IntakeAssessment", "objectId": object_id}
    found = await repo.find(
        "AssessmentVersion",
        FindQuery(where={"assessment": pointer}, order="-version", limit=1000),
    )
    snapshots = [snapshot_object(v) for v in found.results]
    resources, _, _ = await query.encode_page(repo, rtype, base, snapshots)
    versions = [(int(current["meta"].get("versionId", 1)), current)]
    for resource in resources:
        if resource["id"] == resource_id:
            versions.append((int(resource["meta"].get("versionId", 1)), resource))
    return versions
