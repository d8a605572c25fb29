"""Benchmark the inbox query: ``Message`` where ``to`` = me, newest 50, as a logged-in user.

Why this query: opening (or polling) an inbox is the hottest read a messaging EHR serves. Each
message's ACL (set by the server) names the patient, the patient's care-team role and the two
parties, so almost every row in the table is invisible to any one caller: a selective ``where``
plus a permission test on every candidate row, on both SQLite and PostgreSQL. Every such read is
also a PHI read, which the server records as one ``AuditLog`` entry per request (``audit_reads``),
so a read request is also a write; this bench prices that.

Per backend the run is:

1. Start ``mindharbor serve`` (read auditing on, the default) on a scratch database and seed
   through the REST API with the master key: providers and patients (``POST /users`` with a
   password and a role, in ``/batch``), their ``PatientProfile`` (the server makes each care-team
   role), ``assignProvider`` for each patient, then M messages per patient between the patient
   and their provider (``from`` sent explicitly, the ACL left to the server).
2. Log every user in once (``POST /login``) and keep the session tokens.
3. Start a second server on the same database with ``MINDHARBOR_AUDIT_READS=false``. With both
   up, alternate short rounds between them (on, off, off, on, ...) for two HTTP scenarios: the
   inbox find **as the user** (``X-Parse-Session-Token``) and with the master key. Medians over
   rounds, and the medians of the per-round on/off ratios, are the audit overhead; alternating
   cancels most of the drift of a noisy machine.
4. Stop both servers and repeat in-process with two ``Store(settings, build_hooks(settings))``
   (audit on / off): a session resolve plus the find in its own unit of work, as a request does,
   and the master-key find.
5. Correctness. While loaded, every response for a sample of users is decoded and must hold only
   messages addressed to that user (any other row is a leak), ``min(50, received)`` of them,
   newest first. After the load, the AuditLog must have grown by exactly one ``phi.read`` entry
   per request served with auditing on and by none with it off. Finally, in-process, each sampled
   user's unfiltered find must return exactly the messages they sent or received. Any leak,
   wrong answer or request error makes the run exit non-zero.

Every scenario is a closed loop: ``--concurrency`` tasks each issue one request at a time, for
``--warmup`` + one round's share of ``--duration`` seconds, rotating through distinct users; only
requests started in the measured window count. The bench's own CPU use (and the server's, from
/proc) is reported so it is visible whether the load generator, not the server, was the limit.

This is not a test: nothing here asserts timings. Results print as tables per backend and are
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
import statistics
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
import orjson

from mindharbor.auth import sessions
from mindharbor.domain.registry import build_hooks
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
LOGIN_CONCURRENCY = 4  # logins in flight; each costs an argon2 verify on the server's loop
PAGE_LIMIT = 1000  # the server's default max_limit, used to page through correctness reads
BACKENDS = ("sqlite", "postgres")
# Synthetic accounts only; 10+ characters and not containing the username (the server's policy).
BENCH_PASSWORD = "bench-harbor-passphrase"
AUDIT_MODES = ((True, "audit on"), (False, "audit off"))

Op = Callable[[str], Awaitable[None]]
"""One benchmarked request for a user id; raises on any failure."""


# -- configuration ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Config:
    """Command-line knobs; defaults are small enough for a run of a few minutes per backend."""

    patients: int
    messages: int
    providers: int
    duration: float
    warmup: float
    rounds: int
    concurrency: int
    backends: tuple[str, ...]
    pg_url: str
    workers: int
    http_client: str
    sample_users: int
    server_jobs: bool
    output: Path
    keep: bool

    @property
    def round_seconds(self) -> float:
        return self.duration / self.rounds


def parse_args(argv: Sequence[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(
        prog="python -m bench.find_messages",
        description="Seed users, care teams and messages, then time the inbox query as users.",
    )
    parser.add_argument("--patients", type=int, default=200, help="patients (N), default 200")
    parser.add_argument("--messages", type=int, default=20, help="messages per patient (M)")
    parser.add_argument("--providers", type=int, default=20, help="providers sharing patients")
    parser.add_argument(
        "--duration", type=float, default=10.0, help="measured seconds per scenario (all rounds)"
    )
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per round")
    parser.add_argument(
        "--rounds", type=int, default=5, help="alternating audit on/off rounds per scenario"
    )
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
        help="load generator for the HTTP scenarios (raw: minimal keep-alive HTTP/1.1)",
    )
    parser.add_argument(
        "--sample-users", type=int, default=10, help="users whose replies are checked"
    )
    parser.add_argument(
        "--server-jobs",
        action="store_true",
        help="keep the servers' job schedule (audit sealing every 60 s); off by default",
    )
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "latest.json")
    parser.add_argument("--keep", action="store_true", help="keep bench/.work data and logs")
    args = parser.parse_args(argv)
    if min(args.patients, args.messages, args.providers, args.concurrency, args.rounds) < 1:
        parser.error("--patients, --messages, --providers, --concurrency and --rounds must be >= 1")
    return Config(
        patients=args.patients,
        messages=args.messages,
        providers=args.providers,
        duration=args.duration,
        warmup=args.warmup,
        rounds=args.rounds,
        concurrency=args.concurrency,
        backends=BACKENDS if args.backend == "both" else (args.backend,),
        pg_url=args.pg_url,
        workers=args.workers,
        http_client=args.http_client,
        sample_users=args.sample_users,
        server_jobs=args.server_jobs,
        output=args.output,
        keep=args.keep,
    )


# -- Parse wire helpers -------------------------------------------------------------------------
def pointer(class_name: str, object_id: str) -> dict[str, str]:
    return {"__type": "Pointer", "className": class_name, "objectId": object_id}


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
    """What was created, kept in memory so the correctness checks know the right answers."""

    providers: list[str]
    patients: list[str]
    profiles: list[str]
    messages: list[SeededMessage]
    seconds: float
    assignments: int = 0
    marked_read: int = 0
    tokens: dict[str, str] = field(default_factory=dict)  # user id -> session token
    login_seconds: float = 0.0

    @property
    def rows(self) -> int:
        """Objects created through the API (users, profiles, messages; not roles or audit)."""
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
    """(sender, recipient, body) for every message: one thread per patient, turns alternating.

    ``from`` is sent explicitly (the master key may; a user's session would set it); no ACL is
    sent: the server derives it from ``patient``, ``from`` and ``to``. A new message must be
    sent and unread (142), so the first half of each thread is marked read afterwards.
    """
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
            }
            plan.append((sender, recipient, body))
    return plan


class SeedError(RuntimeError):
    """A batch entry or a login failed: the numbers would be meaningless, so the run stops."""


Call = tuple[str, str, dict[str, Any]]
"""(method, path under the mount, body) of one batch entry."""


async def run_batched(
    client: httpx.AsyncClient, what: str, calls: list[Call], in_flight: int = SEED_CONCURRENCY
) -> list[Any]:
    """Run calls in transactional batches of 50, ``in_flight`` at a time; replies in order.

    Transactional batches make one commit per 50 entries, which keeps SQLite seeding fast;
    seeding speed is reported but is not what this benchmark is about.
    """
    gate = asyncio.Semaphore(in_flight)

    async def one_batch(chunk: list[Call]) -> list[Any]:
        requests = [{"method": m, "path": f"{MOUNT}{p}", "body": b} for m, p, b in chunk]
        async with gate:
            response = await client.post(
                f"{MOUNT}/batch", json={"requests": requests, "transaction": True}
            )
        if response.status_code != 200:
            raise SeedError(f"batch of {what}: HTTP {response.status_code} {response.text[:300]}")
        replies = response.json()
        failed = [r for r in replies if "success" not in r]
        if failed:
            raise SeedError(f"batch of {what}: {failed[0]}")
        return [r["success"] for r in replies]

    chunks = [calls[i : i + BATCH_SIZE] for i in range(0, len(calls), BATCH_SIZE)]
    results = await asyncio.gather(*(one_batch(c) for c in chunks))
    return list(itertools.chain.from_iterable(results))


async def create_many(
    client: httpx.AsyncClient, path: str, bodies: list[dict[str, Any]], in_flight: int = 0
) -> list[str]:
    calls: list[Call] = [("POST", path, b) for b in bodies]
    replies = await run_batched(client, path, calls, in_flight or SEED_CONCURRENCY)
    return [r["objectId"] for r in replies]


# Sign-ups go one batch at a time: each one hashes 50 passwords (argon2, on the server's event
# loop) inside a transaction that holds the role row it adds members to; a second batch of the
# same role waits on that lock and, on PostgreSQL, hits the 15 s statement timeout.
def account(username: str, role: str) -> dict[str, Any]:
    return {"username": username, "password": BENCH_PASSWORD, "role": role}


async def seed_via_http(client: httpx.AsyncClient, cfg: Config) -> Seed:
    """Users, profiles, care teams and messages, through the API as it is today (master key)."""
    started = time.perf_counter()
    providers = await create_many(
        client,
        "/users",
        [account(f"bench-provider-{i:04d}", "provider") for i in range(cfg.providers)],
        in_flight=1,
    )
    patients = await create_many(
        client,
        "/users",
        [account(f"bench-patient-{i:05d}", "patient") for i in range(cfg.patients)],
        in_flight=1,
    )
    profiles = await create_many(
        client,
        "/classes/PatientProfile",
        [
            {
                "user": pointer("_User", uid),
                "medicalRecordNumber": f"BENCH-{i:06d}",
                "displayName": f"Bench Patient {i}",
                "isActive": True,
            }
            for i, uid in enumerate(patients)
        ],
    )
    assigned = await run_batched(
        client,
        "assignProvider",
        [
            (
                "POST",
                "/functions/assignProvider",
                {"patientId": profile, "providerId": provider_of(i, providers)},
            )
            for i, profile in enumerate(profiles)
        ],
    )
    plan = message_plan(cfg, patients, providers, profiles)
    ids = await create_many(client, "/classes/Message", [body for _, _, body in plan])
    # Receipts are the recipient's (or the master key's) to give: the older half of every
    # thread becomes read, as the bench's data always had it.
    read = [oid for k, oid in enumerate(ids) if k % cfg.messages < cfg.messages // 2]
    await run_batched(
        client, "isRead", [("PUT", f"/classes/Message/{oid}", {"isRead": True}) for oid in read]
    )
    messages = [SeededMessage(oid, s, r) for oid, (s, r, _) in zip(ids, plan, strict=True)]
    return Seed(
        providers,
        patients,
        profiles,
        messages,
        time.perf_counter() - started,
        len(assigned),
        len(read),
    )


async def log_in_everyone(base_url: str, seed: Seed) -> None:
    """One session per user in rotation (``POST /login``, no master key)."""
    names = {uid: f"bench-provider-{i:04d}" for i, uid in enumerate(seed.providers)}
    names |= {uid: f"bench-patient-{i:05d}" for i, uid in enumerate(seed.patients)}
    gate = asyncio.Semaphore(LOGIN_CONCURRENCY)
    started = time.perf_counter()
    headers = {"X-Parse-Application-Id": APP_ID}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60.0) as client:

        async def log_in(user_id: str) -> None:
            async with gate:
                response = await client.post(
                    f"{MOUNT}/login", json={"username": names[user_id], "password": BENCH_PASSWORD}
                )
            body = response.json() if response.status_code == 200 else {}
            if "sessionToken" not in body or body.get("objectId") != user_id:
                raise SeedError(f"login of {names[user_id]}: HTTP {response.status_code}")
            if body.get("mfaEnrollmentRequired"):
                raise SeedError(f"login of {names[user_id]}: session restricted until MFA")
            seed.tokens[user_id] = body["sessionToken"]

        await asyncio.gather(*(log_in(uid) for uid in seed.recipients()))
    seed.login_seconds = time.perf_counter() - started


# -- the servers under test ---------------------------------------------------------------------
@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    audit_reads: bool


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(
    cfg: Config,
    data_dir: Path,
    database_url: str | None,
    port: int,
    master_key: str,
    audit_reads: bool,
) -> dict[str, str]:
    """The caller's environment minus any MINDHARBOR_* settings, which would skew the run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINDHARBOR_")}
    env.update(
        {
            "MINDHARBOR_DATA_DIR": str(data_dir),
            "MINDHARBOR_MASTER_KEY": master_key,
            "MINDHARBOR_APP_ID": APP_ID,
            "MINDHARBOR_PORT": str(port),
            "MINDHARBOR_AUDIT_READS": "true" if audit_reads else "false",
            # Every user logs in once from 127.0.0.1; the per-IP limit would refuse most.
            "MINDHARBOR_LOGIN_RATE_PER_IP": "1000000",
            # Providers' sessions would otherwise be restricted until they enrol MFA.
            "MINDHARBOR_MFA_REQUIRED_ROLES": "",
        }
    )
    if not cfg.server_jobs:
        # Sealing every 60 s would land in random rounds of either server; it is batch work,
        # not per-request cost, so it is left out unless asked for.
        env["MINDHARBOR_JOB_SCHEDULE"] = ""
    if database_url:
        env["MINDHARBOR_DATABASE_URL"] = database_url
    return env


async def start_server(
    cfg: Config, data_dir: Path, database_url: str | None, master_key: str, audit_reads: bool
) -> Server:
    port = free_port()
    workers = cfg.workers if database_url else 1
    log_path = data_dir / f"server-audit-{'on' if audit_reads else 'off'}.log"
    command = [sys.executable, "-m", "mindharbor", "serve"]
    if workers > 1:
        command += ["--workers", str(workers)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(  # one blocking spawn before the clock starts
            command,
            cwd=REPO_ROOT,
            env=server_env(cfg, data_dir, database_url, port, master_key, audit_reads),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(proc, f"http://127.0.0.1:{port}", log_path, audit_reads)
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


# -- correctness under load ---------------------------------------------------------------------
class LeakError(AssertionError):
    """A reply held a message the caller is not party to, or was otherwise wrong."""


class ReplyCheck:
    """Decodes every reply for a fixed sample of users and checks it against the seed.

    A result not involving the caller is a *leak*; a wrong count, a message addressed to someone
    else, or a wrong order is a *wrong answer*. Both raise, so the request also counts as an
    error of its scenario, and both are kept here for the report.
    """

    def __init__(self, seed: Seed, sample: Iterable[str]) -> None:
        self.involving = {u: seed.involving(u) for u in sample}
        self.inbox = {u: seed.addressed_to(u) for u in sample}
        self.replies_checked = 0
        self.leaks: list[str] = []
        self.wrong: list[str] = []

    def wants(self, user_id: str) -> bool:
        return user_id in self.involving

    def check(self, scenario: str, user_id: str, results: list[dict[str, Any]]) -> None:
        self.replies_checked += 1
        ids = [o.get("objectId") for o in results]
        leaked = [i for i in ids if i not in self.involving[user_id]]
        if leaked:
            self.leaks.append(f"{scenario}: {user_id} got {len(leaked)} message(s) of others")
            raise LeakError(self.leaks[-1])
        expected = min(INBOX_LIMIT, len(self.inbox[user_id]))
        stamps = [o.get("createdAt") or "" for o in results]
        problem = None
        if len(ids) != expected:
            problem = f"{len(ids)} rows, expected {expected}"
        elif any(i not in self.inbox[user_id] for i in ids):
            problem = "a message it sent, not received, in its inbox"
        elif stamps != sorted(stamps, reverse=True):
            problem = "not newest first"
        if problem:
            self.wrong.append(f"{scenario}: {user_id}: {problem}")
            raise LeakError(self.wrong[-1])

    def report(self) -> dict[str, Any]:
        return {
            "users": len(self.involving),
            "replies_checked": self.replies_checked,
            "leaks": self.leaks[:20],
            "leak_count": len(self.leaks),
            "wrong_answers": self.wrong[:20],
            "wrong_count": len(self.wrong),
        }


# -- the load loop ------------------------------------------------------------------------------
@dataclass
class RoundResult:
    """One closed-loop run of one scenario."""

    seconds: float
    requests: int  # successful, started in the measured window
    served: int  # successful, warm-up and tail included (what the audit log must show)
    errors: int
    p50_ms: float | None
    p99_ms: float | None
    bench_cpu_pct: float
    server_cpu_pct: float | None
    first_error: str | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class Scenario:
    """One scenario measured in several rounds; the table shows medians over rounds."""

    name: str
    group: str  # scenarios of a group differ only in audit on/off
    audit_reads: bool
    concurrency: int
    rounds: list[RoundResult] = field(default_factory=list)

    def median(self, attr: str) -> float | None:
        values = [getattr(r, attr) for r in self.rounds]
        values = [v for v in values if v is not None]
        return round(statistics.median(values), 2) if values else None

    @property
    def requests(self) -> int:
        return sum(r.requests for r in self.rounds)

    @property
    def served(self) -> int:
        return sum(r.served for r in self.rounds)

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.rounds)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "group": self.group,
            "audit_reads": self.audit_reads,
            "concurrency": self.concurrency,
            "rounds": len(self.rounds),
            "requests": self.requests,
            "served_incl_warmup": self.served,
            "errors": self.errors,
            "first_error": next((r.first_error for r in self.rounds if r.first_error), None),
            "median": {
                "requests_per_s": self.median("rps"),
                "p50_ms": self.median("p50_ms"),
                "p99_ms": self.median("p99_ms"),
                "bench_cpu_pct": self.median("bench_cpu_pct"),
                "server_cpu_pct": self.median("server_cpu_pct"),
            },
            "per_round": [{**asdict(r), "requests_per_s": round(r.rps, 1)} for r in self.rounds],
        }


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile: always an observed latency, never an interpolated one."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class _Tally:
    latencies: list[float] = field(default_factory=list)
    served: int = 0
    errors: int = 0
    first_error: str | None = None


async def run_load(
    op: Op, rotation: Iterable[str], cfg: Config, server_pid: int | None = None
) -> RoundResult:
    """Closed loop: ``concurrency`` tasks, each one request at a time, users in rotation."""
    users = iter(rotation)
    tally = _Tally()
    measure_from = time.perf_counter() + cfg.warmup
    stop_at = measure_from + cfg.round_seconds

    async def worker() -> None:
        while (start := time.perf_counter()) < stop_at:
            error = await _attempt(op, next(users))
            if error is None:
                tally.served += 1
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
    server_cpu = None if srv0 is None or srv1 is None else srv1 - srv0
    ordered = sorted(tally.latencies)
    p50, p99 = percentile(ordered, 50), percentile(ordered, 99)
    return RoundResult(
        seconds=round(cfg.round_seconds, 3),
        requests=len(ordered),
        served=tally.served,
        errors=tally.errors,
        p50_ms=None if p50 is None else round(p50 * 1000, 2),
        p99_ms=None if p99 is None else round(p99 * 1000, 2),
        bench_cpu_pct=round(100 * cpu / wall, 1) if wall else 0.0,
        server_cpu_pct=None
        if server_cpu is None or not wall
        else round(100 * server_cpu / wall, 1),
        first_error=tally.first_error,
    )


async def _attempt(op: Op, user_id: str) -> str | None:
    """Run one request; the error text instead of an exception, so one failure ends nothing."""
    try:
        await op(user_id)
    except Exception as exc:  # every failure is counted, none ends the run
        return f"{type(exc).__name__}: {exc}"[:300]
    return None


@dataclass
class Arm:
    """One side (audit on or off) of a scenario pair: where its requests go."""

    scenario: Scenario
    op: Op
    server_pid: int | None = None


async def alternate(cfg: Config, pairs: list[tuple[Arm, Arm]], users: Sequence[str]) -> None:
    """Rounds of every pair, on/off order flipped each round (ABBA), so drift cancels out."""
    rotation = itertools.cycle(users)
    for r in range(cfg.rounds):
        for on, off in pairs:
            for arm in (on, off) if r % 2 == 0 else (off, on):
                arm.scenario.rounds.append(await run_load(arm.op, rotation, cfg, arm.server_pid))
        print(f"    round {r + 1}/{cfg.rounds} done", flush=True)


# -- HTTP load generators -----------------------------------------------------------------------
def inbox_target(user_id: str) -> str:
    """The request path and query string of one inbox read."""
    params = {
        "where": json.dumps(inbox_where(user_id), separators=(",", ":")),
        "order": "-createdAt",
        "limit": str(INBOX_LIMIT),
    }
    return f"{MOUNT}/classes/Message?{urlencode(params)}"


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

    async def get(self, target: str, extra_head: str = "") -> tuple[int, bytes]:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(f"GET {target} HTTP/1.1\r\n{self.head}{extra_head}\r\n".encode())
        await self.writer.drain()
        status = int((await self.reader.readline()).split()[1])
        length = None
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise ValueError("reply without Content-Length")
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class RawPool:
    """Exactly ``size`` connections for ``size`` workers, so taking one never waits."""

    def __init__(self, base_url: str, size: int) -> None:
        url = urlsplit(base_url)
        headers = {"X-Parse-Application-Id": APP_ID}
        self.idle: asyncio.Queue[RawConnection] = asyncio.Queue()
        for _ in range(size):
            self.idle.put_nowait(
                RawConnection(url.hostname or "127.0.0.1", url.port or 80, headers)
            )

    async def get(self, target: str, extra_head: str) -> tuple[int, bytes]:
        conn = await self.idle.get()
        try:
            return await conn.get(target, extra_head)
        except BaseException:
            conn.close()  # its stream may hold half a reply; reconnect next time
            raise
        finally:
            self.idle.put_nowait(conn)

    def close(self) -> None:
        while not self.idle.empty():
            self.idle.get_nowait().close()


class HttpxPool:
    """The same interface over httpx (``--http-client httpx``), for comparison."""

    def __init__(self, base_url: str, size: int) -> None:
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        self.client = httpx.AsyncClient(
            base_url=base_url,
            headers={"X-Parse-Application-Id": APP_ID},
            limits=limits,
            timeout=60.0,
        )

    async def get(self, target: str, extra_head: str) -> tuple[int, bytes]:
        headers = dict(line.split(": ", 1) for line in extra_head.split("\r\n") if ": " in line)
        response = await self.client.get(target, headers=headers)
        return response.status_code, response.content

    async def aclose(self) -> None:
        await self.client.aclose()


def http_inbox_op(
    pool: RawPool | HttpxPool,
    scenario: str,
    head_for: Callable[[str], str],
    check: ReplyCheck,
) -> Op:
    """The inbox query over REST; replies for sampled users are decoded and checked."""

    async def op(user_id: str) -> None:
        status, body = await pool.get(inbox_target(user_id), head_for(user_id))
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
        if check.wants(user_id):
            check.check(scenario, user_id, orjson.loads(body)["results"])

    return op


def http_client(base_url: str, master_key: str, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"X-Parse-Application-Id": APP_ID, "X-Parse-Master-Key": master_key}
    return httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=120.0)


async def audit_read_entries(client: httpx.AsyncClient) -> int:
    """How many ``phi.read`` entries the audit log holds (master key; AuditLog is not PHI)."""
    response = await client.get(
        f"{MOUNT}/classes/AuditLog",
        params={"where": json.dumps({"action": "phi.read"}), "count": "1", "limit": "0"},
    )
    response.raise_for_status()
    return int(response.json()["count"])


# -- in-process ---------------------------------------------------------------------------------
def inproc_user_op(store: Store, seed: Seed, scenario: str, check: ReplyCheck) -> Op:
    """What a request with a session token runs: resolve the session in its own unit of work
    (as ``MindHarbor.resolve_session`` does), then the find in the request's unit of work."""

    async def op(user_id: str) -> None:
        async with store.unit_of_work(Auth.system()) as repo:
            auth = await sessions.resolve(repo, seed.tokens[user_id])
        async with store.unit_of_work(auth) as repo:
            repo.meta = {"requestId": secrets.token_hex(16), "ip": "127.0.0.1"}
            results = (await repo.find("Message", inbox_query(user_id))).results
        if check.wants(user_id):
            check.check(scenario, user_id, results)

    return op


def inproc_master_op(store: Store, scenario: str, check: ReplyCheck) -> Op:
    async def op(user_id: str) -> None:
        async with store.unit_of_work(Auth.master()) as repo:
            repo.meta = {"requestId": secrets.token_hex(16), "ip": "127.0.0.1"}
            results = (await repo.find("Message", inbox_query(user_id))).results
        if check.wants(user_id):
            check.check(scenario, user_id, results)

    return op


async def inproc_audit_entries(store: Store) -> int:
    async with store.unit_of_work(Auth.system()) as repo:
        found = await repo.find(
            "AuditLog", FindQuery(where={"action": "phi.read"}, limit=0, count=True)
        )
    return int(found.count or 0)


# -- correctness after load ---------------------------------------------------------------------
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
    """Problems found for one user (empty when all is well), with the session's real roles."""
    async with store.unit_of_work(Auth.system()) as repo:
        auth = await sessions.resolve(repo, seed.tokens[user_id])
    problems = []
    visible = await find_all(store, auth, {})
    if {o["objectId"] for o in visible} != seed.involving(user_id):
        problems.append(
            f"{user_id}: ACL-only find saw {len(visible)} rows, "
            f"expected the {len(seed.involving(user_id))} it sent or received"
        )
    if any(user_id not in (party(o, "to"), party(o, "from")) for o in visible):
        problems.append(f"{user_id}: ACL-only find returned a message it is not party to")
    snooped = await find_all(store, auth, inbox_where(other))
    if any(user_id not in (party(o, "from"), party(o, "to")) for o in snooped):
        problems.append(f"{user_id}: querying {other}'s inbox returned messages of others")
    return problems


async def check_visibility(store: Store, seed: Seed, sample: list[str]) -> dict[str, Any]:
    """Each sampled user sees exactly its own messages, no one else's, even when asking."""
    problems: list[str] = []
    for i, user_id in enumerate(sample):
        problems += await check_user(store, seed, user_id, sample[(i + 1) % len(sample)])
    return {"users_checked": len(sample), "problems": problems}


def audit_check(label: str, before: int, after: int, scenarios: list[Scenario]) -> dict[str, Any]:
    """The audit log grew by one phi.read entry per request served with auditing on, only."""
    expected = sum(s.served for s in scenarios if s.audit_reads)
    return {
        "where": label,
        "phi_read_entries_added": after - before,
        "expected": expected,
        "passed": after - before == expected,
    }


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


def sample_users(seed: Seed, size: int) -> list[str]:
    users = seed.recipients()
    return random.Random(7).sample(users, min(size, len(users)))


@dataclass
class Phase:
    scenarios: list[Scenario]
    audit: dict[str, Any]


def make_pool(cfg: Config, base_url: str) -> RawPool | HttpxPool:
    if cfg.http_client == "httpx":
        return HttpxPool(base_url, cfg.concurrency)
    return RawPool(base_url, cfg.concurrency)


async def close_pool(pool: RawPool | HttpxPool) -> None:
    if isinstance(pool, HttpxPool):
        await pool.aclose()
    else:
        pool.close()


async def http_phase(
    cfg: Config, data_dir: Path, database_url: str | None, master_key: str
) -> tuple[Seed, ReplyCheck, Phase]:
    """Seed and log in through the audit-on server, then alternate rounds between it and an
    audit-off server on the same database."""
    workers = cfg.workers if database_url else 1
    on = await start_server(cfg, data_dir, database_url, master_key, audit_reads=True)
    servers = [on]
    pools: list[RawPool | HttpxPool] = []
    try:
        async with http_client(on.base_url, master_key, 8) as admin:
            seed = await seed_via_http(admin, cfg)
            print(f"  seeded {seed.rows:,} objects in {seed.seconds:.1f}s", flush=True)
            await log_in_everyone(on.base_url, seed)
            print(f"  logged in {len(seed.tokens)} users in {seed.login_seconds:.1f}s", flush=True)
            check = ReplyCheck(seed, sample_users(seed, cfg.sample_users))
            off = await start_server(cfg, data_dir, database_url, master_key, audit_reads=False)
            servers.append(off)
            master_head = f"X-Parse-Master-Key: {master_key}\r\n"
            user_pairs, master_pairs = [], []
            for server in (on, off):
                label = "audit on" if server.audit_reads else "audit off"
                pool = make_pool(cfg, server.base_url)
                pools.append(pool)
                suffix = f"({workers}w, {label})"
                as_user = Scenario(
                    f"http find, as user {suffix}",
                    "http as user",
                    server.audit_reads,
                    cfg.concurrency,
                )
                as_master = Scenario(
                    f"http find, master key {suffix}",
                    "http master key",
                    server.audit_reads,
                    cfg.concurrency,
                )
                tokens = seed.tokens
                user_pairs.append(
                    Arm(
                        as_user,
                        http_inbox_op(
                            pool,
                            as_user.name,
                            lambda uid, t=tokens: f"X-Parse-Session-Token: {t[uid]}\r\n",
                            check,
                        ),
                        server.proc.pid,
                    )
                )
                master_pairs.append(
                    Arm(
                        as_master,
                        http_inbox_op(pool, as_master.name, lambda _uid: master_head, check),
                        server.proc.pid,
                    )
                )
            before = await audit_read_entries(admin)
            print(f"  http: {cfg.rounds} rounds, audit on/off alternating", flush=True)
            await alternate(
                cfg,
                [(user_pairs[0], user_pairs[1]), (master_pairs[0], master_pairs[1])],
                seed.recipients(),
            )
            after = await audit_read_entries(admin)
    finally:
        for pool in pools:
            await close_pool(pool)
        for server in servers:
            stop_server(server)
    scenarios = [user_pairs[0].scenario, user_pairs[1].scenario]
    scenarios += [master_pairs[0].scenario, master_pairs[1].scenario]
    return seed, check, Phase(scenarios, audit_check("http", before, after, scenarios))


def inproc_settings(
    data_dir: Path, database_url: str | None, master_key: str, audit_reads: bool
) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data_dir,
        database_url=database_url,
        app_id=APP_ID,
        master_key=master_key,
        audit_reads=audit_reads,
        mfa_required_roles="",
        login_rate_per_ip=1_000_000,
        job_schedule="",
    )


async def inproc_phase(
    cfg: Config,
    seed: Seed,
    data_dir: Path,
    database_url: str | None,
    master_key: str,
    check: ReplyCheck,
) -> tuple[Phase, dict[str, Any]]:
    """The same finds without HTTP, through two stores built exactly as the server builds one."""
    stores: list[Store] = []
    try:
        for audit_reads, _ in AUDIT_MODES:
            settings = inproc_settings(data_dir, database_url, master_key, audit_reads)
            stores.append(Store(settings, build_hooks(settings)))
        await stores[0].migrate()  # a no-op on the served database; loads the schemas
        await stores[1].reload_schemas()
        visibility = await check_visibility(stores[1], seed, sorted(check.involving))
        user_arms, master_arms = [], []
        for store, (audit_reads, label) in zip(stores, AUDIT_MODES, strict=True):
            as_user = Scenario(
                f"in-process find, as user ({label})",
                "in-process as user",
                audit_reads,
                cfg.concurrency,
            )
            as_master = Scenario(
                f"in-process find, master key ({label})",
                "in-process master key",
                audit_reads,
                cfg.concurrency,
            )
            user_arms.append(Arm(as_user, inproc_user_op(store, seed, as_user.name, check)))
            master_arms.append(Arm(as_master, inproc_master_op(store, as_master.name, check)))
        before = await inproc_audit_entries(stores[0])
        print(f"  in-process: {cfg.rounds} rounds, audit on/off alternating", flush=True)
        await alternate(
            cfg,
            [(user_arms[0], user_arms[1]), (master_arms[0], master_arms[1])],
            seed.recipients(),
        )
        after = await inproc_audit_entries(stores[0])
    finally:
        for store in stores:
            await store.close()
    scenarios = [user_arms[0].scenario, user_arms[1].scenario]
    scenarios += [master_arms[0].scenario, master_arms[1].scenario]
    return Phase(scenarios, audit_check("in-process", before, after, scenarios)), visibility


async def run_backend(backend: str, cfg: Config) -> dict[str, Any]:
    """Seed and measure one backend on a fresh database; the scratch data is removed after."""
    print(f"[{backend}] starting", flush=True)
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix=f"{backend}-", dir=WORK_DIR))
    master_key = secrets.token_urlsafe(24)
    try:
        async with database_for(backend, cfg) as database_url:
            seed, check, http = await http_phase(cfg, data_dir, database_url, master_key)
            inproc, visibility = await inproc_phase(
                cfg, seed, data_dir, database_url, master_key, check
            )
    finally:
        if not cfg.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    return backend_report(backend, cfg, seed, http, inproc, check, visibility)


METRICS = (("requests_per_s", "rps"), ("p50_ms", "p50_ms"), ("p99_ms", "p99_ms"))


def medians(scenario: Scenario) -> dict[str, float | None]:
    return {k: scenario.median(a) for k, a in METRICS}


def overhead(scenarios: list[Scenario]) -> list[dict[str, Any]]:
    """Per group: medians on and off, and the medians of the per-round on/off ratios."""
    out = []
    groups = dict.fromkeys(s.group for s in scenarios)
    for group in groups:
        on = next(s for s in scenarios if s.group == group and s.audit_reads)
        off = next(s for s in scenarios if s.group == group and not s.audit_reads)

        def ratio(attr: str, on: Scenario = on, off: Scenario = off) -> float | None:
            pairs = [
                (getattr(a, attr), getattr(b, attr))
                for a, b in zip(on.rounds, off.rounds, strict=True)
            ]
            values = [x / y for x, y in pairs if x is not None and y]
            return round(statistics.median(values), 3) if values else None

        out.append(
            {
                "group": group,
                "on": medians(on),
                "off": medians(off),
                "ratio_on_off": {k: ratio(a) for k, a in METRICS},
            }
        )
    return out


def backend_report(
    backend: str,
    cfg: Config,
    seed: Seed,
    http: Phase,
    inproc: Phase,
    check: ReplyCheck,
    visibility: dict[str, Any],
) -> dict[str, Any]:
    scenarios = [*http.scenarios, *inproc.scenarios]
    problems = list(visibility["problems"])
    replies = check.report()
    problems += replies["leaks"] + replies["wrong_answers"]
    for audit in (http.audit, inproc.audit):
        if not audit["passed"]:
            problems.append(
                f"{audit['where']}: audit log gained {audit['phi_read_entries_added']} phi.read "
                f"entries, expected {audit['expected']} (one per request with auditing on)"
            )
    for s in scenarios:
        if s.errors:
            first = next((r.first_error for r in s.rounds if r.first_error), "")
            problems.append(f"{s.name}: {s.errors} error(s), first: {first}")
    return {
        "backend": backend,
        "server_workers": cfg.workers if backend == "postgres" else 1,
        "seed": {
            "providers": len(seed.providers),
            "patients": len(seed.patients),
            "patient_profiles": len(seed.profiles),
            "care_team_assignments": seed.assignments,
            "messages": len(seed.messages),
            "messages_per_patient": cfg.messages,
            "messages_marked_read": seed.marked_read,
            "rows": seed.rows,
            "seconds": round(seed.seconds, 2),
            "rows_per_s": round(seed.rows / seed.seconds, 1) if seed.seconds else None,
            "users_in_rotation": len(seed.recipients()),
            "logins": len(seed.tokens),
            "login_seconds": round(seed.login_seconds, 2),
        },
        "scenarios": [s.to_json() for s in scenarios],
        "audit_overhead": overhead(scenarios),
        "correctness": {
            "passed": not problems,
            "problems": problems,
            "replies_under_load": replies,
            "audit_entries": [http.audit, inproc.audit],
            "visibility": {"users_checked": visibility["users_checked"]},
        },
    }


# -- reporting ----------------------------------------------------------------------------------
COLUMNS = (
    "scenario",
    "rounds",
    "requests",
    "req/s",
    "p50 ms",
    "p99 ms",
    "errors",
    "bench CPU",
    "server CPU",
)
OVERHEAD_COLUMNS = (
    "audit on vs off",
    "req/s on",
    "req/s off",
    "req/s ratio",
    "p50 on",
    "p50 off",
    "p50 ratio",
    "p99 on",
    "p99 off",
    "p99 ratio",
)


def fmt(value: float | None, suffix: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}{suffix}"
    return f"{value:,}{suffix}"


def ratio_fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def table_rows(report: dict[str, Any]) -> list[tuple[str, ...]]:
    return [
        (
            s["name"],
            fmt(s["rounds"]),
            fmt(s["requests"]),
            fmt(s["median"]["requests_per_s"]),
            fmt(s["median"]["p50_ms"]),
            fmt(s["median"]["p99_ms"]),
            fmt(s["errors"]),
            fmt(s["median"]["bench_cpu_pct"], "%"),
            fmt(s["median"]["server_cpu_pct"], "%"),
        )
        for s in report["scenarios"]
    ]


def overhead_rows(report: dict[str, Any]) -> list[tuple[str, ...]]:
    return [
        (
            o["group"],
            fmt(o["on"]["requests_per_s"]),
            fmt(o["off"]["requests_per_s"]),
            ratio_fmt(o["ratio_on_off"]["requests_per_s"]),
            fmt(o["on"]["p50_ms"]),
            fmt(o["off"]["p50_ms"]),
            ratio_fmt(o["ratio_on_off"]["p50_ms"]),
            fmt(o["on"]["p99_ms"]),
            fmt(o["off"]["p99_ms"]),
            ratio_fmt(o["ratio_on_off"]["p99_ms"]),
        )
        for o in report["audit_overhead"]
    ]


def render_table(columns: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> str:
    body = [columns, *rows]
    widths = [max(len(r[i]) for r in body) for i in range(len(columns))]
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
    replies = check["replies_under_load"]
    verdict = "passed" if check["passed"] else "FAILED: " + "; ".join(check["problems"][:5])
    audits = ", ".join(
        f"{a['where']} +{a['phi_read_entries_added']:,}/{a['expected']:,}"
        for a in check["audit_entries"]
    )
    return "\n".join(
        [
            f"== {report['backend']} ({report.get('version', '')}) ==",
            f"seed: {seed['providers']} providers + {seed['patients']} patients (profiles, "
            f"{seed['care_team_assignments']} care-team assignments) x "
            f"{seed['messages_per_patient']} messages = {seed['rows']:,} objects in "
            f"{seed['seconds']:.1f}s; {seed['logins']} logins in {seed['login_seconds']:.1f}s; "
            f"{seed['users_in_rotation']} users in rotation",
            "medians over rounds:",
            render_table(COLUMNS, table_rows(report)),
            "audit overhead (medians; ratio = median of per-round on/off ratios):",
            render_table(OVERHEAD_COLUMNS, overhead_rows(report)),
            f"correctness: {replies['replies_checked']:,} replies of {replies['users']} users "
            f"checked under load ({replies['leak_count']} leaks, {replies['wrong_count']} wrong); "
            f"phi.read entries added/expected: {audits}; "
            f"{check['visibility']['users_checked']} users' full visibility: {verdict}",
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
    if failed:
        print(f"correctness FAILED on: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed or not payload["results"] else 0


if __name__ == "__main__":
    sys.exit(main())
