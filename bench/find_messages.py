"""Benchmark the inbox query: ``Message`` where ``to`` = a user, newest 50, under per-row ACLs.

Why this query: opening (or polling) an inbox is the hottest read a messaging EHR serves, and
with each message's ACL naming only its sender and recipient, almost every row in the table is
invisible to any one caller. That is the worst shape for the ACL filter: a selective ``where``
plus a permission test on every candidate row, on both SQLite and PostgreSQL.

Per backend the run is:

1. Start ``mindharbor serve`` on a scratch database and seed N patients x M messages through the
   REST API (``POST /parse/batch`` with the master key), with realistic per-message ACLs.
2. ``http, master key``: ``GET /parse/classes/Message`` end to end. Users and sessions do not
   exist yet, so HTTP cannot act *as* a user; this prices routing, SQL and JSON encoding.
3. Stop the server, open the same database in-process and run the same query through
   ``Store.unit_of_work(Auth.user(...))``, the path an authenticated request will take (ACL
   filter in the SQL), and once more with ``Auth.master()``. The difference between those two is
   the ACL filter's cost; the difference between (2) and the in-process master run is HTTP's.
4. Check on a sample of users that the ACL path returns exactly the messages they sent or
   received, and that the inbox query returns only their newest incoming messages.

Every scenario is a closed loop: ``--concurrency`` tasks each issue one request at a time, for
``--warmup`` + ``--duration`` seconds, rotating through distinct users; only requests started in
the measured window count. The bench's own CPU use (and the server's, from /proc) is reported so
it is visible whether the load generator, not the server, was the limit.

This is not a test: nothing here asserts timings. Results print as a table per backend and are
written to ``bench/results/latest.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import platform
import random
import resource
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import asyncpg
import httpx

from mindharbor.security.auth import Auth
from mindharbor.settings import Settings
from mindharbor.storage.db import Store
from mindharbor.storage.repository import FindQuery

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"
WORK_DIR = REPO_ROOT / "bench" / ".work"  # git-ignored; scratch SQLite files and server logs
APP_ID = "bench"
MOUNT = "/parse"
INBOX_LIMIT = 50
BATCH_SIZE = 50  # the server's default max_batch_requests
SEED_CONCURRENCY = 4  # batches in flight while seeding; more only queues on SQLite's one writer
PAGE_LIMIT = 1000  # the server's default max_limit, used to page through correctness reads
BACKENDS = ("sqlite", "postgres")

Op = Callable[[str], Awaitable[None]]
"""One benchmarked request for a user id; raises on any failure."""


# -- configuration ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Config:
    """Command-line knobs; defaults are small enough for a laptop run of about a minute."""

    patients: int
    messages: int
    providers: int
    duration: float
    warmup: float
    concurrency: int
    backends: tuple[str, ...]
    pg_url: str
    workers: int
    http_client: str
    sample_users: int
    output: Path
    keep: bool


def parse_args(argv: Sequence[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(
        prog="python -m bench.find_messages",
        description="Seed messages with ACLs, then time the ACL-filtered inbox query.",
    )
    parser.add_argument("--patients", type=int, default=200, help="patients (N), default 200")
    parser.add_argument("--messages", type=int, default=20, help="messages per patient (M)")
    parser.add_argument("--providers", type=int, default=20, help="providers sharing patients")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds/scenario")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="admin URL used to create and drop a scratch database ($BENCH_PG_URL)",
    )
    parser.add_argument("--workers", type=int, default=1, help="server workers (PostgreSQL only)")
    parser.add_argument(
        "--http-client",
        choices=["raw", "httpx"],
        default="raw",
        help="load generator for the HTTP scenario (raw: minimal keep-alive HTTP/1.1)",
    )
    parser.add_argument("--sample-users", type=int, default=10, help="users in correctness check")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "latest.json")
    parser.add_argument("--keep", action="store_true", help="keep bench/.work data and logs")
    args = parser.parse_args(argv)
    if min(args.patients, args.messages, args.providers, args.concurrency) < 1:
        parser.error("--patients, --messages, --providers and --concurrency must be >= 1")
    return Config(
        patients=args.patients,
        messages=args.messages,
        providers=args.providers,
        duration=args.duration,
        warmup=args.warmup,
        concurrency=args.concurrency,
        backends=BACKENDS if args.backend == "both" else (args.backend,),
        pg_url=args.pg_url,
        workers=args.workers,
        http_client=args.http_client,
        sample_users=args.sample_users,
        output=args.output,
        keep=args.keep,
    )


# -- Parse wire helpers -------------------------------------------------------------------------
def pointer(class_name: str, object_id: str) -> dict[str, str]:
    return {"__type": "Pointer", "className": class_name, "objectId": object_id}


def acl(*user_ids: str) -> dict[str, dict[str, bool]]:
    """Read/write for exactly these users and nobody else (no public ``*`` entry)."""
    return {uid: {"read": True, "write": True} for uid in user_ids}


def inbox_where(user_id: str) -> dict[str, Any]:
    return {"to": pointer("_User", user_id)}


def inbox_query(user_id: str) -> FindQuery:
    return FindQuery(where=inbox_where(user_id), order="-createdAt", limit=INBOX_LIMIT)


# -- the seeded data set ------------------------------------------------------------------------
@dataclass(frozen=True)
class SeededMessage:
    object_id: str
    sender: str
    recipient: str


@dataclass
class Seed:
    """What was created, kept in memory so the correctness check knows the right answers."""

    providers: list[str]
    patients: list[str]
    profiles: list[str]
    messages: list[SeededMessage]
    seconds: float

    @property
    def rows(self) -> int:
        return len(self.providers) + len(self.patients) + len(self.profiles) + len(self.messages)

    def recipients(self) -> list[str]:
        """Users who have an inbox to read: the benchmark rotates through all of them."""
        seen = dict.fromkeys(m.recipient for m in self.messages)
        return list(seen)

    def involving(self, user_id: str) -> set[str]:
        return {m.object_id for m in self.messages if user_id in (m.sender, m.recipient)}

    def addressed_to(self, user_id: str) -> set[str]:
        return {m.object_id for m in self.messages if m.recipient == user_id}


def provider_of(patient_index: int, providers: Sequence[str]) -> str:
    return providers[patient_index % len(providers)]


def message_plan(
    cfg: Config, patients: Sequence[str], providers: Sequence[str], profiles: Sequence[str]
) -> list[tuple[str, str, dict[str, Any]]]:
    """(sender, recipient, body) for every message: one thread per patient, turns alternating."""
    plan = []
    for p, (patient, profile) in enumerate(zip(patients, profiles, strict=True)):
        provider = provider_of(p, providers)
        for j in range(cfg.messages):
            sender, recipient = (provider, patient) if j % 2 == 0 else (patient, provider)
            body = {
                "conversationId": f"conv-{p:05d}",
                "from": pointer("_User", sender),
                "to": pointer("_User", recipient),
                "patient": pointer("PatientProfile", profile),
                "body": f"Synthetic bench message {j} in thread {p}.",
                "isRead": j < cfg.messages // 2,
                "ACL": acl(sender, recipient),
            }
            plan.append((sender, recipient, body))
    return plan


class SeedError(RuntimeError):
    """A batch entry failed: the numbers would be meaningless, so the run stops."""


async def create_many(
    client: httpx.AsyncClient, class_name: str, bodies: list[dict[str, Any]]
) -> list[str]:
    """Create objects in transactional batches of 50, a few batches at a time; objectIds in order.

    Transactional batches make one commit per 50 rows, which keeps SQLite seeding fast; seeding
    speed is reported but is not what this benchmark is about.
    """
    gate = asyncio.Semaphore(SEED_CONCURRENCY)

    async def one_batch(chunk: list[dict[str, Any]]) -> list[str]:
        requests = [
            {"method": "POST", "path": f"{MOUNT}/classes/{class_name}", "body": b} for b in chunk
        ]
        async with gate:
            response = await client.post(
                f"{MOUNT}/batch", json={"requests": requests, "transaction": True}
            )
        if response.status_code != 200:
            raise SeedError(
                f"batch of {class_name}: HTTP {response.status_code} {response.text[:300]}"
            )
        replies = response.json()
        failed = [r for r in replies if "success" not in r]
        if failed:
            raise SeedError(f"batch of {class_name}: {failed[0]}")
        return [r["success"]["objectId"] for r in replies]

    chunks = [bodies[i : i + BATCH_SIZE] for i in range(0, len(bodies), BATCH_SIZE)]
    results = await asyncio.gather(*(one_batch(c) for c in chunks))
    return list(itertools.chain.from_iterable(results))


async def seed_via_http(client: httpx.AsyncClient, cfg: Config) -> Seed:
    started = time.perf_counter()
    providers = await create_many(
        client, "_User", [{"username": f"bench-provider-{i:04d}"} for i in range(cfg.providers)]
    )
    patients = await create_many(
        client, "_User", [{"username": f"bench-patient-{i:05d}"} for i in range(cfg.patients)]
    )
    profiles = await create_many(
        client,
        "PatientProfile",
        [
            {
                "user": pointer("_User", uid),
                "medicalRecordNumber": f"BENCH-{i:06d}",
                "displayName": f"Bench Patient {i}",
                "isActive": True,
                "ACL": acl(uid, provider_of(i, providers)),
            }
            for i, uid in enumerate(patients)
        ],
    )
    plan = message_plan(cfg, patients, providers, profiles)
    ids = await create_many(client, "Message", [body for _, _, body in plan])
    messages = [SeededMessage(oid, s, r) for oid, (s, r, _) in zip(ids, plan, strict=True)]
    return Seed(providers, patients, profiles, messages, time.perf_counter() - started)


# -- the server under test ----------------------------------------------------------------------
@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    base_url: str
    log_path: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(
    data_dir: Path, database_url: str | None, port: int, master_key: str
) -> dict[str, str]:
    """The caller's environment minus any MINDHARBOR_* settings, which would skew the run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINDHARBOR_")}
    env.update(
        {
            "MINDHARBOR_DATA_DIR": str(data_dir),
            "MINDHARBOR_MASTER_KEY": master_key,
            "MINDHARBOR_APP_ID": APP_ID,
            "MINDHARBOR_PORT": str(port),
        }
    )
    if database_url:
        env["MINDHARBOR_DATABASE_URL"] = database_url
    return env


async def start_server(
    data_dir: Path, database_url: str | None, workers: int, master_key: str
) -> Server:
    port = free_port()
    log_path = data_dir / "server.log"
    command = [sys.executable, "-m", "mindharbor", "serve"]
    if database_url and workers > 1:
        command += ["--workers", str(workers)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(  # one blocking spawn before the clock starts
            command,
            cwd=REPO_ROOT,
            env=server_env(data_dir, database_url, port, master_key),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(proc, f"http://127.0.0.1:{port}", log_path)
    try:
        await wait_healthy(server)
    except BaseException:
        stop_server(server)
        raise
    return server


async def wait_healthy(server: Server, timeout: float = 60.0) -> None:
    """Poll /health: the server migrates before it listens, so readiness can take a while."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=server.base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                raise RuntimeError(f"server exited early; log:\n{tail(server.log_path)}")
            with suppress(httpx.TransportError):
                response = await client.get(f"{MOUNT}/health")
                if response.status_code == 200 and response.json().get("status") == "ok":
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"server not healthy after {timeout:.0f}s; log:\n{tail(server.log_path)}")


def stop_server(server: Server) -> None:
    """SIGTERM lets uvicorn shut its workers down; SIGKILL only if it hangs."""
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


def tail(path: Path, lines: int = 30) -> str:
    with suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


# -- CPU accounting -----------------------------------------------------------------------------
def own_cpu_seconds() -> float:
    """User + system CPU of this process, all threads (aiosqlite's worker thread included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_tree_cpu_seconds(root_pid: int | None) -> float | None:
    """CPU of a process and its live descendants, from /proc (Linux); None where unavailable.

    uvicorn with ``--workers`` forks children whose CPU would not show in the parent's counters
    until they exit, so the whole tree is summed.
    """
    if root_pid is None or not Path("/proc/self/stat").exists():
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with suppress(OSError, ValueError, IndexError):
            raw = (entry / "stat").read_text()
            fields = raw[raw.rindex(")") + 2 :].split()
            stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks)
    if root_pid not in stats:
        return None
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _) in stats.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(stats[pid][1] for pid in tree)


# -- the load loop ------------------------------------------------------------------------------
@dataclass
class ScenarioResult:
    name: str
    concurrency: int
    seconds: float
    requests: int
    errors: int
    p50_ms: float | None
    p99_ms: float | None
    bench_cpu_pct: float
    server_cpu_pct: float | None
    first_error: str | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "requests_per_s": round(self.rps, 1)}


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile: always an observed latency, never an interpolated one."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class _Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None


async def run_load(
    name: str, op: Op, users: Sequence[str], cfg: Config, server_pid: int | None = None
) -> ScenarioResult:
    """Closed loop: ``concurrency`` tasks, each one request at a time, users in rotation."""
    rotation = itertools.cycle(users)
    tally = _Tally()
    measure_from = time.perf_counter() + cfg.warmup
    stop_at = measure_from + cfg.duration

    async def worker() -> None:
        while (start := time.perf_counter()) < stop_at:
            error = await _attempt(op, next(rotation))
            if start < measure_from:
                continue
            if error is None:
                tally.latencies.append(time.perf_counter() - start)
            else:
                tally.errors += 1
                tally.first_error = tally.first_error or error

    tasks = [asyncio.create_task(worker()) for _ in range(cfg.concurrency)]
    await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
    wall0, cpu0, srv0 = time.perf_counter(), own_cpu_seconds(), process_tree_cpu_seconds(server_pid)
    await asyncio.sleep(max(0.0, stop_at - time.perf_counter()))
    wall = time.perf_counter() - wall0
    cpu, srv1 = own_cpu_seconds() - cpu0, process_tree_cpu_seconds(server_pid)
    await asyncio.gather(*tasks)
    return summarize(
        name, cfg, tally, wall, cpu, None if srv0 is None or srv1 is None else srv1 - srv0
    )


async def _attempt(op: Op, user_id: str) -> str | None:
    """Run one request; the error text instead of an exception, so one failure ends nothing."""
    try:
        await op(user_id)
    except Exception as exc:  # every failure is counted, none ends the run
        return f"{type(exc).__name__}: {exc}"[:300]
    return None


def summarize(
    name: str, cfg: Config, tally: _Tally, wall: float, cpu: float, server_cpu: float | None
) -> ScenarioResult:
    ordered = sorted(tally.latencies)
    p50, p99 = percentile(ordered, 50), percentile(ordered, 99)
    return ScenarioResult(
        name=name,
        concurrency=cfg.concurrency,
        seconds=round(cfg.duration, 3),
        requests=len(ordered),
        errors=tally.errors,
        p50_ms=None if p50 is None else round(p50 * 1000, 2),
        p99_ms=None if p99 is None else round(p99 * 1000, 2),
        bench_cpu_pct=round(100 * cpu / wall, 1) if wall else 0.0,
        server_cpu_pct=None
        if server_cpu is None or not wall
        else round(100 * server_cpu / wall, 1),
        first_error=tally.first_error,
    )


# -- the scenarios ------------------------------------------------------------------------------
def inbox_target(user_id: str) -> str:
    """The request path and query string of one inbox read."""
    params = {
        "where": json.dumps(inbox_where(user_id), separators=(",", ":")),
        "order": "-createdAt",
        "limit": str(INBOX_LIMIT),
    }
    return f"{MOUNT}/classes/Message?{urlencode(params)}"


def httpx_inbox_op(client: httpx.AsyncClient) -> Op:
    """The inbox query over REST with httpx; only the status is checked."""

    async def op(user_id: str) -> None:
        response = await client.get(inbox_target(user_id))
        response.raise_for_status()

    return op


class RawConnection:
    """One keep-alive HTTP/1.1 connection that can only send a GET and read a sized reply.

    Why not httpx for the timed loop: on a 2-core machine httpx's pool cost ~3 ms of client CPU
    per request at 32 connections, so the load generator, not the server, set the pace. This
    costs a small fraction of that. It understands only what the server sends (Content-Length
    bodies); anything else is an error, which the run counts rather than hides.
    """

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        self.head = "".join(
            f"{k}: {v}\r\n" for k, v in {"Host": f"{host}:{port}", **headers}.items()
        )
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, target: str) -> int:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(f"GET {target} HTTP/1.1\r\n{self.head}\r\n".encode())
        await self.writer.drain()
        status = int((await self.reader.readline()).split()[1])
        length = None
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise ValueError("reply without Content-Length")
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class RawPool:
    """Exactly ``size`` connections for ``size`` workers, so taking one never waits."""

    def __init__(self, base_url: str, master_key: str, size: int) -> None:
        url = urlsplit(base_url)
        headers = {"X-Parse-Application-Id": APP_ID, "X-Parse-Master-Key": master_key}
        self.idle: asyncio.Queue[RawConnection] = asyncio.Queue()
        for _ in range(size):
            self.idle.put_nowait(
                RawConnection(url.hostname or "127.0.0.1", url.port or 80, headers)
            )

    def inbox_op(self) -> Op:
        async def op(user_id: str) -> None:
            conn = await self.idle.get()
            try:
                status = await conn.get(inbox_target(user_id))
            except BaseException:
                conn.close()  # its stream may hold half a reply; reconnect next time
                raise
            finally:
                self.idle.put_nowait(conn)
            if status != 200:
                raise RuntimeError(f"HTTP {status}")

        return op

    def close(self) -> None:
        while not self.idle.empty():
            self.idle.get_nowait().close()


def inproc_inbox_op(store: Store, auth_for: Callable[[str], Auth]) -> Op:
    """The inbox query through the object service, as the request handler will run it."""

    async def op(user_id: str) -> None:
        async with store.unit_of_work(auth_for(user_id)) as repo:
            await repo.find("Message", inbox_query(user_id))

    return op


def http_client(base_url: str, master_key: str, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"X-Parse-Application-Id": APP_ID, "X-Parse-Master-Key": master_key}
    return httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=60.0)


# -- correctness --------------------------------------------------------------------------------
async def find_all(store: Store, auth: Auth, where: dict[str, Any]) -> list[dict[str, Any]]:
    """Every visible Message matching ``where``, paging so no limit can hide a leaked row."""
    found: list[dict[str, Any]] = []
    while True:
        query = FindQuery(where=where, order="createdAt", limit=PAGE_LIMIT, skip=len(found))
        async with store.unit_of_work(auth) as repo:
            page = (await repo.find("Message", query)).results
        found.extend(page)
        if len(page) < PAGE_LIMIT:
            return found


def party(obj: dict[str, Any], role: str) -> str | None:
    value = obj.get(role)
    return value.get("objectId") if isinstance(value, dict) else None


async def check_user(store: Store, seed: Seed, user_id: str, other: str) -> list[str]:
    """Problems found for one user (empty when all is well)."""
    auth, problems = Auth.user(user_id), []
    visible = await find_all(store, auth, {})
    if {o["objectId"] for o in visible} != seed.involving(user_id):
        problems.append(
            f"{user_id}: ACL-only find saw {len(visible)} rows, "
            f"expected the {len(seed.involving(user_id))} it sent or received"
        )
    if any(user_id not in (party(o, "to"), party(o, "from")) for o in visible):
        problems.append(f"{user_id}: ACL-only find returned a message it is not party to")
    async with store.unit_of_work(auth) as repo:
        inbox = (await repo.find("Message", inbox_query(user_id))).results
    expected = min(INBOX_LIMIT, len(seed.addressed_to(user_id)))
    if len(inbox) != expected or any(party(o, "to") != user_id for o in inbox):
        problems.append(
            f"{user_id}: inbox returned {len(inbox)} rows (expected {expected}, all to it)"
        )
    stamps = [o["createdAt"] for o in inbox]
    if stamps != sorted(stamps, reverse=True):
        problems.append(f"{user_id}: inbox is not newest first")
    snooped = await find_all(store, auth, inbox_where(other))
    if any(party(o, "from") != user_id for o in snooped):
        problems.append(f"{user_id}: querying {other}'s inbox returned messages it did not send")
    return problems


async def check_correctness(store: Store, seed: Seed, sample_size: int) -> dict[str, Any]:
    """A sample of providers and patients: each sees exactly its own messages, no one else's."""
    users = seed.recipients()
    sample = random.Random(7).sample(users, min(sample_size, len(users)))
    problems: list[str] = []
    for i, user_id in enumerate(sample):
        problems += await check_user(store, seed, user_id, sample[(i + 1) % len(sample)])
    return {"users_checked": len(sample), "passed": not problems, "problems": problems}


# -- one backend, end to end --------------------------------------------------------------------
@asynccontextmanager
async def scratch_database(admin_url: str) -> AsyncIterator[str]:
    """A throwaway PostgreSQL database, dropped afterwards even if the run fails."""
    name = f"mindharbor_bench_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield urlsplit(admin_url)._replace(path=f"/{name}").geturl()
    finally:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
            )
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        finally:
            await conn.close()


@asynccontextmanager
async def database_for(backend: str, cfg: Config) -> AsyncIterator[str | None]:
    """None means the server's default: a SQLite file under its data dir."""
    if backend == "sqlite":
        yield None
        return
    async with scratch_database(cfg.pg_url) as url:
        yield url


async def postgres_version(admin_url: str) -> str:
    conn = await asyncpg.connect(admin_url, timeout=5)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


async def http_phase(
    cfg: Config, data_dir: Path, database_url: str | None, master_key: str
) -> tuple[Seed, ScenarioResult]:
    workers = cfg.workers if database_url else 1
    server = await start_server(data_dir, database_url, workers, master_key)
    try:
        async with http_client(server.base_url, master_key, max(cfg.concurrency, 8)) as client:
            seed = await seed_via_http(client, cfg)
            print(f"  seeded {seed.rows} rows in {seed.seconds:.1f}s", flush=True)
            name = f"http find, master key ({workers}w, {cfg.http_client} client)"
            if cfg.http_client == "httpx":
                op = httpx_inbox_op(client)
                result = await run_load(name, op, seed.recipients(), cfg, server.proc.pid)
            else:
                pool = RawPool(server.base_url, master_key, cfg.concurrency)
                try:
                    op = pool.inbox_op()
                    result = await run_load(name, op, seed.recipients(), cfg, server.proc.pid)
                finally:
                    pool.close()
    finally:
        stop_server(server)
    return seed, result


async def inproc_phase(
    cfg: Config, seed: Seed, settings: Settings
) -> tuple[dict[str, Any], list[ScenarioResult]]:
    store = Store(settings)
    try:
        await store.migrate()
        correctness = await check_correctness(store, seed, cfg.sample_users)
        users = seed.recipients()
        as_user = await run_load(
            "in-process find, as user (ACL)", inproc_inbox_op(store, Auth.user), users, cfg
        )
        as_master = await run_load(
            "in-process find, master key",
            inproc_inbox_op(store, lambda _uid: Auth.master()),
            users,
            cfg,
        )
    finally:
        await store.close()
    return correctness, [as_user, as_master]


async def run_backend(backend: str, cfg: Config) -> dict[str, Any]:
    """Seed and measure one backend on a fresh database; the scratch data is removed after."""
    print(f"[{backend}] starting", flush=True)
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix=f"{backend}-", dir=WORK_DIR))
    master_key = secrets.token_urlsafe(24)
    try:
        async with database_for(backend, cfg) as database_url:
            seed, http_result = await http_phase(cfg, data_dir, database_url, master_key)
            settings = Settings(
                data_dir=data_dir, database_url=database_url, app_id=APP_ID, master_key=master_key
            )
            correctness, inproc = await inproc_phase(cfg, seed, settings)
    finally:
        if not cfg.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    return backend_report(backend, cfg, seed, [http_result, *inproc], correctness)


def backend_report(
    backend: str,
    cfg: Config,
    seed: Seed,
    scenarios: list[ScenarioResult],
    correctness: dict[str, Any],
) -> dict[str, Any]:
    return {
        "backend": backend,
        "server_workers": cfg.workers if backend == "postgres" else 1,
        "seed": {
            "providers": len(seed.providers),
            "patients": len(seed.patients),
            "patient_profiles": len(seed.profiles),
            "messages": len(seed.messages),
            "messages_per_patient": cfg.messages,
            "rows": seed.rows,
            "seconds": round(seed.seconds, 2),
            "rows_per_s": round(seed.rows / seed.seconds, 1) if seed.seconds else None,
            "users_in_rotation": len(seed.recipients()),
        },
        "scenarios": [s.to_json() for s in scenarios],
        "correctness": correctness,
    }


# -- reporting ----------------------------------------------------------------------------------
COLUMNS = ("scenario", "requests", "req/s", "p50 ms", "p99 ms", "errors", "bench CPU", "server CPU")


def fmt(value: float | None, suffix: str = "") -> str:
    return (
        "-"
        if value is None
        else f"{value:,.1f}{suffix}"
        if isinstance(value, float)
        else f"{value:,}"
    )


def table_rows(report: dict[str, Any]) -> list[tuple[str, ...]]:
    return [
        (
            s["name"],
            fmt(s["requests"]),
            fmt(s["requests_per_s"]),
            fmt(s["p50_ms"]),
            fmt(s["p99_ms"]),
            fmt(s["errors"]),
            fmt(s["bench_cpu_pct"], "%"),
            fmt(s["server_cpu_pct"], "%"),
        )
        for s in report["scenarios"]
    ]


def render_table(rows: Iterable[tuple[str, ...]]) -> str:
    body = [COLUMNS, *rows]
    widths = [max(len(r[i]) for r in body) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in body
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_backend(report: dict[str, Any]) -> str:
    seed, check = report["seed"], report["correctness"]
    verdict = "passed" if check["passed"] else "FAILED: " + "; ".join(check["problems"][:5])
    return "\n".join(
        [
            f"== {report['backend']} ({report.get('version', '')}) ==",
            f"seed: {seed['patients']} patients x {seed['messages_per_patient']} messages, "
            f"{seed['providers']} providers = {seed['rows']:,} rows in {seed['seconds']:.1f}s "
            f"({fmt(seed['rows_per_s'])} rows/s); {seed['users_in_rotation']} users in rotation",
            render_table(table_rows(report)),
            f"correctness ({check['users_checked']} users, ACL-only and inbox finds): {verdict}",
        ]
    )


def git_state() -> dict[str, Any]:
    """Which code was measured: results from a dirty tree are not comparable run to run."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    return {
        "commit": git("rev-parse", "HEAD") or None,
        "src_dirty": bool(git("status", "--porcelain", "src")),
    }


def environment(versions: dict[str, str]) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "versions": versions,
        "git": git_state(),
    }


def write_results(path: Path, payload: dict[str, Any]) -> None:
    """Write via a .tmp file (git-ignored) and rename, so a crash never leaves half a JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    tmp.replace(path)


# -- entry point --------------------------------------------------------------------------------
async def available_backends(cfg: Config) -> tuple[list[str], dict[str, str], list[str]]:
    """Backends to run, their versions, and notes for those skipped (PostgreSQL may be absent)."""
    versions = {"sqlite": f"SQLite {sqlite3.sqlite_version}"}
    notes: list[str] = []
    backends = [b for b in cfg.backends if b == "sqlite"]
    if "postgres" in cfg.backends:
        try:
            versions["postgres"] = f"PostgreSQL {await postgres_version(cfg.pg_url)}"
            backends.append("postgres")
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            target = urlsplit(cfg.pg_url)
            where = f"{target.hostname}:{target.port or 5432}"  # never the credentials
            notes.append(
                f"PostgreSQL unreachable at {where}: {type(exc).__name__}: {exc}; "
                f"ran {', '.join(backends) or 'nothing'} only"
            )
            print(notes[-1], flush=True)
    return backends, versions, notes


async def main_async(cfg: Config) -> dict[str, Any]:
    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    backends, versions, notes = await available_backends(cfg)
    env = environment(versions)  # before the run, so load_average shows other work on the box
    reports = []
    for backend in backends:
        report = {**await run_backend(backend, cfg), "version": versions[backend]}
        print(render_backend(report), flush=True)
        reports.append(report)
    settings = {k: v for k, v in asdict(cfg).items() if k not in ("pg_url", "output", "keep")}
    return {
        "benchmark": "find_messages",
        "query": {
            "className": "Message",
            "where": {"to": "<the user>"},
            "order": "-createdAt",
            "limit": INBOX_LIMIT,
        },
        "started_at": started_at,
        "config": settings,
        "environment": env,
        "notes": notes,
        "results": reports,
    }


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    payload = asyncio.run(main_async(cfg))
    write_results(cfg.output, payload)
    print(f"\nresults written to {cfg.output}")
    failed = [r["backend"] for r in payload["results"] if not r["correctness"]["passed"]]
    return 1 if failed or not payload["results"] else 0


if __name__ == "__main__":
    sys.exit(main())
