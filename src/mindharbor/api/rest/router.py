"""The REST route table and the dispatcher that owns each call's transaction.

Routes are data: (method, path pattern, handler, kind). The dispatcher opens one unit of work per
call (or reuses the batch's when ``transaction: true``), claims the idempotency key inside it,
and runs the handler. Handlers never open transactions or decide access themselves.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mindharbor.api.rest import aggregate, classes, cloud, config, installations, schemas, users
from mindharbor.api.rest.reply import Reply
from mindharbor.api.rest.request import ApiRequest
from mindharbor.domain import audit
from mindharbor.errors import (
    InvalidJSON,
    InvalidQuery,
    ObjectNotFound,
    OperationForbidden,
    ParseError,
    error_body,
)
from mindharbor.observe import requests as observe
from mindharbor.storage.db import Store
from mindharbor.storage.repository import Repository

Handler = Callable[[Repository, ApiRequest], Awaitable[Reply]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # the template, e.g. /classes/{className}/{objectId} (what logs and metrics show)
    pattern: re.Pattern[str]
    handler: Handler
    writes: bool


def _route(method: str, path: str, handler: Handler, *, writes: bool | None = None) -> Route:
    """``writes``: the handler may write (every POST, PUT and DELETE; a GET only if marked),
    so it runs in a transaction; the others run read-only."""
    regex = re.sub(r"\{(\w+):path\}", r"(?P<\1>.+)", path)  # a parameter that may hold "/"
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
    if writes is None:
        writes = method in ("POST", "PUT", "DELETE")
    return Route(method, path, re.compile(f"^{regex}/?$"), handler, writes)


ROUTES: list[Route] = [
    # _Installation first: its rules (by installationId) apply under both paths.
    *(
        route
        for base in ("/installations", "/classes/_Installation")
        for route in (
            _route("GET", base, installations.find),
            _route("POST", base, installations.create),
            _route("GET", base + "/{objectId}", installations.get),
            _route("PUT", base + "/{objectId}", installations.update),
            _route("DELETE", base + "/{objectId}", installations.delete),
        )
    ),
    _route("POST", "/push", installations.push),
    _route("GET", "/classes/{className}", classes.find),
    _route("POST", "/classes/{className}", classes.create),
    _route("GET", "/classes/{className}/{objectId}", classes.get),
    _route("PUT", "/classes/{className}/{objectId}", classes.update),
    _route("DELETE", "/classes/{className}/{objectId}", classes.delete),
    _route("GET", "/schemas", schemas.list_schemas),
    _route("POST", "/schemas", schemas.create_schema),
    _route("GET", "/schemas/{className}", schemas.get_schema),
    _route("POST", "/schemas/{className}", schemas.create_schema),
    _route("PUT", "/schemas/{className}", schemas.update_schema),
    _route("DELETE", "/schemas/{className}", schemas.delete_schema),
    _route("DELETE", "/purge/{className}", schemas.purge),
    _route("POST", "/users", users.sign_up),
    _route("GET", "/users", users.on_class("_User", classes.find)),
    _route("GET", "/users/me", users.me),
    _route("GET", "/users/{objectId}", users.on_class("_User", classes.get)),
    _route("PUT", "/users/{objectId}", users.on_class("_User", classes.update)),
    _route("DELETE", "/users/{objectId}", users.on_class("_User", classes.delete)),
    _route("GET", "/login", users.log_in, writes=True),  # counts failures, makes a session
    _route("POST", "/login", users.log_in),
    _route("POST", "/loginAs", users.log_in_as),
    _route("POST", "/logout", users.log_out),
    _route("GET", "/verifyPassword", users.verify_password, writes=True),
    _route("POST", "/verifyPassword", users.verify_password),
    _route("POST", "/requestPasswordReset", users.request_password_reset),
    _route("GET", "/sessions", users.on_class("_Session", classes.find)),
    _route("GET", "/sessions/me", users.session_me),
    _route("GET", "/sessions/{objectId}", users.on_class("_Session", classes.get)),
    _route("DELETE", "/sessions/{objectId}", users.on_class("_Session", classes.delete)),
    _route("GET", "/roles", users.on_class("_Role", classes.find)),
    _route("POST", "/roles", users.on_class("_Role", classes.create)),
    _route("GET", "/roles/{objectId}", users.on_class("_Role", classes.get)),
    _route("PUT", "/roles/{objectId}", users.on_class("_Role", classes.update)),
    _route("DELETE", "/roles/{objectId}", users.on_class("_Role", classes.delete)),
    _route("POST", "/functions/{name}", users.call_function),
    _route("POST", "/jobs", users.start_job),
    _route("POST", "/jobs/{name}", users.start_job),
    _route("GET", "/aggregate/{className}", aggregate.aggregate),
    _route("GET", "/config", config.get_config),
    _route("PUT", "/config", config.put_config),
    _route("GET", "/hooks/functions", cloud.list_functions),
    _route("GET", "/hooks/functions/{name}", cloud.get_function),
    _route("POST", "/hooks/functions", cloud.refuse_webhook),
    _route("PUT", "/hooks/functions/{name}", cloud.refuse_webhook),
    _route("GET", "/hooks/triggers", cloud.list_triggers),
    _route("GET", "/hooks/triggers/{className}/{triggerName}", cloud.get_trigger),
    _route("POST", "/hooks/triggers", cloud.refuse_webhook),
    _route("PUT", "/hooks/triggers/{className}/{triggerName}", cloud.refuse_webhook),
    _route("GET", "/cloud_code/jobs", cloud.list_job_schedules),
    _route("GET", "/cloud_code/jobs/data", cloud.jobs_data),
    _route("POST", "/cloud_code/jobs", cloud.refuse_schedule),
    _route("PUT", "/cloud_code/jobs/{objectId}", cloud.refuse_schedule),
    _route("DELETE", "/cloud_code/jobs/{objectId}", cloud.refuse_schedule),
    _route("GET", "/releases/latest", cloud.latest_release),
    _route("GET", "/scripts/{name:path}", cloud.script),
    _route("GET", "/scriptlog", cloud.script_log),
]
# What a session that still has to enrol a second factor may do (everything else: 119).
RESTRICTED_ALLOWED = {
    ("GET", "/users/me"),
    ("POST", "/logout"),
    ("GET", "/sessions/me"),
    ("POST", "/functions/enrollMfa"),
    ("POST", "/functions/confirmMfa"),
}


def resolve(method: str, path: str) -> tuple[Route, dict[str, str]]:
    path_matched = False
    for route in ROUTES:
        match = route.pattern.match(path)
        if match is None:
            continue
        path_matched = True
        if route.method == method:
            return route, match.groupdict()
    if path_matched:
        raise InvalidJSON(f"Method {method} is not supported on {path}.")
    raise ObjectNotFound(f"Unknown route: {method} {path}")


def template(method: str, path: str) -> str:
    """The route template ``path`` matches (for logs and metrics: never the path itself)."""
    if path.rstrip("/") == "/batch":
        return "/batch"
    for route in ROUTES:
        if route.method == method and route.pattern.match(path):
            return route.path
    return "/{unknown}"


_CLASS_PATHS = {
    "/users": "_User",
    "/sessions": "_Session",
    "/roles": "_Role",
    "/installations": "_Installation",
}


def _denied_target(store: Store, method: str, path: str) -> tuple[str, str] | None:
    """(entity type, id) when a refused request aimed at a PHI class or a function."""
    parts = [p for p in path.split("/") if p]
    if len(parts) == 2 and parts[0] == "functions":
        return f"function:{parts[1][:100]}", "*"
    if parts and parts[0] == "classes" and len(parts) in (2, 3):
        class_name, rest = parts[1], parts[2:]
    elif parts and f"/{parts[0]}" in _CLASS_PATHS and len(parts) in (1, 2):
        class_name, rest = _CLASS_PATHS[f"/{parts[0]}"], parts[1:]
    else:
        return None
    schema = store.schema_or_none(class_name)
    if schema is None or not schema.phi:
        return None
    return class_name, (rest[0][:64] if rest else "*")


class Dispatcher:
    """Runs API calls against the store, one transaction per call or per transactional batch."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def call(self, req: ApiRequest, repo: Repository | None = None) -> Reply:
        if repo is not None:
            return await self._call(req, repo)
        try:
            return await self._call(req, None)
        except ParseError as exc:
            await self.audit_denial(req, exc)
            raise

    async def audit_denial(self, req: ApiRequest, exc: ParseError) -> None:
        """Record a refused attempt on a PHI class or a cloud function (after the rollback),
        and the refusals that carry their own entry (a failed link or single sign-on)."""
        await audit.record_refusal(self.store, req.auth, req.audit_meta(), exc)
        if exc.code not in audit.DENIED_CODES:
            return
        target = _denied_target(self.store, req.method, req.path)
        if target is not None:
            await audit.record_denial(
                self.store,
                req.auth,
                req.audit_meta(),
                entity_type=target[0],
                entity_id=target[1],
                code=exc.code,
                face="rest",
            )

    async def _call(self, req: ApiRequest, repo: Repository | None) -> Reply:
        return await self._dispatch(req, repo)

    async def _dispatch(
        self, req: ApiRequest, repo: Repository | None, *, owned: bool = False
    ) -> Reply:
        """``owned``: ``repo`` is this call's own unit of work (not a transactional batch's)."""
        observe.note_route(template(req.method, req.path))
        if req.auth.restricted and (req.method, req.path.rstrip("/")) not in RESTRICTED_ALLOWED:
            raise OperationForbidden(
                "Multi-factor enrolment is required: call enrollMfa and confirmMfa first."
            )
        if req.path.rstrip("/") == "/batch":
            if repo is not None:
                raise InvalidQuery("A batch cannot contain another batch.")
            return await self.batch(req)
        route, params = resolve(req.method, req.path)
        req.path_params = params
        if repo is not None and not owned:
            return await route.handler(repo, req)
        if repo is not None:
            return await self._run(route, req, repo)
        if not route.writes:
            # A read: no transaction; its disclosure is group-committed before it is answered.
            async with self.store.read_only(req.auth) as reader:
                return await self._run(route, req, reader)
        async with self.store.unit_of_work(req.auth) as uow:
            return await self._run(route, req, uow)

    async def _run(self, route: Route, req: ApiRequest, uow: Repository) -> Reply:
        uow.meta = req.audit_meta()
        if route.writes and req.request_id and req.method in ("POST", "PUT"):
            await uow.claim_request_id(req.request_id)
        return await route.handler(uow, req)

    async def batch(self, req: ApiRequest) -> Reply:
        """``POST /batch``: each entry is checked as its own request with the caller's rights."""
        requests = req.body.get("requests")
        limit = self.store.settings.max_batch_requests
        if not isinstance(requests, list):
            raise InvalidJSON("requests must be an array")
        if len(requests) > limit:
            raise InvalidJSON(f"A batch may hold at most {limit} requests.")
        subs = [self._sub_request(req, entry) for entry in requests]
        if req.request_id:
            async with self.store.unit_of_work(req.auth) as uow:
                await uow.claim_request_id(req.request_id)
        if req.body.get("transaction") is True:
            replies: list[Reply] = []
            try:
                async with self.store.unit_of_work(req.auth) as uow:
                    uow.meta = req.audit_meta()
                    for sub in subs:
                        replies.append(await self.call(sub, uow))
            except ParseError as exc:
                if len(replies) < len(subs):
                    await self.audit_denial(subs[len(replies)], exc)
                raise
            return Reply([{"success": r.body} for r in replies])
        results: list[dict[str, Any]] = []
        for sub in subs:
            try:
                results.append({"success": (await self.call(sub)).body})
            except ParseError as exc:
                results.append({"error": error_body(exc)[1]})
        return Reply(results)

    def _sub_request(self, parent: ApiRequest, entry: Any) -> ApiRequest:
        if not isinstance(entry, dict):
            raise InvalidJSON("Each batch request must be an object.")
        method, path, body = entry.get("method"), entry.get("path"), entry.get("body") or {}
        if not isinstance(method, str) or not isinstance(path, str) or not isinstance(body, dict):
            raise InvalidJSON("Each batch request needs method, path and an object body.")
        mount = self.store.settings.mount_path.rstrip("/")
        if mount and path.startswith(mount + "/"):
            path = path[len(mount) :]
        if not path.startswith("/"):
            path = "/" + path
        if path.rstrip("/") == "/batch":
            raise InvalidQuery("A batch cannot contain another batch.")
        method = method.upper()
        params, data = (body, {}) if method in ("GET", "DELETE") else ({}, body)
        return ApiRequest(
            method=method,
            path=path,
            params=params,
            body=data,
            auth=parent.auth,
            client_ip=parent.client_ip,
            user_agent=parent.user_agent,
        )
