"""The ASGI application: routes, middleware and lifespan, built from explicit settings."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mindharbor import __version__, fhir, scriptlog
from mindharbor.api import graphql, live_query, openapi, views
from mindharbor.api.cors import Cors
from mindharbor.api.rest import files as files_api
from mindharbor.api.rest.reply import Reply
from mindharbor.api.rest.request import ApiRequest, build_request
from mindharbor.api.rest.router import Dispatcher
from mindharbor.auth import sessions
from mindharbor.auth.roles import ensure_builtin_roles
from mindharbor.domain.registry import build_hooks
from mindharbor.errors import ParseError, ServiceUnavailable, Unauthorized, error_body
from mindharbor.files.service import FileService
from mindharbor.health import HealthChecks
from mindharbor.jobs import JobRunner, parse_schedule
from mindharbor.observe import metrics
from mindharbor.observe import requests as observe
from mindharbor.observe.requests import RequestObserver
from mindharbor.security.auth import Auth
from mindharbor.services import Services
from mindharbor.settings import Settings
from mindharbor.storage.db import Store

log = logging.getLogger("mindharbor")


_JSON_TYPE = "application/json; charset=utf-8"
_CONTENT_TYPE_JSON = (b"content-type", _JSON_TYPE.encode("latin-1"))


class JsonResponse(Response):
    """Bytes already encoded with orjson; its headers are built here without Starlette's
    generic ``init_headers`` (content-length, then the fixed JSON content type)."""

    media_type = _JSON_TYPE

    def __init__(self, body: bytes, status: int) -> None:
        self.status_code = status
        self.background = None
        self.body = body
        self.raw_headers = [
            (b"content-length", str(len(body)).encode("latin-1")),
            _CONTENT_TYPE_JSON,
        ]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if not headers and status >= 200 and status not in (204, 304):
        return JsonResponse(orjson.dumps(body), status)
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type=_JSON_TYPE)


class MindHarbor:
    """Holds the long-lived parts of a server (store, dispatcher) for the endpoints."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.services = Services.from_settings(settings)
        self.store = Store(settings, build_hooks(settings), self.services)
        self.dispatcher = Dispatcher(self.store)
        self.jobs = JobRunner(self.store)
        self.store.jobs = self.jobs
        self.live_query = live_query.Hub(self.store, settings)
        self.files = FileService.from_settings(settings, self.store)
        self.store.files = self.files
        self.files.register(self.store.hooks)
        self.health_checks = HealthChecks(self.store, self.files, settings.redis_url)
        self.ready = False
        self.owns_process = False
        self.fhir: Any = None  # the FHIR face (fhir/routes.py), set when its routes are built
        scriptlog.ring()  # /scriptlog keeps this process's log lines from now on

    async def resolve_session(self, token: str, api: ApiRequest) -> Auth:
        return await sessions.authenticate(self.store, token)

    async def health(self, request: Request) -> Response:
        """Readiness, Parse's shape (mindharbor/health.py says what is checked)."""
        if not self.ready:
            return json_response({"status": "initialized"}, 503, {"Retry-After": "1"})
        checks = await self.health_checks.results()
        if all(state == "ok" for state in checks.values()):
            return json_response({"status": "ok"})
        body = {"status": "unavailable", "checks": checks}
        return json_response(body, 503, {"Retry-After": str(ServiceUnavailable.retry_after)})

    def sample_metrics(self) -> None:
        """This worker's gauges (pools, audit lag, LiveQuery) into the metrics."""
        sink = self.store.audit_sink
        metrics.sample(
            self.store.pool_stats(),
            sink.lag_seconds,
            sink.pending,
            len(self.live_query.connections),
            self.live_query.queue_depth(),
        )

    async def _sample_forever(self) -> None:
        while True:
            self.sample_metrics()
            await asyncio.sleep(5.0)

    async def live(self, request: Request) -> Response:
        """Liveness: this process answers (its dependencies are /health's business)."""
        return json_response({"status": "alive"})

    async def server_info(self, request: Request) -> Response:
        return await self._handle(request, "/serverInfo", self._server_info)

    async def _server_info(self, api: Any) -> Reply:
        if not api.auth.is_master:
            raise Unauthorized("unauthorized: master key is required")
        return Reply(server_info())

    async def parse_api(self, request: Request) -> Response:
        path = "/" + request.path_params.get("path", "")
        return await self._handle(request, path, self.dispatcher.call)

    async def _handle(self, request: Request, path: str, call: Any) -> Response:
        request_id = observe.request_id()
        try:
            api = await build_request(
                request, path, self.settings, self.resolve_session, request_id
            )
            reply = await call(api)
            return json_response(reply.body, reply.status, reply.headers)
        except ParseError as exc:
            status, body = error_body(exc)
            if isinstance(exc, ServiceUnavailable):
                return json_response(body, status, {"Retry-After": str(exc.retry_after)})
            return json_response(body, status)
        except Exception:
            # Never echo the exception: it may carry PHI or SQL. The id ties the log to the reply.
            facts = observe.current()
            route = facts.parse_route if facts is not None else None
            log.exception(
                "unhandled error in %s %s (request %s)", request.method, route, request_id
            )
            status, body = error_body(RuntimeError())
            return json_response(body, status, {"X-Request-Id": request_id})

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        if self.settings.migrate_on_start:
            await self.store.migrate()
        elif await self.store.schema_is_current():
            await self.store.reload_schemas()
        else:
            raise SystemExit("The database schema is behind this version: run `mindharbor migrate`")
        async with self.store.unit_of_work(Auth.system()) as repo:
            await ensure_builtin_roles(repo)
        await self.store.start_identity_feed()
        await self.store.start_raw_pool()
        plan = parse_schedule(self.settings.job_schedule)
        scheduler = asyncio.get_running_loop().create_task(self.jobs.schedule(plan))
        sampler = asyncio.get_running_loop().create_task(self._sample_forever())
        await self.live_query.start()
        if self.owns_process:
            settle_heap()
        self.ready = True
        try:
            yield
        finally:
            self.ready = False
            await self.live_query.stop()
            if self.fhir is not None and self.fhir.exports is not None:
                await self.fhir.exports.aclose()
            for task in (scheduler, sampler):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.jobs.aclose()
            await self.services.aclose()
            await self.files.aclose()
            await self.health_checks.aclose()
            await self.store.close()

    async def choose_password(self, request: Request) -> Response:
        """The page a password-reset mail links to; it calls the ``resetPassword`` function."""
        if request.path_params["app_id"] != self.settings.app_id:
            return Response("Not found", status_code=404)
        page = _RESET_PAGE.replace("__MOUNT__", self.settings.mount_path).replace(
            "__APP__", orjson.dumps(self.settings.app_id).decode()
        )
        return Response(
            page,
            media_type="text/html; charset=utf-8",
            headers={
                "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'",
                "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-store",
            },
        )


# The Parse Server release whose REST API this server speaks (bench/parse pins it): the Dashboard
# reads ``parseServerVersion`` as semver to pick features (column defaults >= 3.7, master-key-only
# config >= 3.9) and warns below 7.0. MindHarbor's own version is ``mindharborVersion``.
PARSE_API_VERSION = "9.10.0"


def server_info() -> dict[str, Any]:
    """``GET /serverInfo``: Parse's feature map (FeaturesRouter) for what this server does."""
    crud = {"create": True, "read": True, "update": True, "delete": True}
    return {
        "parseServerVersion": PARSE_API_VERSION,
        "mindharborVersion": __version__,
        "features": {
            "globalConfig": dict(crud),
            # Listed read-only (api/rest/cloud.py); the Dashboard shows its Webhooks page only
            # when all four are on, and a webhook write answers 143 with the reason.
            "hooks": dict(crud),
            "cloudCode": {"jobs": True, "viewCode": True},
            "logs": {"level": True, "size": True, "order": True, "until": False, "from": False},
            "push": {
                "immediatePush": False,
                "scheduledPush": False,
                "storedPushData": False,
                "pushAudiences": False,
                "localization": False,
            },
            "schemas": {
                "addField": True,
                "removeField": True,
                "addClass": True,
                "removeClass": True,
                "clearAllDataFromClass": True,
                "exportClass": False,
                "editClassLevelPermissions": True,
                "editPointerPermissions": True,
            },
            "settings": {"securityCheck": False},
        },
    }


# Measured with bench/compare (S3, S4, one worker): garbage collection fell from 15-25% of the
# worker's CPU to about 3%.
GC_THRESHOLDS = (20_000, 20, 20)


def settle_heap() -> None:
    """Keep the cyclic garbage collector off the request path of a server process.

    After startup a worker holds some 180,000 long-lived objects (modules, SQLAlchemy tables and
    compiled statements, the schema), and under load CPython's default thresholds (700, 10, 10)
    promote the rows and dicts of in-flight requests into the oldest generation, so full
    collections run every second or so and walk all of them: measured at about a quarter of a
    worker's CPU on the provider inbox, and pauses of tens of milliseconds. Freezing the startup
    heap takes it out of every collection (it lives as long as the process anyway), and a larger
    first threshold lets a request's short-lived objects die by reference count before they are
    promoted. Reference counting, which frees almost everything, is unchanged; cycles are still
    collected, only less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def create_app(settings: Settings, *, owns_process: bool = False) -> Starlette:
    """``owns_process``: this app is the only one in its process (a uvicorn worker), so it may
    tune process-wide state such as the garbage collector; tests and embedders leave it off."""
    server = MindHarbor(settings)
    server.owns_process = owns_process
    mount = settings.mount_path.rstrip("/")
    methods = ["GET", "POST", "PUT", "DELETE"]
    app = Starlette(
        routes=[
            # POST too: the JS SDK sends every call, /health included, as a POST whose body
            # says `_method: GET` (Parse Server answers /health on any method).
            Route(f"{mount}/health", server.health, methods=["GET", "POST"]),
            Route(f"{mount}/health/live", server.live, methods=["GET", "POST"]),
            Route(
                "/metrics",
                metrics.endpoint(
                    settings.master_key, settings.metrics_token, server.sample_metrics
                ),
                methods=["GET"],
            ),
            Route(f"{mount}/serverInfo", server.server_info, methods=["GET", "POST"]),
            Route(
                mount + "/apps/{app_id}/choose_password", server.choose_password, methods=["GET"]
            ),
            Route(mount + "/files", files_api.upload, methods=["POST"]),
            Route(mount + "/files/{app_id}/{name}", files_api.download, methods=["GET"]),
            Route(mount + "/files/{name}", files_api.upload, methods=["POST"]),
            Route(mount + "/files/{name}", files_api.delete, methods=["DELETE"]),
            *graphql.routes(server),
            *openapi.routes(server),
            *views.routes(server),
            *fhir.face_routes(server),
            Route(mount + "/{path:path}", server.parse_api, methods=methods),
            *live_query.routes(server.live_query, settings),
        ],
        middleware=[
            Middleware(RequestObserver, mount=mount, observers=(metrics.observe_request,)),
            Middleware(
                Cors,
                allow_methods=[*methods, "OPTIONS"],
                expose_headers=["X-Parse-Job-Status-Id", "X-Parse-Push-Status-Id"],
            ),
        ],
        lifespan=server.lifespan,
    )
    app.state.server = server
    return app


def app_from_environment() -> Starlette:
    """uvicorn factory (``--factory``): each worker process reads the same environment."""
    from mindharbor import httpguard
    from mindharbor.observe.logs import write_off_loop
    from mindharbor.settings import load_settings

    settings = load_settings()
    httpguard.configure(settings)
    write_off_loop()
    return create_app(settings, owns_process=True)


_RESET_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Choose a new password</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 28rem; margin: 4rem auto">
<h1>Choose a new password</h1>
<form id="f"><label>New password <input id="p" type="password" autocomplete="new-password"
 minlength="10" required></label> <button>Save</button></form>
<p id="msg" role="status"></p>
<script>
const token = new URLSearchParams(location.search).get("token");
document.getElementById("f").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await fetch("__MOUNT__/functions/resetPassword", {method: "POST",
    headers: {"Content-Type": "application/json", "X-Parse-Application-Id": __APP__},
    body: JSON.stringify({token, password: document.getElementById("p").value})});
  const body = await r.json();
  document.getElementById("msg").textContent = r.ok ? "Your password was changed." : body.error;
});
</script></body></html>
"""
