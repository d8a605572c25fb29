"""FHIR Bulk Data Access (``$export``): kick-off, status polling, manifest, cancellation.

Kick-off (``GET [base]/$export`` or ``[base]/Patient/$export`` with ``Prefer: respond-async``)
is for the master key or an admin; the export then reads with *the caller's* rights, so an admin
exports what an admin may read (demographics, providers, the audit log) and the clinical record
needs the master key: the same answers as every other face, never a wider one. The job's state
is a ``BulkExport`` object (readable by whoever started it), so any worker can answer the
status poll; its files are encrypted in the file store and listed behind signed, expiring URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mindharbor.errors import ObjectNotFound, ParseError
from mindharbor.fhir import export, search
from mindharbor.fhir.context import FHIR_PATH, Call, unit_of_work
from mindharbor.fhir.outcome import FhirError, bad_request, forbidden, not_found
from mindharbor.security.auth import Auth
from mindharbor.security.roles import is_admin
from mindharbor.storage.codec import iso, parse_iso, utcnow

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from mindharbor.fhir.routes import FhirFace

log = logging.getLogger(__name__)
URL_TTL_SECONDS = 3600  # manifest links: long enough to download a large export
STALE_AFTER = timedelta(minutes=10)  # an in-progress job not touched this long was interrupted
PROGRESS_EVERY = 1.0


def _date(value: Any) -> dict[str, str]:
    return {"__type": "Date", "iso": iso(value)}


class BulkExports:
    """Kick-off, status and cancel handlers, and the background tasks they start."""

    def __init__(self, face: FhirFace) -> None:
        self.face = face
        self.server = face.server
        self.tasks: set[asyncio.Task[None]] = set()

    async def kick_off(self, request: Request, call: Call) -> Response:
        if request.headers.get("prefer", "").replace(" ", "").lower() != "respond-async":
            raise bad_request("$export needs the header Prefer: respond-async.")
        accept = request.headers.get("accept", "application/fhir+json")
        if "json" not in accept and "*/*" not in accept:
            raise bad_request("Accept must be application/fhir+json.")
        params = dict(request.query_params)
        for key in params:
            if key not in ("_outputFormat", "_type", "_since"):
                raise bad_request(f"Unsupported $export parameter {key[:40]!r}.", "not-supported")
        store = self.server.store
        fmt = export.parse_format(params.get("_outputFormat"))
        patient_level = request.url.path.rstrip("/").endswith("/Patient/$export")
        if patient_level and fmt != export.FHIR_NDJSON:
            raise bad_request("Patient/$export produces FHIR NDJSON only.")
        types = (
            export.check_types(store, fmt, params["_type"].split(","))
            if params.get("_type")
            else export.default_types(store, fmt, patient_level)
        )
        since = params.get("_since")
        if since:
            search.date_range(since)
        async with unit_of_work(self.server, call, writes=True) as repo:
            auth = repo.auth
            # Bulk export is for the master key and admins (the rule); what each of them
            # may read is still decided by the access policy when the export reads.
            if not is_admin(auth):
                raise forbidden("Bulk export needs the master key or an admin.")
            acl = {auth.user_id: {"read": True}} if auth.user_id else {}
            body: dict[str, Any] = {
                "request": str(request.url),
                "status": "in-progress",
                "outputFormat": fmt,
                "types": types,
                "transactionTime": _date(utcnow()),
                "progress": {"done": 0},
                "ACL": acl,
            }
            if auth.user_id:
                body["requestedBy"] = {
                    "__type": "Pointer",
                    "className": "_User",
                    "objectId": auth.user_id,
                }
            if since:
                body["since"] = _date(search.date_range(since)[0])
            job = await repo.system().create("BulkExport", body)
        job_id = str(job["objectId"])
        meta = {**call.meta, "exportId": job_id}
        exporter = export.Exporter(store, auth, call.base, fmt, types, since, meta)
        task = asyncio.get_running_loop().create_task(
            self._run(job_id, exporter, auth), name=job_id
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        location = f"{call.base}/$export-status/{job_id}"
        return Response(status_code=202, headers={"Content-Location": location})

    async def _update(self, job_id: str, values: dict[str, Any]) -> None:
        async with self.server.store.unit_of_work(Auth.system()) as repo:
            await repo.update("BulkExport", job_id, values)

    async def _run(self, job_id: str, exporter: export.Exporter, auth: Auth) -> None:
        files = self.server.files
        last_report = [0.0]
        stored: list[str] = []

        async def sink(name: str, fmt: str, lines: AsyncIterator[bytes]) -> str:
            kept = await files.store_generated(
                name.replace(":", "-") + ".ndjson", fmt, lines, owner=auth.user_id
            )
            stored.append(kept.name)
            return kept.name

        async def progress(name: str, done: int) -> None:
            if time.monotonic() - last_report[0] >= PROGRESS_EVERY:
                last_report[0] = time.monotonic()
                await self._update(job_id, {"progress": {"type": name, "done": done}})

        try:
            result = await exporter.run(sink, progress)
            await self._update(
                job_id,
                {
                    "status": "completed",
                    "output": [vars(o) for o in result.output],
                    "errors": [vars(o) for o in result.errors],
                    "finishedAt": _date(utcnow()),
                },
            )
        except asyncio.CancelledError:
            for name in stored:
                await files.remove_generated(name)
            raise
        except Exception as exc:
            message = exc.message if isinstance(exc, ParseError) else "Internal error."
            if not isinstance(exc, ParseError):
                log.exception("bulk export %s failed", job_id)
            for name in stored:
                await files.remove_generated(name)
            with contextlib.suppress(Exception):
                await self._update(
                    job_id,
                    {"status": "failed", "message": message, "finishedAt": _date(utcnow())},
                )

    async def status(self, request: Request, call: Call) -> Response:
        from mindharbor.fhir.routes import fhir_response

        job_id = request.path_params["id"]
        async with unit_of_work(self.server, call) as repo:
            try:
                job = await repo.get("BulkExport", job_id)  # 404 unless the caller started it
            except ObjectNotFound as exc:
                raise not_found("No such export.") from exc
        state = job.get("status")
        updated = parse_iso(job["updatedAt"])
        if state == "in-progress":
            if utcnow() - updated > STALE_AFTER:
                raise FhirError(500, "incomplete", "The export was interrupted; start it again.")
            done = (job.get("progress") or {}).get("done", 0)
            kind = (job.get("progress") or {}).get("type", "")
            return Response(
                status_code=202,
                headers={"X-Progress": f"{kind} {done} exported".strip(), "Retry-After": "2"},
            )
        if state == "failed":
            raise FhirError(500, "exception", str(job.get("message") or "The export failed."))
        if state == "cancelled":
            raise not_found("The export was cancelled.")
        grace = self.server.settings.file_gc_grace_seconds
        if utcnow() - updated > timedelta(seconds=grace):
            raise FhirError(404, "not-found", "The export's files have expired.")
        signer = self.server.files.signer
        by = repo.auth.user_id

        def listed(entries: Any) -> list[dict[str, Any]]:
            return [
                {
                    "type": e["type"],
                    "url": signer.url(e["name"], by, ttl=URL_TTL_SECONDS),
                    "count": e["count"],
                }
                for e in entries or []
            ]

        manifest = {
            "transactionTime": job["transactionTime"]["iso"],
            "request": job["request"],
            "requiresAccessToken": False,
            "output": listed(job.get("output")),
            "error": listed(job.get("errors")),
        }
        headers = {"Expires": iso(updated + timedelta(seconds=grace))}
        return fhir_response(manifest, 200, headers)

    async def cancel(self, request: Request, call: Call) -> Response:
        job_id = request.path_params["id"]
        async with unit_of_work(self.server, call, writes=True) as repo:
            try:
                job = await repo.get("BulkExport", job_id)  # the caller may see it: may cancel it
            except ObjectNotFound as exc:
                raise not_found("No such export.") from exc
            if job.get("status") == "cancelled":
                raise not_found("The export was cancelled.")
            await repo.system().update("BulkExport", job_id, {"status": "cancelled"})
        for task in list(self.tasks):
            if task.get_name() == job_id:
                task.cancel()
        for entry in [*(job.get("output") or []), *(job.get("errors") or [])]:
            await self.server.files.remove_generated(entry["name"])
        return Response(status_code=202)

    async def aclose(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def routes(face: FhirFace) -> list[Route]:
    exports = BulkExports(face)
    face.exports = exports
    return [
        Route(
            f"{FHIR_PATH}/$export",
            face.route("operation:export", exports.kick_off),
            methods=["GET"],
        ),
        Route(
            f"{FHIR_PATH}/Patient/$export",
            face.route("operation:export", exports.kick_off),
            methods=["GET"],
        ),
        Route(
            f"{FHIR_PATH}/$export-status/{{id}}",
            face.route("operation:export-status", exports.status),
            methods=["GET"],
        ),
        Route(
            f"{FHIR_PATH}/$export-status/{{id}}",
            face.route("operation:export-cancel", exports.cancel),
            methods=["DELETE"],
        ),
    ]
