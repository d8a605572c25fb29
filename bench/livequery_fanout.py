"""Benchmark LiveQuery fan-out: time from a committed write to each matching client's event.

Why: a LiveQuery event is how a patient's or clinician's screen learns of a new message. The
server fans a committed change out after its transaction commits: the worker that made the write
publishes the change to Redis, every worker reads it back and checks it against each of its
subscriptions with the same access rules REST applies (the row's ACL, the session's roles). So
the cost of one write grows with the number of subscribers on every worker, and a client on
another worker than the writer only ever learns of it through Redis. This bench prices that.

The run (one process, asyncio):

1. Create a scratch PostgreSQL database (dropped at the end) and start **two** ``mindharbor
   serve`` processes on it ("workers" on two ports) sharing one Redis, under an application id
   unique to the run (so its Redis channel is too).
2. Seed through the REST API: ``--providers`` providers who send the messages (master key),
   ``--clients`` patients who sign themselves up (``POST /users`` without the master key, which
   returns a session), one ``PatientProfile`` each and ``assignProvider`` (patient *i* gets
   provider *i mod P*). For the broadcast case, ``--broadcast`` more providers are all assigned
   to one extra patient and log in.
3. Open one WebSocket per subscriber, alternately to each worker, and speak the Parse LiveQuery
   protocol: ``connect`` with the session token, then ``subscribe`` to ``Message`` where
   ``to`` = me (patients) or ``patient`` = the broadcast patient (its care team).
4. **1:1 fan-out**: POST ``Message`` through worker 1 with the master key, ``from`` the
   patient's provider, ``to`` the next patient in rotation, at ``--rate`` per second for
   ``--duration`` seconds (open loop, so the server's latency, not saturation, is measured).
   Each write matches exactly one client; half of those are on the other worker.
5. **1:K broadcast**: ``--broadcast-writes`` messages to the broadcast patient, each matching
   all K care-team subscribers, to show what one write costs when it has many readers.

For every write the bench keeps the time just before the request and the time its 201 arrived
(the commit is somewhere between); each client timestamps every frame as it arrives. The event's
latency is reported from both ends: from the 201 (can be negative: the event may overtake the
HTTP reply) and from the request start (an upper bound on commit-to-event).

Correctness: every expected (client, message) event must arrive exactly once. An event a client
was not expecting (a message not addressed to it, or of another patient) is a **leak**; missing
and duplicate events, failed writes, error frames and dropped sockets also fail the run (exit 1).

The bench's own CPU (``getrusage``) and each worker's (``/proc``) are reported so it is visible
that the load generator had headroom. This is not a test: nothing asserts a timing. Results print
as a table and go to ``bench/results/livequery.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.find_messages import (
    BENCH_PASSWORD,
    MOUNT,
    REPO_ROOT,
    RESULTS_DIR,
    WORK_DIR,
    Server,
    account,
    create_many,
    environment,
    fmt,
    free_port,
    own_cpu_seconds,
    party,
    percentile,
    pointer,
    postgres_version,
    process_tree_cpu_seconds,
    render_table,
    run_batched,
    scratch_database,
    stop_server,
    wait_healthy,
    write_results,
)

SIGNUP_CONCURRENCY = 4  # per worker; each sign-up hashes a password (argon2) on the server
LOGIN_CONCURRENCY = 4
HANDSHAKE_CONCURRENCY = 64  # WebSocket connect + subscribe in flight while opening clients
WRITE_CONNECTIONS = 64  # keep-alive connections for the writer; far more than ever in flight
SLOW_SECONDS = 0.1  # events later than this after the 201 are listed by time in the JSON


# -- configuration ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Config:
    """Command-line knobs; the defaults are the issue's 1,000 clients on two workers."""

    clients: int
    providers: int
    rate: float
    duration: float
    broadcast: int
    broadcast_writes: int
    broadcast_rate: float
    settle: float
    pg_url: str
    redis_url: str
    output: Path
    keep: bool


def parse_args(argv: Sequence[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(
        prog="python -m bench.livequery_fanout",
        description="Time LiveQuery events from committed writes to subscribers on two workers.",
    )
    parser.add_argument("--clients", type=int, default=1000, help="1:1 subscribers (patients)")
    parser.add_argument("--providers", type=int, default=20, help="providers sending messages")
    parser.add_argument("--rate", type=float, default=50.0, help="1:1 writes per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of 1:1 writes")
    parser.add_argument(
        "--broadcast", type=int, default=100, help="K: care-team subscribers of one patient (0=off)"
    )
    parser.add_argument("--broadcast-writes", type=int, default=50, help="writes matching K each")
    parser.add_argument("--broadcast-rate", type=float, default=5.0, help="broadcast writes/s")
    parser.add_argument(
        "--settle", type=float, default=15.0, help="max seconds to wait for late events"
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="admin URL used to create and drop a scratch database ($BENCH_PG_URL)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="Redis shared by both workers ($BENCH_REDIS_URL)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "livequery.json")
    parser.add_argument("--keep", action="store_true", help="keep bench/.work server logs")
    args = parser.parse_args(argv)
    if min(args.clients, args.providers) < 1 or args.broadcast < 0:
        parser.error("--clients and --providers must be >= 1, --broadcast >= 0")
    if min(args.rate, args.duration, args.broadcast_rate) <= 0:
        parser.error("--rate, --duration and --broadcast-rate must be > 0")
    return Config(
        clients=args.clients,
        providers=args.providers,
        rate=args.rate,
        duration=args.duration,
        broadcast=args.broadcast,
        broadcast_writes=args.broadcast_writes if args.broadcast else 0,
        broadcast_rate=args.broadcast_rate,
        settle=args.settle,
        pg_url=args.pg_url,
        redis_url=args.redis_url,
        output=args.output,
        keep=args.keep,
    )


def raise_fd_limit(needed: int) -> int:
    """Each client is a socket here and one in a server (children inherit this limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return int(soft)


# -- the two workers ----------------------------------------------------------------------------
def server_env(
    data_dir: Path, database_url: str, redis_url: str, port: int, app_id: str, master_key: str
) -> dict[str, str]:
    """The caller's environment minus any MINDHARBOR_* settings, which would skew the run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINDHARBOR_")}
    env.update(
        {
            "MINDHARBOR_DATA_DIR": str(data_dir),
            "MINDHARBOR_DATABASE_URL": database_url,
            "MINDHARBOR_REDIS_URL": redis_url,
            "MINDHARBOR_MASTER_KEY": master_key,
            "MINDHARBOR_APP_ID": app_id,
            "MINDHARBOR_PORT": str(port),
            # Every user signs up or logs in from 127.0.0.1; the per-IP limit would refuse most.
            "MINDHARBOR_LOGIN_RATE_PER_IP": "1000000",
            # Providers' sessions would otherwise be restricted (read nothing) until MFA.
            "MINDHARBOR_MFA_REQUIRED_ROLES": "",
            # No scheduled jobs (audit sealing) landing in the middle of a measurement.
            "MINDHARBOR_JOB_SCHEDULE": "",
        }
    )
    return env


async def start_worker(
    name: str, data_dir: Path, database_url: str, cfg: Config, app_id: str, master_key: str
) -> Server:
    port = free_port()
    log_path = data_dir / f"{name}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mindharbor", "serve"],
            cwd=REPO_ROOT,
            env=server_env(data_dir, database_url, cfg.redis_url, port, app_id, master_key),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(proc, f"http://127.0.0.1:{port}", log_path, audit_reads=True)
    try:
        await wait_healthy(server)
    except BaseException:
        stop_server(server)
        raise
    return server


def ws_url(server: Server) -> str:
    return server.base_url.replace("http://", "ws://", 1) + MOUNT


# -- seeding ------------------------------------------------------------------------------------
@dataclass
class Seed:
    """Who exists; the subscribers' sessions; which provider sends to which patient."""

    senders: list[str]  # providers writing the 1:1 messages (not subscribed)
    patients: list[str]  # the 1:1 subscribers, then (last, if broadcast) the broadcast patient
    profiles: list[str]
    tokens: dict[str, str]  # user id -> session token, subscribers only
    team: list[str]  # the broadcast patient's care team, all subscribed
    seconds: float = 0.0

    @property
    def broadcast_patient(self) -> int:
        return len(self.patients) - 1


async def sign_up_patients(
    workers: Sequence[Server], count: int, app_id: str
) -> list[tuple[str, str]]:
    """Self sign-up (no master key) returns a session, so no separate login (argon2) is paid.

    Spread over both workers, since hashing passwords is the slow part of the whole run.
    """
    results: list[tuple[str, str]] = [("", "")] * count
    gates = [asyncio.Semaphore(SIGNUP_CONCURRENCY) for _ in workers]
    clients = [
        httpx.AsyncClient(
            base_url=w.base_url, headers={"X-Parse-Application-Id": app_id}, timeout=120.0
        )
        for w in workers
    ]
    try:

        async def one(i: int) -> None:
            w = i % len(workers)
            body = account(f"lq-patient-{i:05d}", "patient")
            async with gates[w]:
                response = await clients[w].post(f"{MOUNT}/users", json=body)
            reply = response.json() if response.status_code == 201 else {}
            if "sessionToken" not in reply or reply.get("mfaEnrollmentRequired"):
                raise RuntimeError(f"sign-up {i}: HTTP {response.status_code} {response.text}")
            results[i] = (reply["objectId"], reply["sessionToken"])

        await asyncio.gather(*(one(i) for i in range(count)))
    finally:
        for client in clients:
            await client.aclose()
    return results


async def log_in(base_url: str, app_id: str, usernames: dict[str, str]) -> dict[str, str]:
    """``POST /login`` for each user id -> username; returns user id -> session token."""
    gate = asyncio.Semaphore(LOGIN_CONCURRENCY)
    tokens: dict[str, str] = {}
    headers = {"X-Parse-Application-Id": app_id}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=120.0) as client:

        async def one(user_id: str, username: str) -> None:
            async with gate:
                response = await client.post(
                    f"{MOUNT}/login", json={"username": username, "password": BENCH_PASSWORD}
                )
            body = response.json() if response.status_code == 200 else {}
            if body.get("objectId") != user_id or "sessionToken" not in body:
                raise RuntimeError(f"login of {username}: HTTP {response.status_code}")
            tokens[user_id] = body["sessionToken"]

        await asyncio.gather(*(one(u, n) for u, n in usernames.items()))
    return tokens


async def seed(
    cfg: Config, workers: Sequence[Server], admin: httpx.AsyncClient, app_id: str
) -> Seed:
    started = time.perf_counter()
    senders = await create_many(
        admin,
        "/users",
        [account(f"lq-provider-{i:04d}", "provider") for i in range(cfg.providers)],
        in_flight=1,
    )
    team_names = [f"lq-team-{i:04d}" for i in range(cfg.broadcast)]
    team = (
        await create_many(
            admin, "/users", [account(n, "provider") for n in team_names], in_flight=1
        )
        if cfg.broadcast
        else []
    )
    print(f"  {len(senders) + len(team)} providers created", flush=True)
    n_patients = cfg.clients + (1 if cfg.broadcast else 0)
    signed_up = await sign_up_patients(workers, n_patients, app_id)
    patients = [uid for uid, _ in signed_up]
    tokens = {uid: tok for uid, tok in signed_up[: cfg.clients]}
    print(f"  {n_patients} patients signed up in {time.perf_counter() - started:.0f}s", flush=True)
    profiles = await create_many(
        admin,
        "/classes/PatientProfile",
        [
            {
                "user": pointer("_User", uid),
                "medicalRecordNumber": f"LQ-{i:06d}",
                "displayName": f"Bench Patient {i}",
                "isActive": True,
            }
            for i, uid in enumerate(patients)
        ],
    )
    assignments = [
        (
            "POST",
            "/functions/assignProvider",
            {"patientId": p, "providerId": senders[i % len(senders)]},
        )
        for i, p in enumerate(profiles[: cfg.clients])
    ]
    assignments += [
        ("POST", "/functions/assignProvider", {"patientId": profiles[-1], "providerId": t})
        for t in team
    ]
    await run_batched(admin, "assignProvider", assignments)
    tokens |= await log_in(workers[0].base_url, app_id, dict(zip(team, team_names, strict=True)))
    return Seed(senders, patients, profiles, tokens, team, time.perf_counter() - started)


# -- LiveQuery clients --------------------------------------------------------------------------
@dataclass(eq=False)
class Client:
    """One subscriber: a WebSocket to one worker, and every frame it got with its arrival time.

    Frames are only timestamped and kept while the run is measured; they are decoded after, so
    a client's own work does not add to the latency it measures.
    """

    index: int
    user_id: str
    token: str
    worker: int
    where: dict[str, Any]
    kind: str  # "patient" (to = me) or "team" (patient = the broadcast patient)
    frames: list[tuple[float, str | bytes]] = field(default_factory=list)
    ws: ClientConnection | None = None
    reader: asyncio.Task[None] | None = None
    closing: bool = False
    dropped: str | None = None


@dataclass
class FrameCount:
    """Frames received by all clients since subscribing; polled to know when events are in."""

    frames: int = 0


async def expect_op(ws: ClientConnection, op: str) -> dict[str, Any]:
    reply = orjson.loads(await asyncio.wait_for(ws.recv(), 30.0))
    if reply.get("op") != op:
        raise RuntimeError(f"expected {op!r}, got {reply}")
    return dict(reply)


async def open_client(client: Client, url: str, app_id: str, count: FrameCount) -> None:
    """connect -> connected, subscribe -> subscribed, then read frames until closed.

    No compression and no client pings: the bench should spend its CPU on reading events.
    """
    ws = await connect(url, compression=None, ping_interval=None, open_timeout=30, max_queue=None)
    client.ws = ws
    await ws.send(
        orjson.dumps({"op": "connect", "applicationId": app_id, "sessionToken": client.token})
    )
    await expect_op(ws, "connected")
    subscribe = {
        "op": "subscribe",
        "requestId": 1,
        "query": {"className": "Message", "where": client.where},
        "sessionToken": client.token,
    }
    await ws.send(orjson.dumps(subscribe))
    await expect_op(ws, "subscribed")
    client.reader = asyncio.create_task(read_frames(client, ws, count))


async def read_frames(client: Client, ws: ClientConnection, count: FrameCount) -> None:
    clock = time.perf_counter
    frames = client.frames
    try:
        async for raw in ws:
            frames.append((clock(), raw))
            count.frames += 1
    except ConnectionClosed as exc:
        if not client.closing:
            client.dropped = f"{type(exc).__name__}: {exc}"
        return
    if not client.closing:
        client.dropped = "closed by the server"


def make_clients(cfg: Config, seed: Seed) -> list[Client]:
    clients = [
        Client(i, uid, seed.tokens[uid], i % 2, {"to": pointer("_User", uid)}, "patient")
        for i, uid in enumerate(seed.patients[: cfg.clients])
    ]
    if seed.team:
        where = {"patient": pointer("PatientProfile", seed.profiles[seed.broadcast_patient])}
        clients += [
            Client(cfg.clients + j, uid, seed.tokens[uid], j % 2, where, "team")
            for j, uid in enumerate(seed.team)
        ]
    return clients


async def open_all(
    clients: Sequence[Client], workers: Sequence[Server], app_id: str, count: FrameCount
) -> float:
    gate = asyncio.Semaphore(HANDSHAKE_CONCURRENCY)
    started = time.perf_counter()

    async def one(client: Client) -> None:
        async with gate:
            await open_client(client, ws_url(workers[client.worker]), app_id, count)

    await asyncio.gather(*(one(c) for c in clients))
    return time.perf_counter() - started


async def close_all(clients: Iterable[Client]) -> None:
    async def one(client: Client) -> None:
        client.closing = True
        if client.ws is not None:
            await client.ws.close()
        if client.reader is not None:
            await client.reader

    await asyncio.gather(*(one(c) for c in clients), return_exceptions=True)


# -- writes -------------------------------------------------------------------------------------
@dataclass
class Write:
    """One ``POST /classes/Message`` and the clients whose subscription it should reach."""

    phase: str
    seq: int
    body: dict[str, Any]
    expected: frozenset[int]  # client indices
    started: float = 0.0
    done: float = 0.0
    status: int = 0
    object_id: str | None = None
    error: str | None = None


def message_body(phase: str, seq: int, sender: str, recipient: str, profile: str) -> dict[str, Any]:
    return {
        "conversationId": f"lq-{phase}-{seq:06d}",
        "from": pointer("_User", sender),
        "to": pointer("_User", recipient),
        "patient": pointer("PatientProfile", profile),
        "body": f"Synthetic live query bench message {seq}.",
    }


def one_to_one_writes(cfg: Config, seed: Seed) -> list[Write]:
    """Patient by patient in rotation, so every client gets about the same number of events."""
    writes = []
    for seq in range(round(cfg.rate * cfg.duration)):
        i = seq % cfg.clients
        sender = seed.senders[i % len(seed.senders)]
        body = message_body("1to1", seq, sender, seed.patients[i], seed.profiles[i])
        writes.append(Write("1:1", seq, body, frozenset({i})))
    return writes


def broadcast_writes(cfg: Config, seed: Seed) -> list[Write]:
    """From one team member to the broadcast patient: every team subscriber should get it."""
    team = frozenset(range(cfg.clients, cfg.clients + len(seed.team)))
    p = seed.broadcast_patient
    return [
        Write(
            f"1:{len(seed.team)}",
            seq,
            message_body("bcast", seq, seed.team[0], seed.patients[p], seed.profiles[p]),
            team,
        )
        for seq in range(cfg.broadcast_writes)
    ]


async def post_write(http: httpx.AsyncClient, write: Write) -> None:
    write.started = time.perf_counter()
    try:
        response = await http.post(f"{MOUNT}/classes/Message", json=write.body)
    except httpx.HTTPError as exc:
        write.done = time.perf_counter()
        write.error = f"{type(exc).__name__}: {exc}"
        return
    write.done = time.perf_counter()
    write.status = response.status_code
    if response.status_code == 201:
        write.object_id = response.json().get("objectId")
    else:
        write.error = f"HTTP {response.status_code}: {response.text[:200]}"


async def run_writes(http: httpx.AsyncClient, writes: Sequence[Write], rate: float) -> None:
    """Open loop: write *i* starts at t0 + i/rate whether or not earlier ones have returned."""
    t0 = time.perf_counter() + 0.05
    tasks = []
    for i, write in enumerate(writes):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(post_write(http, write)))
    await asyncio.gather(*tasks)


async def settle(count: FrameCount, target: int, timeout: float) -> None:
    """Wait until ``target`` frames are in (or ``timeout``), then a little more for extras:
    a duplicate or a leaked event would arrive after the expected ones."""
    deadline = time.perf_counter() + timeout
    while count.frames < target and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)


@dataclass
class Usage:
    """CPU seconds of the bench and of each worker's process tree over one phase."""

    wall: float
    bench: float
    workers: list[float | None]

    def pct(self) -> dict[str, Any]:
        def p(x: float | None) -> float | None:
            return None if x is None or not self.wall else round(100 * x / self.wall, 1)

        return {"bench_cpu_pct": p(self.bench), "worker_cpu_pct": [p(w) for w in self.workers]}


async def run_phase(
    http: httpx.AsyncClient,
    writes: Sequence[Write],
    rate: float,
    count: FrameCount,
    workers: Sequence[Server],
    timeout: float,
) -> Usage:
    pids = [w.proc.pid for w in workers]
    wall0, cpu0 = time.perf_counter(), own_cpu_seconds()
    srv0 = [process_tree_cpu_seconds(p) for p in pids]
    target = count.frames + sum(len(w.expected) for w in writes)
    await run_writes(http, writes, rate)
    await settle(count, target, timeout)
    srv1 = [process_tree_cpu_seconds(p) for p in pids]
    return Usage(
        time.perf_counter() - wall0,
        own_cpu_seconds() - cpu0,
        [None if a is None or b is None else b - a for a, b in zip(srv0, srv1, strict=True)],
    )


# -- analysis -----------------------------------------------------------------------------------
@dataclass
class Delivery:
    client: int
    worker: int
    received: float
    write: Write


@dataclass
class Findings:
    deliveries: list[Delivery] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    other_frames: list[str] = field(default_factory=list)


def decode_frames(clients: Sequence[Client], writes: Sequence[Write]) -> Findings:
    """Match every frame to its write; anything a client should not have seen is a leak."""
    by_id = {w.object_id: w for w in writes if w.object_id}
    found = Findings()
    seen: set[tuple[int, str]] = set()
    for client in clients:
        for received, raw in client.frames:
            msg = orjson.loads(raw)
            obj = msg.get("object") if isinstance(msg.get("object"), dict) else {}
            oid = str(obj.get("objectId"))
            if msg.get("op") != "create":
                found.other_frames.append(f"client {client.index}: {str(msg)[:200]}")
                continue
            write = by_id.get(oid)
            wrong_party = client.kind == "patient" and party(obj, "to") != client.user_id
            if write is None or client.index not in write.expected or wrong_party:
                found.leaks.append(
                    f"client {client.index} ({client.kind}) got message {oid} to {party(obj, 'to')}"
                )
            elif (client.index, oid) in seen:
                found.duplicates.append(f"client {client.index}: message {oid} again")
            else:
                seen.add((client.index, oid))
                found.deliveries.append(Delivery(client.index, client.worker, received, write))
    return found


def ms(values: Sequence[float], q: float) -> float | None:
    v = percentile(values, q)
    return None if v is None else round(v * 1000, 2)


def latency(deliveries: Sequence[Delivery]) -> dict[str, Any]:
    """Event latency from the 201 (commit seen) and from the request start, in ms."""
    from_commit = sorted(d.received - d.write.done for d in deliveries)
    from_start = sorted(d.received - d.write.started for d in deliveries)
    return {
        "events": len(deliveries),
        "from_commit_ms": {
            "p50": ms(from_commit, 50),
            "p99": ms(from_commit, 99),
            "max": ms(from_commit, 100),
            "min": round(from_commit[0] * 1000, 2) if from_commit else None,
        },
        "from_request_start_ms": {
            "p50": ms(from_start, 50),
            "p99": ms(from_start, 99),
            "max": ms(from_start, 100),
        },
    }


def phase_report(
    name: str,
    writes: Sequence[Write],
    found: Findings,
    usage: Usage,
    workers: int,
) -> dict[str, Any]:
    phase_ids = {w.object_id for w in writes if w.object_id}
    deliveries = [d for d in found.deliveries if d.write.object_id in phase_ids]
    expected = sum(len(w.expected) for w in writes)
    ok_writes = [w for w in writes if w.object_id]
    rtt = sorted(w.done - w.started for w in ok_writes)
    first = min((w.started for w in writes), default=0.0)
    last = max((d.received for d in deliveries), default=first)
    per_write: dict[int, list[float]] = {}
    for d in deliveries:
        per_write.setdefault(d.write.seq, []).append(d.received)
    spread = sorted(max(t) - min(t) for t in per_write.values())
    return {
        "phase": name,
        "writes": len(writes),
        "write_errors": len(writes) - len(ok_writes),
        "first_write_error": next((w.error for w in writes if w.error), None),
        "subscribers_per_write": len(writes[0].expected) if writes else 0,
        "expected_events": expected,
        "received_events": len(deliveries),
        "missing_events": expected - len(deliveries),
        "write_ms": {"p50": ms(rtt, 50), "p99": ms(rtt, 99), "max": ms(rtt, 100)},
        "events_per_s": round(len(deliveries) / (last - first), 1) if last > first else None,
        "latency": latency(deliveries),
        "latency_by_worker": [
            {"worker": k + 1, **latency([d for d in deliveries if d.worker == k])}
            for k in range(workers)
        ],
        # When the slow events happened (seconds into the phase, by write start): a periodic
        # pattern points at periodic server work, such as the session re-check sweep.
        "slow_events_over_100ms": sum(
            1 for d in deliveries if d.received - d.write.done > SLOW_SECONDS
        ),
        "slow_event_seconds": sorted(
            {
                round(d.write.started - first, 1)
                for d in deliveries
                if d.received - d.write.done > SLOW_SECONDS
            }
        ),
        "fanout_spread_ms": {"p50": ms(spread, 50), "p99": ms(spread, 99), "max": ms(spread, 100)},
        "cpu": usage.pct(),
        "seconds": round(usage.wall, 2),
    }


# -- reporting ----------------------------------------------------------------------------------
COLUMNS = (
    "phase",
    "writes",
    "events",
    "missing",
    "p50 ms",
    "p99 ms",
    "max ms",
    "p50 start",
    "p99 start",
    "write p50",
    "events/s",
    "bench CPU",
    "worker CPU",
)


def rows(report: dict[str, Any]) -> list[tuple[str, ...]]:
    out = []
    for ph in report["phases"]:
        cpu = ph["cpu"]
        groups = [("", ph["latency"])]
        groups += [(f"  on worker {g['worker']}", g) for g in ph["latency_by_worker"]]
        for label, lat in groups:
            top = not label
            out.append(
                (
                    ph["phase"] if top else label,
                    fmt(ph["writes"]) if top else "",
                    fmt(lat["events"]),
                    fmt(ph["missing_events"]) if top else "",
                    fmt(lat["from_commit_ms"]["p50"]),
                    fmt(lat["from_commit_ms"]["p99"]),
                    fmt(lat["from_commit_ms"]["max"]),
                    fmt(lat["from_request_start_ms"]["p50"]),
                    fmt(lat["from_request_start_ms"]["p99"]),
                    fmt(ph["write_ms"]["p50"]) if top else "",
                    fmt(ph["events_per_s"]) if top else "",
                    fmt(cpu["bench_cpu_pct"], "%") if top else "",
                    " / ".join(fmt(c, "%") for c in cpu["worker_cpu_pct"]) if top else "",
                )
            )
    return out


def render(report: dict[str, Any]) -> str:
    c = report["correctness"]
    s = report["setup"]
    spreads = [
        f"{ph['phase']} p50 {fmt(ph['fanout_spread_ms']['p50'])} / "
        f"p99 {fmt(ph['fanout_spread_ms']['p99'])} ms"
        for ph in report["phases"]
    ]
    verdict = "passed" if c["passed"] else "FAILED: " + "; ".join(c["problems"][:5])
    return "\n".join(
        [
            f"setup: {s['clients']} 1:1 clients + {s['broadcast_clients']} care-team clients "
            f"over 2 workers ({s['clients_per_worker']}); seeded in {s['seed_seconds']:.0f}s, "
            f"sockets open + subscribed in {s['open_seconds']:.1f}s",
            "latency = event arrival - 201 received (p50/p99/max ms); 'start' = from request start",
            render_table(COLUMNS, rows(report)),
            "fan-out spread (first to last subscriber of one write): " + "; ".join(spreads),
            f"correctness: {c['missing']} missing, {c['duplicates']} duplicate, "
            f"{c['leaks']} leaked, {c['write_errors']} failed writes, {c['other_frames']} other "
            f"frames, {c['dropped_clients']} dropped clients: {verdict}",
        ]
    )


# -- entry point --------------------------------------------------------------------------------
async def check_redis(url: str) -> str:
    client = aioredis.from_url(url)
    try:
        info = await client.info("server")
        return f"Redis {info.get('redis_version', '?')}"
    finally:
        await client.aclose()


async def main_async(cfg: Config) -> dict[str, Any]:
    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    fd_limit = raise_fd_limit(2 * (cfg.clients + cfg.broadcast) + 512)
    versions = {
        "postgres": f"PostgreSQL {await postgres_version(cfg.pg_url)}",
        "redis": await check_redis(cfg.redis_url),
    }
    env = environment(versions)
    app_id = f"bench-lq-{secrets.token_hex(4)}"  # its own Redis channel
    master_key = secrets.token_urlsafe(24)
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="livequery-", dir=WORK_DIR))
    workers: list[Server] = []
    clients: list[Client] = []
    count = FrameCount()
    try:
        async with scratch_database(cfg.pg_url) as database_url:
            print("starting 2 workers", flush=True)
            for k in range(2):
                workers.append(
                    await start_worker(
                        f"worker{k + 1}", data_dir, database_url, cfg, app_id, master_key
                    )
                )
            limits = httpx.Limits(
                max_connections=WRITE_CONNECTIONS, max_keepalive_connections=WRITE_CONNECTIONS
            )
            headers = {"X-Parse-Application-Id": app_id, "X-Parse-Master-Key": master_key}
            async with httpx.AsyncClient(
                base_url=workers[0].base_url, headers=headers, limits=limits, timeout=60.0
            ) as admin:
                seeded = await seed(cfg, workers, admin, app_id)
                print(f"  seeded in {seeded.seconds:.0f}s", flush=True)
                clients = make_clients(cfg, seeded)
                open_seconds = await open_all(clients, workers, app_id, count)
                print(f"  {len(clients)} clients subscribed in {open_seconds:.1f}s", flush=True)
                await asyncio.sleep(1.0)  # let the workers' first session sweep pass
                phases: list[tuple[str, list[Write], Usage]] = []
                one = one_to_one_writes(cfg, seeded)
                print(f"  1:1: {len(one)} writes at {cfg.rate:g}/s", flush=True)
                usage = await run_phase(admin, one, cfg.rate, count, workers, cfg.settle)
                phases.append(("1:1", one, usage))
                if cfg.broadcast_writes:
                    bcast = broadcast_writes(cfg, seeded)
                    print(
                        f"  1:{cfg.broadcast}: {len(bcast)} writes at {cfg.broadcast_rate:g}/s",
                        flush=True,
                    )
                    usage = await run_phase(
                        admin, bcast, cfg.broadcast_rate, count, workers, cfg.settle
                    )
                    phases.append((f"1:{cfg.broadcast}", bcast, usage))
    finally:
        await close_all(clients)
        for server in workers:
            stop_server(server)
        if not cfg.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    all_writes = [w for _, ws, _ in phases for w in ws]
    found = decode_frames(clients, all_writes)
    reports = [phase_report(n, ws, found, u, len(workers)) for n, ws, u in phases]
    dropped = [f"client {c.index}: {c.dropped}" for c in clients if c.dropped]
    missing = sum(r["missing_events"] for r in reports)
    write_errors = sum(r["write_errors"] for r in reports)
    problems = (
        [f"{len(found.leaks)} leaked event(s), first: {found.leaks[0]}"] if found.leaks else []
    )
    if missing:
        problems.append(f"{missing} expected event(s) never arrived")
    if found.duplicates:
        problems.append(f"{len(found.duplicates)} duplicate(s), first: {found.duplicates[0]}")
    if write_errors:
        problems.append(f"{write_errors} failed write(s)")
    if found.other_frames:
        problems.append(f"{len(found.other_frames)} other frame(s): {found.other_frames[0]}")
    if dropped:
        problems.append(f"{len(dropped)} client(s) dropped: {dropped[0]}")
    per_worker = [sum(1 for c in clients if c.worker == k) for k in range(len(workers))]
    return {
        "benchmark": "livequery_fanout",
        "started_at": started_at,
        "config": {
            k: v for k, v in asdict(cfg).items() if k not in ("pg_url", "redis_url", "output")
        },
        "environment": {**env, "fd_limit": fd_limit},
        "setup": {
            "clients": cfg.clients,
            "broadcast_clients": len(seeded.team),
            "clients_per_worker": " / ".join(str(n) for n in per_worker),
            "senders": len(seeded.senders),
            "seed_seconds": round(seeded.seconds, 1),
            "open_seconds": round(open_seconds, 2),
            "subscription": {
                "1:1": {"className": "Message", "where": {"to": "<me>"}},
                "broadcast": {"className": "Message", "where": {"patient": "<their patient>"}},
            },
            "writes_through": "worker 1, master key",
        },
        "phases": reports,
        "correctness": {
            "passed": not problems,
            "problems": problems,
            "missing": missing,
            "duplicates": len(found.duplicates),
            "leaks": len(found.leaks),
            "leak_examples": found.leaks[:20],
            "write_errors": write_errors,
            "other_frames": len(found.other_frames),
            "other_frame_examples": found.other_frames[:20],
            "dropped_clients": len(dropped),
            "dropped_examples": dropped[:20],
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    report = asyncio.run(main_async(cfg))
    print(render(report), flush=True)
    write_results(cfg.output, report)
    print(f"\nresults written to {cfg.output}")
    if not report["correctness"]["passed"]:
        print("correctness FAILED", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
