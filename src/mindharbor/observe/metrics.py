"""Prometheus metrics at ``GET /metrics`` (prometheus-client), summed across workers.

``serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at an empty directory before any worker starts
(prometheus-client's multiprocess mode): each worker writes its samples to files there and a
scrape, answered by whichever worker the connection reaches, reads every worker's files. The
supervisor marks a dead worker's gauges dead. Without the variable (tests, embedding) the
process's own registry is used.

- ``mindharbor_requests_total{route,method,status}`` and
  ``mindharbor_request_duration_seconds{route,method,status}``: route *templates* only;
- ``mindharbor_db_pool_connections{pool,state}``: SQLAlchemy's and asyncpg's pools;
- ``mindharbor_audit_batch_lag_seconds`` / ``mindharbor_audit_pending_entries``: how long the
  oldest read's audit entry has waited for its group commit, and how many wait;
- ``mindharbor_live_query_connections`` / ``mindharbor_live_query_queue_depth``;
- ``mindharbor_job_runs_total{job,status}``.

Gauges are sampled by each worker every few seconds and just before it answers a scrape.
The route is protected: the master key (``X-Parse-Master-Key``) or, when
``MINDHARBOR_METRICS_TOKEN`` is set, ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mindharbor.observe.requests import RequestFacts

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter("mindharbor_requests", "HTTP requests answered", ["route", "method", "status"])
LATENCY = Histogram(
    "mindharbor_request_duration_seconds",
    "Time to answer an HTTP request",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
POOL = Gauge(
    "mindharbor_db_pool_connections",
    "Database connections of the workers' pools",
    ["pool", "state"],
    multiprocess_mode="livesum",
)
AUDIT_LAG = Gauge(
    "mindharbor_audit_batch_lag_seconds",
    "Age of the oldest audit entry waiting for its batch (worst worker)",
    multiprocess_mode="livemax",
)
AUDIT_PENDING = Gauge(
    "mindharbor_audit_pending_entries",
    "Audit entries waiting for their batch",
    multiprocess_mode="livesum",
)
LIVE_CONNECTIONS = Gauge(
    "mindharbor_live_query_connections",
    "Open LiveQuery WebSocket connections",
    multiprocess_mode="livesum",
)
LIVE_QUEUE = Gauge(
    "mindharbor_live_query_queue_depth",
    "LiveQuery events waiting to be matched or sent",
    multiprocess_mode="livesum",
)
JOB_RUNS = Counter("mindharbor_job_runs", "Job runs by outcome", ["job", "status"])


_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(facts: RequestFacts, route: str, seconds: float) -> None:
    """A request observer (``RequestObserver``): count and time it by its template."""
    key = (route, facts.method, facts.status)
    children = _children.get(key)
    if children is None:  # label lookups take a lock: once per route, method and status
        labels = (route, facts.method, str(facts.status))
        children = _children[key] = (REQUESTS.labels(*labels), LATENCY.labels(*labels))
    children[0].inc()
    children[1].observe(seconds)


def job_ran(name: str, status: str) -> None:
    JOB_RUNS.labels(name, status).inc()


def sample(
    pool: dict[str, int], audit_lag: float, audit_pending: int, live: int, queued: int
) -> None:
    """This worker's gauges, now."""
    for key, value in pool.items():
        name, state = key.split("/", 1)
        POOL.labels(name, state).set(value)
    AUDIT_LAG.set(audit_lag)
    AUDIT_PENDING.set(audit_pending)
    LIVE_CONNECTIONS.set(live)
    LIVE_QUEUE.set(queued)


def mark_dead(pid: int) -> None:
    """The supervisor's call when a worker exits: its live gauges no longer count."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)


def exposition() -> bytes:
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return bytes(generate_latest(registry))
    return bytes(generate_latest(REGISTRY))


def allowed(request: Request, master_key: str | None, token: str | None) -> bool:
    given_key = request.headers.get("x-parse-master-key")
    if given_key is not None and master_key:
        return hmac.compare_digest(given_key.encode(), master_key.encode())
    if token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode())
    return False


def endpoint(
    master_key: str | None, token: str | None, refresh: Callable[[], None]
) -> Callable[[Request], Awaitable[Response]]:
    """``GET /metrics``: 403 Parse-style without the master key or the metrics token."""

    async def metrics(request: Request) -> Response:
        if not allowed(request, master_key, token):
            return JSONResponse({"error": "unauthorized"}, status_code=403)
        refresh()
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)

    return metrics
