"""The exporter behind FHIR Bulk Data ``$export`` and ``mindharbor export``.

It reads every object of each requested type through a Repository for the caller's ``Auth``
(page by page, one unit of work per page, so reads are access-filtered and audited like any
other), encodes it with the FHIR encoders (or keeps Parse's wire form), and hands NDJSON lines to
a sink: the encrypted file store for ``$export``, a directory for the CLI.

Two output formats:

* ``application/fhir+ndjson`` (the Bulk Data standard): one file per resource type;
* ``application/vnd.mindharbor.parse+ndjson``: one file per Parse class, each line an object as
  the Parse REST API returns it (ACL included), plus ``_Join:<relation>:_Role`` files listing
  role members. ``mindharbor import-parse`` restores a database from these files.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from mindharbor.domain import audit
from mindharbor.errors import OperationForbidden
from mindharbor.fhir import query, search
from mindharbor.fhir.outcome import bad_request, outcome
from mindharbor.fhir.resources import COMPARTMENT, TYPES
from mindharbor.security.auth import Auth
from mindharbor.storage.db import Store
from mindharbor.storage.repository import FindQuery, Repository

FHIR_NDJSON = "application/fhir+ndjson"
PARSE_NDJSON = "application/vnd.mindharbor.parse+ndjson"
FORMATS = {
    "application/fhir+ndjson": FHIR_NDJSON,
    "application/ndjson": FHIR_NDJSON,
    "ndjson": FHIR_NDJSON,
    PARSE_NDJSON: PARSE_NDJSON,
    "parse": PARSE_NDJSON,
}
PAGE = 500
# Server bookkeeping, not data: never exported in the Parse form.
NOT_EXPORTED = frozenset({"_Session", "_JobStatus", "BulkExport"})
SYSTEM_TYPES = tuple(t for t in TYPES)
PATIENT_TYPES = ("Patient", *COMPARTMENT)

Sink = Callable[[str, str, AsyncIterator[bytes]], Awaitable[str | None]]
Progress = Callable[[str, int], Awaitable[None]]


@dataclass
class Output:
    type: str
    name: str  # where the sink put it (stored file name or path)
    count: int


@dataclass
class Result:
    output: list[Output] = field(default_factory=list)
    errors: list[Output] = field(default_factory=list)


def parse_format(value: str | None) -> str:
    if value is None:
        return FHIR_NDJSON
    found = FORMATS.get(value.strip())
    if found is None:
        raise bad_request(f"_outputFormat must be one of {', '.join(sorted(FORMATS))}.")
    return found


def default_types(store: Store, fmt: str, patient_level: bool) -> list[str]:
    if fmt == PARSE_NDJSON:
        return [s.name for s in store.all_schemas() if s.name not in NOT_EXPORTED]
    return list(PATIENT_TYPES if patient_level else SYSTEM_TYPES)


def check_types(store: Store, fmt: str, types: list[str]) -> list[str]:
    for name in types:
        if fmt == FHIR_NDJSON and name not in TYPES:
            raise bad_request(f"Unknown _type {name[:40]!r}.")
        if fmt == PARSE_NDJSON and (name in NOT_EXPORTED or store.schema_or_none(name) is None):
            raise bad_request(f"Unknown class {name[:40]!r}.")
    return types


class Exporter:
    """One export run for one caller.

    Parameters:
        store: the object service.
        auth: whose rights the export reads with (the master key, or an admin's session).
        base: the FHIR base URL resources refer to.
        fmt: FHIR_NDJSON or PARSE_NDJSON.
        types: resource types (FHIR) or classes (Parse) to export, in order.
        since: only objects updated at or after this FHIR date (``_since``).
        meta: request context for the audit entries.
    """

    def __init__(
        self,
        store: Store,
        auth: Auth,
        base: str,
        fmt: str,
        types: list[str],
        since: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.auth = auth
        self.base = base
        self.fmt = fmt
        self.types = types
        self.since = since
        self.meta = meta or {}

    async def run(self, sink: Sink, progress: Progress | None = None) -> Result:
        result = Result()
        for name in self.types:
            counter = [0]
            lines = (
                self._fhir_lines(name, counter, progress)
                if self.fmt == FHIR_NDJSON
                else self._parse_lines(name, counter, progress)
            )
            try:
                first = await anext(lines, None)
                if first is None:
                    continue  # Bulk Data: empty files are left out of the manifest
                stored = await sink(name, self.fmt, _prepend(first, lines))
            except OperationForbidden as exc:
                problem = outcome("forbidden", f"{name}: {exc.message}")
                error = await sink(name + ".error", FHIR_NDJSON, _one(problem))
                if error is not None:
                    result.errors.append(Output("OperationOutcome", error, 1))
                continue
            if stored is not None and counter[0]:
                result.output.append(Output(name, stored, counter[0]))
        if self.fmt == PARSE_NDJSON and "_Role" in self.types:
            for relation in ("users", "roles"):
                counter = [0]
                label = f"_Join:{relation}:_Role"
                rows = self._join_lines(relation, counter)
                head = await anext(rows, None)
                if head is None:
                    continue
                stored = await sink(label, self.fmt, _prepend(head, rows))
                if stored is not None and counter[0]:
                    result.output.append(Output(label, stored, counter[0]))
        await self._disclose(result)
        return result

    def _where(self, extra: dict[str, Any], last: str | None) -> dict[str, Any]:
        clauses = [extra] if extra else []
        if self.since:
            clauses.append(search.date_clause("updatedAt", "ge" + self.since))
        if last is not None:
            clauses.append({"objectId": {"$gt": last}})
        return clauses[0] if len(clauses) == 1 else ({"$and": clauses} if clauses else {})

    async def _pages(
        self,
        cls: str,
        base_where: dict[str, Any],
        render: Callable[[Repository, list[dict[str, Any]]], Awaitable[list[Any]]],
    ) -> AsyncIterator[list[Any]]:
        """Every object of ``cls`` the caller may read, in objectId order (keyset paging: no
        offset grows with the table), rendered by ``render`` inside a unit of work of its own
        per page. The page is yielded after that unit of work commits, so no transaction
        stays open while the sink writes."""
        last: str | None = None
        while True:
            async with self.store.unit_of_work(self.auth) as repo:
                repo.meta = dict(self.meta)
                found = await repo.find(
                    cls,
                    FindQuery(where=self._where(base_where, last), order="objectId", limit=PAGE),
                )
                rendered = await render(repo, found.results)
            yield rendered
            if len(found.results) < PAGE:
                return
            last = found.results[-1]["objectId"]

    async def _fhir_lines(
        self, name: str, counter: list[int], progress: Progress | None
    ) -> AsyncIterator[bytes]:
        rtype = TYPES[name]

        async def render(repo: Repository, objects: list[dict[str, Any]]) -> list[Any]:
            resources, _, _ = await query.encode_page(repo, rtype, self.base, objects)
            return resources

        async for resources in self._pages(rtype.parse_class, rtype.base_where, render):
            if resources:
                counter[0] += len(resources)
                yield b"".join(orjson.dumps(r) + b"\n" for r in resources)
            if progress is not None:
                await progress(name, counter[0])

    async def _parse_lines(
        self, name: str, counter: list[int], progress: Progress | None
    ) -> AsyncIterator[bytes]:
        async def render(repo: Repository, objects: list[dict[str, Any]]) -> list[Any]:
            return objects

        async for objects in self._pages(name, {}, render):
            if objects:
                counter[0] += len(objects)
                yield b"".join(orjson.dumps(o) + b"\n" for o in objects)
            if progress is not None:
                await progress(name, counter[0])

    async def _join_lines(self, relation: str, counter: list[int]) -> AsyncIterator[bytes]:
        target = "_User" if relation == "users" else "_Role"
        limit = self.store.settings.max_limit

        async def render(repo: Repository, roles: list[dict[str, Any]]) -> list[Any]:
            rows: list[dict[str, str]] = []
            for role in roles:
                pointer = {"__type": "Pointer", "className": "_Role", "objectId": role["objectId"]}
                found = await repo.find(
                    target,
                    FindQuery(
                        where={"$relatedTo": {"object": pointer, "key": relation}},
                        order="objectId",
                        limit=limit,
                        keys=["objectId"],
                    ),
                )
                rows.extend(
                    {"owningId": role["objectId"], "relatedId": m["objectId"]}
                    for m in found.results
                )
            return rows

        async for rows in self._pages("_Role", {}, render):
            if rows:
                counter[0] += len(rows)
                yield b"".join(orjson.dumps(r) + b"\n" for r in rows)

    async def _disclose(self, result: Result) -> None:
        async with self.store.unit_of_work(self.auth) as repo:
            repo.meta = dict(self.meta)
            await audit.record(
                repo,
                "phi.disclosure",
                entity_type="BulkExport",
                entity_id=str(self.meta.get("exportId") or "*"),
                summary=f"Bulk export ({self.fmt}) of {len(result.output)} file(s)",
                metadata={
                    "operation": "$export",
                    "format": self.fmt,
                    "counts": {o.type: o.count for o in result.output},
                },
            )


async def _one(resource: dict[str, Any]) -> AsyncIterator[bytes]:
    yield orjson.dumps(resource) + b"\n"


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for piece in rest:
        yield piece
