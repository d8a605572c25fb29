"""The real Parse Server 9 as the other side of ``make bench-compare``.

MindHarbor claims to speak Parse's REST dialect; comparing it with Parse Server itself on the same
PostgreSQL, the same data and the same requests is the only fair yardstick for its speed. This
module installs Parse Server from the pinned ``bench/parse/package-lock.json``, starts
``bench/parse/server.js`` (a ``cluster`` of WORKERS Parse Server processes on one port, LiveQuery
on the same port, events shared through Redis), waits until every worker answers, and gives Parse
the schema, class-level permissions and indexes that MindHarbor has, so that neither side wins by
a missing index or a looser permission.

Facts about Parse 9.10 on PostgreSQL that shape this module:

* Every class is a table of the same name. A ``Pointer`` field is a ``text`` column of that name
  holding only the target's ``objectId``; ``Date`` is ``timestamp with time zone``; ``Object`` is
  ``jsonb``; ``Array`` is ``jsonb``; ``createdAt``/``updatedAt`` are ``timestamptz`` columns; the
  ACL is split into ``_rperm``/``_wperm`` (``text[]``, no index of Parse's own on either).
* A relation (``_Role.users``) is a join table ``"_Join:users:_Role"`` with ``relatedId`` (the
  user) and ``owningId`` (the role), both ``varchar(120)``, primary key ``(relatedId, owningId)``:
  a user's roles come from its prefix, a role's users from a scan. ``_Role.name`` has a unique
  index of Parse's own.
* The ACL test of a find is ``("_rperm" IS NULL OR "_rperm" && ARRAY['*', user, 'role:...'])``.
* Sessions live in ``_Session`` (``sessionToken`` text, ``user`` text pointer), a table Parse only
  creates with the first session and indexes only by its ``objectId`` primary key.
* The schema API's indexes become ``CREATE INDEX IF NOT EXISTS <name> ON <table> (<columns>)``:
  ascending b-trees whatever the direction asked for (a b-tree scans backwards for a descending
  sort just as well), and, because PostgreSQL index names are per schema, not per table, a name
  used on one class makes the same name on another class a silent no-op. Hence the class prefix
  on every index name here.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
PARSE_DIR: Path = REPO_ROOT / "bench" / "parse"

# The version of `router` that Parse's /batch needs: 2.3.0 turns every sub-request into a 500.
# package.json pins it as a dependency and in `overrides`; this is checked after an install so a
# stray `npm install` that lifted it cannot produce a run full of batch errors.
ROUTER_VERSION = "2.2.0"

# Caller's environment variables that would change Parse's behaviour or speed behind server.js's
# back: Parse's own options (PARSE_SERVER_*), its log switches, Express's debug output, Node flags
# and the libuv pool size (bcrypt runs on that pool, 4 threads by default).
_FOREIGN_ENV_PREFIXES = ("PARSE_SERVER_",)
_FOREIGN_ENV = {"VERBOSE", "TESTING", "JSON_LOGS", "DEBUG", "NODE_OPTIONS", "UV_THREADPOOL_SIZE"}


# -- installation -------------------------------------------------------------------------------
def _package_version(name: str) -> str:
    manifest = PARSE_DIR / "node_modules" / name / "package.json"
    try:
        return str(json.loads(manifest.read_text())["version"])
    except (OSError, ValueError, KeyError) as exc:
        raise RuntimeError(f"{name} is not installed in {PARSE_DIR / 'node_modules'}") from exc


def install() -> str:
    """Install Parse Server from the lock file (only when needed) and return its version.

    ``npm ci`` installs exactly what ``package-lock.json`` says, so both sides of every run are
    the same code. It is skipped while ``node_modules`` is newer than the lock file (npm writes
    ``node_modules/.package-lock.json`` at the end of an install; that is the stamp), because a
    reinstall of ~450 packages takes most of a minute.
    """
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(n for n, p in (("node", node), ("npm", npm)) if p is None)
        raise RuntimeError(
            f"{missing} not found on PATH: the Parse Server side of bench-compare needs Node.js "
            "20.19+ (or 22.13+, 24.11+) with npm"
        )
    lock = PARSE_DIR / "package-lock.json"
    if not lock.is_file():
        raise RuntimeError(f"{lock} is missing: Parse Server's versions are pinned there")
    stamp = PARSE_DIR / "node_modules" / ".package-lock.json"
    if not stamp.is_file() or stamp.stat().st_mtime < lock.stat().st_mtime:
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=PARSE_DIR,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"npm ci in {PARSE_DIR} failed ({result.returncode}):\n"
                f"{result.stdout[-4000:]}{result.stderr[-4000:]}"
            )
    router = _package_version("router")
    if router != ROUTER_VERSION:
        raise RuntimeError(
            f"router {router} is installed in {PARSE_DIR}, not {ROUTER_VERSION}: Parse's /batch "
            "fails with other versions; run `npm ci` there"
        )
    return _package_version("parse-server")


# -- the process --------------------------------------------------------------------------------
def start(
    *,
    port: int,
    database_url: str,
    workers: int,
    app_id: str,
    master_key: str,
    redis_url: str | None,
    log_path: Path,
) -> subprocess.Popen[bytes]:
    """Start ``server.js`` (a cluster primary and its workers) and return the primary.

    The server runs in a process group of its own so that :func:`stop` can end the primary and
    every worker together, even when the primary has died first. ``database_url`` may be a
    SQLAlchemy-style ``postgresql+asyncpg://`` URL; Parse wants plain ``postgres://``. Output goes
    to ``log_path``; Parse logs only errors there (and its startup deprecation notices).
    """
    if workers > 1 and not redis_url:
        raise ValueError("several Parse workers need redis_url: LiveQuery events cross workers")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_FOREIGN_ENV_PREFIXES) and k not in _FOREIGN_ENV
    }
    env.update(
        {
            "PORT": str(port),
            "HOST": "127.0.0.1",
            "WORKERS": str(workers),
            "DATABASE_URI": _postgres_uri(database_url),
            "APP_ID": app_id,
            "MASTER_KEY": master_key,
            "SERVER_URL": f"http://127.0.0.1:{port}/parse",
            # As a production deployment runs (Express drops its development-only behaviour).
            "NODE_ENV": "production",
        }
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        return subprocess.Popen(
            ["node", "server.js"],
            cwd=PARSE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _postgres_uri(database_url: str) -> str:
    scheme, sep, rest = database_url.partition("://")
    if not sep or not scheme.startswith("postgres"):
        raise ValueError(f"Parse Server needs a PostgreSQL URL, not {database_url!r}")
    return f"postgres://{rest}"


async def wait_ready(
    base_url: str,
    app_id: str,
    timeout: float = 90,
    *,
    proc: subprocess.Popen[bytes] | None = None,
) -> None:
    """Wait until every worker serves ``base_url`` (``http://127.0.0.1:PORT/parse``).

    One healthy answer proves little: the workers start one after another, and the cluster deals
    each new connection to the next worker that listens, so early requests all land on the first
    worker. server.js answers ``/health`` with 503 until a worker's LiveQuery server is connected
    and then names the worker and the worker count in headers; this polls on a fresh connection
    each time until it has seen every worker ready. A last ``GET /config`` with ``app_id`` proves
    the app is mounted under that id. ``proc`` (optional) turns an early exit into an immediate
    error instead of a timeout.
    """
    base = base_url.rstrip("/")
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    expected: int | None = None
    last = "no answer"
    # No keep-alive: each poll is a new connection, so the round-robin reaches every worker.
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=2.0, limits=limits) as client:
        while expected is None or len(seen) < expected:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"Parse Server exited early with code {proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"Parse Server at {base} not ready after {timeout:.0f}s "
                    f"({len(seen)} of {expected or '?'} workers ready; last: {last})"
                )
            try:
                response = await client.get(f"{base}/health")
            except httpx.TransportError as exc:
                last = repr(exc)
            else:
                last = f"{response.status_code} {response.text[:200]}"
                worker = response.headers.get("x-bench-worker")
                if response.status_code == 200 and worker:
                    seen.add(worker)
                    expected = int(response.headers["x-bench-workers"])
                    continue
            await asyncio.sleep(0.2)
        response = await client.get(f"{base}/config", headers={"X-Parse-Application-Id": app_id})
        if response.status_code != 200:
            raise RuntimeError(
                f"Parse Server at {base} refuses application id {app_id!r}: "
                f"{response.status_code} {response.text[:200]}"
            )


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End the whole server: SIGTERM to its process group, SIGKILL to what is left after 10 s.

    The group is signalled rather than the primary alone because a worker outlives a primary that
    was killed, and would keep the port and its database connections.
    """
    pgid = proc.pid
    with suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        proc.poll()
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        with suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


# -- schema -------------------------------------------------------------------------------------
def _pointer(target: str) -> dict[str, str]:
    return {"type": "Pointer", "targetClass": target}


_STRING = {"type": "String"}
_DATE = {"type": "Date"}
_BOOLEAN = {"type": "Boolean"}
_NUMBER = {"type": "Number"}
_OBJECT = {"type": "Object"}
_ARRAY = {"type": "Array"}

# The classes MindHarbor defines for this template, in Parse's field types.
CLASSES: dict[str, dict[str, dict[str, str]]] = {
    "PatientProfile": {
        "user": _pointer("_User"),
        "medicalRecordNumber": _STRING,
        "displayName": _STRING,
        "dateOfBirth": _DATE,
        "primaryClinic": _STRING,
        "isActive": _BOOLEAN,
        "contact": _OBJECT,
        "preferences": _OBJECT,
        "careTeam": _pointer("_Role"),
    },
    "ProviderProfile": {
        "user": _pointer("_User"),
        "displayName": _STRING,
        "specialty": _STRING,
        "clinic": _STRING,
        "contact": _OBJECT,
        "isActive": _BOOLEAN,
    },
    "IntakeAssessment": {
        "patient": _pointer("PatientProfile"),
        "assessor": _pointer("_User"),
        "assessmentDate": _DATE,
        "details": _STRING,
        "instrument": _STRING,
        "responses": _OBJECT,
        "score": _NUMBER,
        "severity": _STRING,
        "recommendations": _STRING,
        "status": _STRING,
        "version": _NUMBER,
        "scoringVersion": _STRING,
        "riskFlags": _ARRAY,
    },
    "Message": {
        "conversationId": _STRING,
        "from": _pointer("_User"),
        "to": _pointer("_User"),
        "patient": _pointer("PatientProfile"),
        "body": _STRING,
        "attachments": _ARRAY,
        "isRead": _BOOLEAN,
        "status": _STRING,
        "sentAt": _DATE,
        "deliveredAt": _DATE,
        "readAt": _DATE,
    },
}

_AUTHENTICATED = {"requiresAuthentication": True}

# What a careful deployer of this template sets: signed-in users only for every read and write
# (the ACL on each row decides which ones), deleting rows and adding fields for the master key
# only. Nothing else is protected; protectedFields keeps Parse's default.
CLASS_LEVEL_PERMISSIONS: dict[str, dict[str, bool]] = {
    "find": _AUTHENTICATED,
    "get": _AUTHENTICATED,
    "count": _AUTHENTICATED,
    "create": _AUTHENTICATED,
    "update": _AUTHENTICATED,
    "delete": {},
    "addField": {},
}


def _checked(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code != 200 and response.status_code != 201:
        raise RuntimeError(f"Parse Server: {what}: {response.status_code} {response.text[:500]}")
    body: dict[str, Any] = response.json()
    return body


async def _existing_classes(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    body = _checked(await client.get("/schemas"), "GET /schemas")
    return {schema["className"]: schema for schema in body["results"]}


async def prepare_schema(client: httpx.AsyncClient) -> None:
    """Create PatientProfile, ProviderProfile, IntakeAssessment and Message with their CLPs.

    ``client`` has ``base_url`` ``http://127.0.0.1:PORT/parse`` and sends the application id and
    master key. The server runs with ``allowClientClassCreation: false`` (Parse 9's default), so
    the classes must exist before any seeding; creating them up front with typed fields also
    keeps Parse from altering tables under load. Classes that exist are left as they are.
    """
    existing = await _existing_classes(client)
    for class_name, fields in CLASSES.items():
        if class_name in existing:
            continue
        body = {
            "className": class_name,
            "fields": fields,
            "classLevelPermissions": CLASS_LEVEL_PERMISSIONS,
        }
        _checked(await client.post(f"/schemas/{class_name}", json=body), f"create {class_name}")


def _index_name(class_name: str, keys: Mapping[str, int]) -> str:
    return class_name + "_" + "_".join(f"{field}_{order}" for field, order in keys.items())


def _wanted_indexes() -> dict[str, dict[str, dict[str, int]]]:
    """MindHarbor's indexes, as Parse index specs by class and then by index name."""
    wanted: dict[str, dict[str, dict[str, int]]] = {}
    compound: list[tuple[str, dict[str, int]]] = [
        ("IntakeAssessment", {"patient": 1, "assessmentDate": -1}),
        ("Message", {"to": 1, "isRead": 1, "createdAt": -1}),
        ("Message", {"conversationId": 1, "createdAt": -1}),
        ("_Session", {"sessionToken": 1}),
        ("_Session", {"user": 1}),
    ]
    for class_name, fields in CLASSES.items():
        # As in MindHarbor: a pointer that leads a compound index gets no index of its own.
        leading = {next(iter(spec)) for name, spec in compound if name == class_name}
        specs = [
            {field: 1}
            for field, kind in fields.items()
            if kind["type"] == "Pointer" and field not in leading
        ]
        wanted[class_name] = {_index_name(class_name, spec): spec for spec in specs}
    for class_name, spec in compound:
        wanted.setdefault(class_name, {})[_index_name(class_name, spec)] = spec
    return wanted


async def add_indexes(client: httpx.AsyncClient) -> list[str]:
    """Give Parse the indexes MindHarbor has, through the schema API; return the names created.

    One index per pointer field of the four classes, the compound ones that serve the inbox,
    the conversation and a patient's assessments, and ``_Session`` by ``sessionToken`` and by
    ``user`` (Parse itself indexes sessions only by ``objectId``, so without these every request
    with a session token scans ``_Session``). Parse accepts indexes on ``_Session`` through the
    schema API, but only once the class exists, which Parse otherwise leaves to the first login
    or sign-up; so a missing ``_Session`` is created here first, as Parse would. Indexes that
    exist already are skipped, so a second call returns an empty list.
    """
    existing = await _existing_classes(client)
    if "_Session" not in existing:
        # What Parse itself does at the first login or sign-up (a class with no fields and no
        # CLPs of the caller's), done early so the indexes can be added before the load.
        body = _checked(
            await client.post("/schemas/_Session", json={"className": "_Session"}),
            "create _Session",
        )
        existing["_Session"] = body
    created: list[str] = []
    for class_name, specs in _wanted_indexes().items():
        have = existing.get(class_name, {}).get("indexes") or {}
        missing = {name: spec for name, spec in specs.items() if name not in have}
        if not missing:
            continue
        _checked(
            await client.put(f"/schemas/{class_name}", json={"indexes": missing}),
            f"indexes on {class_name}",
        )
        created.extend(missing)
    return created


async def parse_version(client: httpx.AsyncClient) -> str:
    """The running server's version (``GET /serverInfo``, master key), else the installed one."""
    with suppress(httpx.HTTPError, ValueError, KeyError):
        response = await client.get("/serverInfo")
        if response.status_code == 200:
            return str(response.json()["parseServerVersion"])
    return install()
