"""``make bench-compare``: MindHarbor against Parse Server, side by side, in one run.

See bench/RESULTS.md for the latest numbers and bench/README.md for how to read them. The run:

1. installs Parse Server (bench/parse, pinned) from the npm registry into bench/parse/node_modules;
2. starts a scratch PostgreSQL cluster of its own (bench/.work/compare/pgdata, same settings for
   both servers) and, once per scale, seeds the same clinic into one template database per
   server through their REST APIs (cached: seeding hashes one password per account);
3. clones the templates into fresh run databases and starts four servers, ``--workers``
   processes each: Parse with MindHarbor's indexes, Parse as it comes, MindHarbor with read
   auditing (its default) and without;
4. runs S1-S5 with wrk, rotating the order of the servers every round so drift of this noisy
   machine spreads evenly, a leak sampler beside every run, and per run the CPU of the server,
   PostgreSQL and wrk and PostgreSQL's transactions and statements (bench/compare/meters.py);
   S6 (LiveQuery); S7 (identity propagation across two MindHarbor servers); the pgbench ceiling;
5. prints the table and writes bench/RESULTS.md and bench/results/compare.json. Any request
   error, leak, lost event or revoked session served makes the run exit non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from bench.compare import (
    ceiling,
    hashcost,
    live,
    load,
    meters,
    parse_server,
    propagation,
    report,
)
from bench.compare.cluster import Cluster
from bench.compare.dataset import Seeded, check_visibility, scale_name, seed_mindharbor, seed_parse
from bench.compare.servers import Arm, check_alive, start, stop
from bench.find_messages import REPO_ROOT
from mindharbor.auth.passwords import DEFAULT_PROFILE

WORK_DIR = REPO_ROOT / "bench" / ".work" / "compare"
RESULTS_JSON = REPO_ROOT / "bench" / "results" / "compare.json"
RESULTS_MD = REPO_ROOT / "bench" / "RESULTS.md"


@dataclass
class Config:
    scales: list[float]
    duration: float
    rounds: int
    warmup: float
    connections: int
    login_connections: int
    threads: int
    workers: int
    redis_url: str | None
    live_subscribers: int
    live_rate: float
    live_seconds: float
    propagation_trials: int
    propagation_connections: int
    scenarios: list[str]
    arms: list[str]
    reseed: bool
    seed_only: bool
    write_results: bool
    command: str = ""


def parse_args(argv: list[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.add_argument(
        "--scale", default="1,10", help="comma-separated scales (1 = 1,000 patients)"
    )
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measured round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds per scenario")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--login-connections", type=int, default=8, help="connections in S1")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="processes per server")
    parser.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--live-subscribers", type=int, default=500)
    parser.add_argument("--live-rate", type=float, default=100.0, help="writes per second in S6")
    parser.add_argument("--live-seconds", type=float, default=10.0)
    parser.add_argument(
        "--propagation-trials", type=int, default=200, help="revocations timed in S7"
    )
    parser.add_argument(
        "--propagation-connections",
        type=int,
        default=8,
        help="kept-alive connections per server in S7 (more are opened to reach every worker)",
    )
    parser.add_argument("--scenarios", default="S1,S2,S3,S4,S5,S6,S7,ceiling")
    parser.add_argument("--arms", default="parse,parse-stock,mindharbor,mindharbor-noaudit")
    parser.add_argument("--reseed", action="store_true", help="ignore cached seeded templates")
    parser.add_argument("--seed-only", action="store_true", help="seed the templates, then stop")
    parser.add_argument("--no-write", action="store_true", help="do not write RESULTS.md / JSON")
    args = parser.parse_args(argv)
    return Config(
        scales=[float(s) for s in args.scale.split(",") if s],
        duration=args.duration,
        rounds=args.rounds,
        warmup=args.warmup,
        connections=args.connections,
        login_connections=args.login_connections,
        threads=args.threads,
        workers=args.workers,
        redis_url=args.redis_url or None,
        live_subscribers=args.live_subscribers,
        live_rate=args.live_rate,
        live_seconds=args.live_seconds,
        propagation_trials=args.propagation_trials,
        propagation_connections=args.propagation_connections,
        scenarios=[s for s in args.scenarios.split(",") if s],
        arms=[a for a in args.arms.split(",") if a],
        reseed=args.reseed,
        seed_only=args.seed_only,
        write_results=not args.no_write,
        command="python -m bench.compare " + " ".join(argv if argv is not None else sys.argv[1:]),
    )


ARM_LABELS = {
    "parse": ("Parse Server + MindHarbor's indexes", "parse", True, True),
    "parse-stock": ("Parse Server, stock indexes", "parse", True, False),
    "mindharbor": ("MindHarbor, read audit on", "mindharbor", True, False),
    "mindharbor-noaudit": ("MindHarbor, read audit off", "mindharbor", False, False),
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- seeding (cached in template databases) -------------------------------------------------------
async def ensure_template(
    cluster: Cluster, kind: str, scale: float, cfg: Config, master_key: str
) -> Seeded:
    template = f"tpl_{kind}_{scale_name(scale)}"
    seed_file = WORK_DIR / f"seed-{kind}-{scale_name(scale)}.json"
    cached = None if cfg.reseed else Seeded.load(seed_file)
    if cached is not None and kind == "mindharbor" and cached.hash_profile != DEFAULT_PROFILE:
        log(f"{kind} scale {scale}: the template's password hashes are not of the current profile")
        cached = None
    if cached is not None and await cluster.exists(template):
        log(f"{kind} scale {scale}: using the seeded template {template}")
        return cached
    log(
        f"{kind} scale {scale}: seeding {template} through the REST API"
        " (slow: one password hash per account)"
    )
    await cluster.drop(template)
    await cluster.execute(f'CREATE DATABASE "{template}"')
    app_id = f"seed{kind}{scale}"
    arm = Arm(f"seed-{kind}", f"seeding {kind}", kind, template, app_id, master_key)
    await start(arm, cluster, cfg.workers, cfg.redis_url, WORK_DIR)
    try:
        if kind == "parse":
            async with master_client(arm) as client:
                await parse_server.prepare_schema(client)
            seeded = await seed_parse(arm.base_url, app_id, master_key, scale)
        else:
            seeded = await seed_mindharbor(arm.base_url, app_id, master_key, scale)
    finally:
        stop(arm)
    await cluster.execute("VACUUM ANALYZE", database=template)
    seeded.save(seed_file)
    log(f"{kind} scale {scale}: seeded in {seeded.seconds:.0f} s")
    return seeded


def master_client(arm: Arm) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"{arm.base_url}/parse",
        headers={"X-Parse-Application-Id": arm.app_id, "X-Parse-Master-Key": arm.master_key},
        timeout=600.0,
    )


# -- one scale ---------------------------------------------------------------------------------
@dataclass
class ScaleResult:
    scale: float
    patients: int
    providers: int
    rounds: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    live: dict[str, dict[str, Any]] = field(default_factory=dict)
    ceiling: dict[str, dict[str, Any]] = field(default_factory=dict)
    propagation: dict[str, Any] = field(default_factory=dict)
    login_seconds: dict[str, float] = field(default_factory=dict)
    indexes: dict[str, list[str]] = field(default_factory=dict)
    seed_seconds: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


async def run_scale(
    cluster: Cluster, stats: meters.Stats, scale: float, cfg: Config, master_key: str
) -> ScaleResult:
    seeds = {
        kind: await ensure_template(cluster, kind, scale, cfg, master_key)
        for kind in ("parse", "mindharbor")
    }
    if cfg.seed_only:
        return ScaleResult(scale, len(seeds["parse"].patients), len(seeds["parse"].providers))
    result = ScaleResult(scale, len(seeds["parse"].patients), len(seeds["parse"].providers))
    result.seed_seconds = {kind: s.seconds for kind, s in seeds.items()}
    arms: list[Arm] = []
    for key in cfg.arms:
        label, kind, audit, indexed = ARM_LABELS[key]
        database = f"run_{key.replace('-', '_')}_{scale_name(scale)}"
        await cluster.clone(f"tpl_{kind}_{scale_name(scale)}", database)
        arm = Arm(
            key,
            label,
            kind,
            database,
            f"bench{key.replace('-', '')}{secrets.token_hex(3)}",
            master_key,
            audit,
            indexed,
        )
        arm.seeded = seeds[kind]
        arms.append(arm)
    try:
        for arm in arms:
            await start(arm, cluster, cfg.workers, cfg.redis_url, WORK_DIR)
            if arm.extra_indexes:
                async with master_client(arm) as client:
                    arm.indexes = await parse_server.add_indexes(client)
                result.indexes[arm.key] = arm.indexes
            assert arm.seeded is not None
            problems = await check_visibility(arm.base_url, arm.app_id, arm.seeded)
            if problems:
                result.failures.extend(problems)
                raise RuntimeError(f"{arm.label}: access check before load failed: {problems[:3]}")
            arm.data_file = WORK_DIR / f"data-{arm.key}-{scale_name(scale)}.lua"
            load.write_data_file(arm.data_file, arm.kind, arm.app_id, arm.seeded)
            result.login_seconds[arm.key] = await sequential_login(arm)
            log(
                f"{arm.label}: up on :{arm.port}, access checked, "
                f"one login {result.login_seconds[arm.key] * 1000:.0f} ms"
            )
        db_meters = {arm.key: meters.DbMeter(stats, arm.database) for arm in arms}
        pg_pid = cluster.postmaster_pid()
        for scenario in [s for s in cfg.scenarios if s in load.SCENARIOS]:
            result.rounds[scenario] = {arm.key: [] for arm in arms}
            for arm in arms:  # unmeasured warm-up: JIT, caches, pools
                await measure_arm(
                    arm, scenario, cfg.warmup, cfg, pg_pid, db_meters[arm.key], 1, warmup=True
                )
            for round_no in range(cfg.rounds):
                order = arms[round_no % len(arms) :] + arms[: round_no % len(arms)]
                if round_no % 2:
                    order.reverse()
                for arm in order:
                    check_alive(arm)
                    row = await measure_arm(
                        arm, scenario, cfg.duration, cfg, pg_pid, db_meters[arm.key], round_no
                    )
                    assert row is not None
                    result.rounds[scenario][arm.key].append(row)
                    if row["errors"] or row["leaks"] or row["probe_errors"]:
                        result.failures.append(
                            f"{scenario} {arm.key} round {round_no}: {row['errors']} errors, "
                            f"{row['leaks']} leaks; {row['first_error']} "
                            f"{row['probe_errors'][:2]}"
                        )
                    per = report.per_request(row)
                    log(
                        f"s{scale} {scenario} {arm.key:<19} {row['rps']:8.0f} req/s  "
                        f"p50 {row['p50_ms']:7.1f}  p99 {row['p99_ms']:7.1f} ms  "
                        f"err {row['errors']}  leaks {row['leaks']}/{row['probes']}  "
                        f"CPU ms/req server {report.fmt(per['server_ms'], 2)} "
                        f"pg {report.fmt(per['pg_ms'], 2)} wrk {report.fmt(per['wrk_ms'], 2)}  "
                        f"stmts/req {report.fmt(per['statements'], 1)}  "
                        f"machine {row['machine_busy'] or 0:.0%}"
                    )
        for meter in db_meters.values():  # the last runs' transaction counts
            await meter.finish()
        if "S6" in cfg.scenarios and cfg.redis_url:
            for arm in arms:
                if arm.key not in ("parse", "mindharbor"):
                    continue
                await load.settle(arm.proc.pid if arm.proc else None)
                outcome = await live.fan_out(
                    arm.kind,
                    arm.base_url,
                    arm.app_id,
                    arm.seeded,  # type: ignore[arg-type]
                    min(cfg.live_subscribers, result.patients),
                    cfg.live_rate,
                    cfg.live_seconds,
                )
                result.live[arm.key] = asdict(outcome)
                if outcome.missing or outcome.unexpected or outcome.write_errors:
                    result.failures.append(
                        f"S6 {arm.key}: {outcome.missing} missing, {outcome.unexpected} "
                        f"unexpected, {outcome.write_errors} failed writes {outcome.errors[:2]}"
                    )
                log(
                    f"s{scale} S6 {arm.key:<19} {outcome.delivered}/{outcome.writes} events  "
                    f"p50 {outcome.p50_ms or 0:.1f}  p99 {outcome.p99_ms or 0:.1f} ms"
                )
    finally:
        for arm in arms:
            stop(arm)
    if "S7" in cfg.scenarios:
        measured_db = next((a.database for a in arms if a.key == "mindharbor"), None)
        result.propagation = await run_propagation(
            cluster, scale, cfg, master_key, seeds["mindharbor"], measured_db
        )
        problems = propagation_problems(result.propagation)
        result.failures.extend(f"S7: {p}" for p in problems)
        others = result.propagation["groups"]["other workers (both servers)"]
        log(
            f"s{scale} S7 {result.propagation['trials']} revocations: revoker refused at once "
            f"{result.propagation['revoker_immediate']}x; other workers p50 "
            f"{report.fmt(others['p50_ms'], 1)} p99 {report.fmt(others['p99_ms'], 1)} max "
            f"{report.fmt(others['max_ms'], 1)} ms"
        )
    if "ceiling" in cfg.scenarios:
        result.ceiling = await ceiling.run(
            cluster,
            f"tpl_mindharbor_{scale_name(scale)}",
            seeds["mindharbor"],
            cfg.duration * cfg.rounds / 2,
            cfg.connections,
            WORK_DIR,
        )
        for name, row in result.ceiling.items():
            log(
                f"s{scale} ceiling {name:<4} {row['tps']:8.0f} tx/s  "
                f"p50 {row['p50_ms']:.1f}  p99 {row['p99_ms']:.1f} ms"
            )
    for arm in arms:
        await cluster.drop(arm.database)
    return result


async def measure_arm(
    arm: Arm,
    scenario: str,
    seconds: float,
    cfg: Config,
    pg_pid: int | None,
    meter: meters.DbMeter,
    seed: int,
    *,
    warmup: bool = False,
) -> dict[str, Any] | None:
    """One wrk run on ``arm`` with its leak sampler; the round's row (None for a warm-up)."""
    assert arm.seeded is not None
    sampler = load.Sampler(arm.base_url, arm.app_id, arm.seeded, seed=seed)
    try:
        measured = await load.measure(
            arm.base_url,
            arm.data_file,
            scenario,
            seconds,
            connections_for(scenario, cfg),
            cfg.threads,
            sampler,
            arm.proc.pid if arm.proc else None,
            pg_pid,
            meter,
            warmup=warmup,
        )
    finally:
        await sampler.close()
    row = None if warmup else asdict(measured) | {"rps": measured.rps, "round": seed}
    await meter.after_run(row)
    return row


async def run_propagation(
    cluster: Cluster,
    scale: float,
    cfg: Config,
    master_key: str,
    seeded: Seeded,
    database: str | None,
) -> dict[str, Any]:
    """S7 on two MindHarbor servers sharing one database: the measured ``mindharbor`` arm's
    (its audit backlog already sealed), or a fresh clone of the template."""
    clone = database is None
    if database is None:
        database = f"run_propagation_{scale_name(scale)}"
        await cluster.clone(f"tpl_mindharbor_{scale_name(scale)}", database)
    app_id = f"benchprop{secrets.token_hex(3)}"
    pair = [
        Arm(f"propagation-{n}", f"MindHarbor {n} (S7)", "mindharbor", database, app_id, master_key)
        for n in ("a", "b")
    ]
    try:
        for arm in pair:
            await start(arm, cluster, cfg.workers, cfg.redis_url, WORK_DIR)
        outcome = await propagation.measure(
            pair[0],
            pair[1],
            seeded,
            cfg.propagation_trials,
            cfg.propagation_connections,
            cfg.workers,
        )
    finally:
        for arm in pair:
            stop(arm)
        if clone:
            await cluster.drop(database)
    return asdict(outcome)


def propagation_problems(outcome: dict[str, Any]) -> list[str]:
    """S7 fails on a stale identity: the revoker not refusing at once, a connection still
    accepting after the poll timeout, or one accepting again after refusing."""
    problems = list(outcome["errors"][:5])
    if outcome["revoker_immediate"] < outcome["trials"]:
        late = outcome["trials"] - outcome["revoker_immediate"]
        problems.append(f"the revoking connection accepted the session after logout {late}x")
    if outcome["not_refused"]:
        problems.append(
            f"{outcome['not_refused']} connections still accepted the session after "
            f"{propagation.POLL_TIMEOUT:.0f} s"
        )
    if outcome["flapped"]:
        problems.append(f"{outcome['flapped']} connections accepted it again after refusing")
    return problems


def connections_for(scenario: str, cfg: Config) -> int:
    """S1 runs with fewer connections: 64 logins in flight would only queue behind the hash
    (several seconds each on two cores), measuring the queue instead of the server."""
    return min(cfg.login_connections, cfg.connections) if scenario == "S1" else cfg.connections


async def sequential_login(arm: Arm, count: int = 15) -> float:
    """Median seconds of one login with nothing else running: mostly the password hash."""
    assert arm.seeded is not None
    patient = arm.seeded.patients[-1]
    times = []
    async with httpx.AsyncClient(
        base_url=arm.base_url, headers={"X-Parse-Application-Id": arm.app_id}, timeout=60.0
    ) as client:
        for _ in range(count):
            started = time.perf_counter()
            response = await client.post(
                "/parse/login",
                json={"username": patient.username, "password": "bench-harbor-passphrase"},
            )
            times.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(
                    f"{arm.label}: login failed {response.status_code} {response.text[:200]}"
                )
    return statistics.median(times)


def environment(cluster_version: str, parse_version: str) -> dict[str, Any]:
    def version(command: list[str]) -> str:
        try:
            return (
                subprocess.run(command, capture_output=True, text=True, check=False)
                .stdout.strip()
                .splitlines()[0]
            )
        except (OSError, IndexError):
            return "not found"

    commit = version(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"])
    dirty = bool(
        version(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "src"])
        not in ("", "not found")
    )
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": commit + (" (src/ modified)" if dirty else ""),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "node": version(["node", "--version"]),
        "parse_server": parse_version,
        "postgres": cluster_version,
        "wrk": version(["wrk", "--version"]).split(" [")[0],
        "platform": platform.platform(),
    }


async def main_async(cfg: Config) -> int:
    for tool in ("wrk", "node", "npm", "pgbench"):
        if shutil.which(tool) is None and not (tool == "pgbench" and ceiling.pgbench_path()):
            print(
                f"bench-compare needs {tool} (Debian: apt-get install wrk nodejs npm postgresql)",
                file=sys.stderr,
            )
            return 2
    log("installing Parse Server from the npm registry (bench/parse)")
    parse_version = parse_server.install()
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(WORK_DIR / "pgdata")
    cluster.start()
    master_key = secrets.token_urlsafe(24)
    results: list[ScaleResult] = []
    stats = meters.Stats(cluster.admin_url)
    try:
        await stats.open()
        env = environment(await cluster.version(), parse_version)
        log(f"PostgreSQL {env['postgres']} on :{cluster.port}; Parse Server {parse_version}")
        env["hash_cpu_seconds"] = {
            f"mindharbor (argon2id, {DEFAULT_PROFILE} profile)": hashcost.mindharbor_verify_cpu(),
            "parse (bcrypt 10)": hashcost.parse_verify_cpu(),
        }
        log(f"password verify CPU: {env['hash_cpu_seconds']}")
        for scale in cfg.scales:
            results.append(await run_scale(cluster, stats, scale, cfg, master_key))
            # A later scale that fails must not lose this one's figures.
            if cfg.write_results and not cfg.seed_only:
                partial: dict[str, Any] = {"config": asdict(cfg), "environment": env}
                partial["scales"] = [asdict(r) for r in results]
                RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
                RESULTS_JSON.write_text(json.dumps(partial, indent=1, default=str))
    finally:
        await stats.close()
        cluster.stop()
    payload = {"config": asdict(cfg), "environment": env, "scales": [asdict(r) for r in results]}
    text = report.render(payload)
    print(text)
    if cfg.write_results and not cfg.seed_only:  # seeding alone measures nothing
        RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
        RESULTS_JSON.write_text(json.dumps(payload, indent=1, default=str))
        RESULTS_MD.write_text(report.document(payload, text))
    failures = [f for r in results for f in r.failures]
    if failures:
        print(
            f"\nFAILED: {len(failures)} problems under load:",
            *failures[:20],
            sep="\n  ",
            file=sys.stderr,
        )
        return 1
    return 0


def main() -> None:
    sys.exit(asyncio.run(main_async(parse_args())))


if __name__ == "__main__":
    main()
