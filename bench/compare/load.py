"""HTTP load with wrk, and a sampler that checks for leaks while the load runs.

wrk (C, one event loop per thread, LuaJIT for the script) drives the load: a Python generator
would saturate a core of this 2-core machine long before either server does. Each run records
wrk's own CPU time so the report can show the generator's headroom.

Every reply is checked by the Lua script (status and shape). Content is checked by a sampler
that runs beside wrk on the same server: a few requests a second, as random seeded patients and
providers, with queries that carry no ``where`` at all, so only the server's access control
decides what comes back. Any row of another patient is a leak and fails the run.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import resource
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from bench.compare.dataset import PASSWORD, Patient, Seeded, new_message, team
from bench.compare.meters import DbMeter, tree_cpu_seconds
from bench.compare.retry import send
from bench.find_messages import pointer

LUA = Path(__file__).resolve().parent / "lua" / "scenario.lua"
MOUNT = "/parse"
SCENARIOS = ("S1", "S2", "S3", "S4", "S5")
DESCRIPTIONS = {
    "S1": "login (POST /login)",
    "S2": "patient dashboard (own PatientProfile, then own IntakeAssessment newest 10)",
    "S3": "provider inbox (Message to=me, isRead=false, newest 50)",
    "S4": "send message (POST Message, patient to provider)",
    "S5": "mix: 70% reads (S2/S3), 20% writes (S4), 10% logins (S1)",
}
SAMPLER_INTERVAL = 0.2  # seconds between leak probes: ~5 probes/s, the same for every server


def query(path: str, **params: Any) -> str:
    encoded = "&".join(
        f"{k}={quote(v if isinstance(v, str) else json.dumps(v, separators=(',', ':')), safe='')}"
        for k, v in params.items()
    )
    return f"{MOUNT}{path}?{encoded}"


def lua_string(text: str) -> str:
    """A Lua string literal. JSON's escapes for quotes and backslashes are Lua's too, and the
    data is ASCII, so json.dumps gives a valid literal."""
    return json.dumps(text, ensure_ascii=True)


def send_body(kind: str, seeded: Seeded, patient: Patient) -> str:
    body = new_message(
        kind,
        patient,
        seeded.provider_of(patient).user_id,
        by_patient=True,
        text="How are you feeling since the last session? Please reply when you can.",
    )
    return json.dumps(body, separators=(",", ":"))


def write_data_file(path: Path, kind: str, app_id: str, seeded: Seeded) -> None:
    """The Lua data file for one server: per user, the ready-made requests of each scenario."""
    lines = ["return {", f"app_id = {lua_string(app_id)},", f"prefix = {lua_string(MOUNT)},"]
    lines.append("patients = {")
    for p in seeded.patients:
        profile = query("/classes/PatientProfile", where={"user": pointer("_User", p.user_id)})
        assessments = query(
            "/classes/IntakeAssessment",
            where={"patient": pointer("PatientProfile", p.profile_id)},
            order="-assessmentDate",
            limit="10",
        )
        login = json.dumps({"username": p.username, "password": PASSWORD})
        lines.append(
            "{"
            + ",".join(
                f"{k}={lua_string(v)}"
                for k, v in (
                    ("t", p.token),
                    ("profile", profile),
                    ("assessments", assessments),
                    ("send", send_body(kind, seeded, p)),
                    ("login", login),
                )
            )
            + "},"
        )
    lines.append("},")
    lines.append("providers = {")
    for provider in seeded.providers:
        inbox = query(
            "/classes/Message",
            where={"to": pointer("_User", provider.user_id), "isRead": False},
            order="-createdAt",
            limit="50",
        )
        lines.append(f"{{t={lua_string(provider.token)},inbox={lua_string(inbox)}}},")
    lines.append("},")
    lines.append("}")
    path.write_text("\n".join(lines) + "\n")


@dataclass
class WrkResult:
    requests: int = 0
    seconds: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    errors: int = 0  # non-2xx replies, malformed replies and socket errors together
    first_error: str = ""
    wrk_cpu: float = 0.0  # wrk's CPU seconds per wall second (1.0 = one core)
    server_cpu: float | None = None
    machine_busy: float | None = None  # share of all cores busy during the run, 1.0 = all
    # CPU seconds spent during the run by wrk, the server's process tree and PostgreSQL's
    # (the scratch cluster's postmaster and every backend, reaped ones included).
    wrk_cpu_s: float = 0.0
    server_cpu_s: float | None = None
    pg_cpu_s: float | None = None
    leaks: int = 0
    probes: int = 0
    probe_errors: list[str] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine from /proc/stat: PostgreSQL's backends come
    and go with the servers' pools, so summing its processes' CPU undercounts; what the
    machine as a whole did is what tells whether a run was CPU-bound."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    return sum(fields) - idle, sum(fields)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def run_wrk(
    url: str, data_file: Path, scenario: str, seconds: float, connections: int, threads: int
) -> WrkResult:
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        url,
        "--",
        str(data_file),
        scenario,
    ]
    cpu_before = children_cpu()
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await proc.communicate()
    cpu = children_cpu() - cpu_before
    text = out.decode(errors="replace")
    match = re.search(r"^BENCH_JSON (.*)$", text, re.MULTILINE)
    if proc.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {text[-2000:]} {err.decode()[-2000:]}")
    raw = json.loads(match.group(1))
    wall = raw["duration_us"] / 1e6
    return WrkResult(
        requests=raw["requests"],
        seconds=wall,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        errors=raw["status_errors"]
        + raw["bad_bodies"]
        + raw["connect"]
        + raw["read"]
        + raw["write"]
        + raw["timeout"],
        first_error=raw["first_error"],
        wrk_cpu=cpu / wall if wall else 0.0,
        wrk_cpu_s=cpu,
    )


class Sampler:
    """Leak probes beside the load: unfiltered queries as random users, rows checked by owner."""

    def __init__(self, base_url: str, app_id: str, seeded: Seeded, seed: int) -> None:
        self.client = httpx.AsyncClient(
            base_url=base_url,
            headers={"X-Parse-Application-Id": app_id},
            timeout=30.0,
            limits=httpx.Limits(keepalive_expiry=2.0),  # below the servers' 5 s keep-alive
        )
        self.seeded = seeded
        self.rng = random.Random(seed)
        self.team_of = {
            provider.user_id: {
                p.profile_id for p in seeded.patients if seeded.provider_of(p) is provider
            }
            for provider in seeded.providers
        }
        self.probes = 0
        self.leaks = 0
        self.errors: list[str] = []

    async def probe(self) -> None:
        self.probes += 1
        if self.rng.random() < 0.75:
            patient = self.rng.choice(self.seeded.patients)
            cls = self.rng.choice(("IntakeAssessment", "Message", "PatientProfile"))
            rows = await self.get(cls, patient.token)
            allowed = {patient.profile_id}
        else:
            provider = self.rng.choice(self.seeded.providers)
            cls = self.rng.choice(("PatientProfile", "Message"))
            rows = await self.get(cls, provider.token)
            allowed = self.team_of[provider.user_id]
        for row in rows or []:
            owner = row["objectId"] if cls == "PatientProfile" else row["patient"]["objectId"]
            if owner not in allowed:
                self.leaks += 1
                self.errors.append(f"LEAK {cls} {row['objectId']} of {owner}")

    async def get(self, cls: str, token: str) -> list[dict[str, Any]] | None:
        response = await send(
            self.client,
            "GET",
            f"{MOUNT}/classes/{cls}",
            params={"limit": "100", "order": "-createdAt"},
            headers={"X-Parse-Session-Token": token},
        )
        if response.status_code != 200:
            self.errors.append(f"{cls}: HTTP {response.status_code} {response.text[:200]}")
            return None
        return list(response.json()["results"])

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.probe()
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                self.errors.append(f"probe failed: {exc!r}")
            with_timeout = asyncio.create_task(stop.wait())
            await asyncio.wait({with_timeout}, timeout=SAMPLER_INTERVAL)
            with_timeout.cancel()

    async def close(self) -> None:
        await self.client.aclose()


async def settle(server_pid: int | None, timeout: float = 30.0) -> float:
    """Wait until the server is idle: wrk abandons the requests in flight when its time is up,
    and a server that is still working through them (64 queued logins take seconds) would bill
    that work to the next run. Returns the seconds waited."""
    started = time.perf_counter()
    if server_pid is None:
        return 0.0
    while time.perf_counter() - started < timeout:
        before = tree_cpu_seconds(server_pid)
        await asyncio.sleep(0.5)
        after = tree_cpu_seconds(server_pid)
        if before is None or after is None or (after - before) / 0.5 < 0.1:
            break
    return time.perf_counter() - started


async def measure(
    url: str,
    data_file: Path,
    scenario: str,
    seconds: float,
    connections: int,
    threads: int,
    sampler: Sampler,
    server_pid: int | None,
    pg_pid: int | None = None,
    meter: DbMeter | None = None,
    *,
    warmup: bool = False,
) -> WrkResult:
    """One wrk run with the leak sampler beside it and CPU accounting around it.

    It starts once the server is idle and returns once it is idle again, so ``meter`` (the
    server's database counters) can be read right after it by ``meter.after_run``.
    """
    await settle(server_pid)
    if meter is not None:
        await meter.before_run(measured=not warmup)
    stop = asyncio.Event()
    probes, leaks, errors = sampler.probes, sampler.leaks, len(sampler.errors)
    task = asyncio.create_task(sampler.run(stop))
    server_before = tree_cpu_seconds(server_pid)
    pg_before = tree_cpu_seconds(pg_pid)
    busy_before, total_before = machine_busy()
    started = time.perf_counter()
    try:
        result = await run_wrk(url, data_file, scenario, seconds, connections, threads)
    finally:
        stop.set()
        await task
    wall = time.perf_counter() - started
    server_after = tree_cpu_seconds(server_pid)
    pg_after = tree_cpu_seconds(pg_pid)
    busy_after, total_after = machine_busy()
    if server_before is not None and server_after is not None:
        result.server_cpu_s = server_after - server_before
        result.server_cpu = result.server_cpu_s / wall
    if pg_before is not None and pg_after is not None:
        result.pg_cpu_s = pg_after - pg_before
    if total_after > total_before:
        result.machine_busy = (busy_after - busy_before) / (total_after - total_before)
    result.probes = sampler.probes - probes
    result.leaks = sampler.leaks - leaks
    result.probe_errors = sampler.errors[errors:]
    await settle(server_pid)
    return result


__all__ = [
    "DESCRIPTIONS",
    "SCENARIOS",
    "Sampler",
    "WrkResult",
    "measure",
    "team",
    "write_data_file",
]
