"""Tables for the terminal and for bench/RESULTS.md, from the run's JSON.

Figures per scenario and server are **medians over rounds**; the ratios are the **median of the
per-round ratios** (MindHarbor's round divided by Parse's round of the same rotation), which
cancels more of a shared machine's drift than dividing the two medians would.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.compare.load import DESCRIPTIONS
from bench.compare.propagation import POLL_TIMEOUT

BASELINE = "parse"
SUBJECT = "mindharbor"


def med(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def ratio(rows_a: list[dict[str, Any]], rows_b: list[dict[str, Any]], key: str) -> float | None:
    pairs = [
        a[key] / b[key] for a, b in zip(rows_a, rows_b, strict=False) if a.get(key) and b.get(key)
    ]
    return statistics.median(pairs) if pairs else None


def per_request(row: dict[str, Any]) -> dict[str, float | None]:
    """One round's cost per request: CPU milliseconds of the server's process tree, of
    PostgreSQL (the whole cluster: postmaster, backends, background workers) and of wrk, their
    sum, and PostgreSQL's transactions and statements in the server's database.

    The server and PostgreSQL also served the leak sampler's probes during the run, so their
    figures are divided by wrk's requests plus the probes (about 5 a second); wrk's by its own.
    """
    served = row.get("requests", 0) + row.get("probes", 0)

    def each(value: float | None, count: int, scale: float = 1.0) -> float | None:
        return value * scale / count if value is not None and count else None

    server = each(row.get("server_cpu_s"), served, 1000)
    pg = each(row.get("pg_cpu_s"), served, 1000)
    wrk = each(row.get("wrk_cpu_s"), row.get("requests", 0), 1000)
    parts = [server, pg, wrk]
    return {
        "server_ms": server,
        "pg_ms": pg,
        "wrk_ms": wrk,
        "total_ms": sum(v for v in parts if v is not None) if None not in parts else None,
        "xacts": each(row.get("pg_xacts"), served),
        "statements": each(row.get("pg_statements"), served),
    }


def med_per_request(rounds: list[dict[str, Any]], key: str) -> float | None:
    """The median over rounds of one per-request figure (see ``per_request``)."""
    values = [v for r in rounds if (v := per_request(r)[key]) is not None]
    return statistics.median(values) if values else None


def fmt(value: float | None, digits: int = 0, suffix: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}{suffix}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def scenario_table(scale: dict[str, Any]) -> str:
    header = [
        "scenario",
        "server",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "leak probes",
        "machine busy",
        "wrk CPU",
        "server CPU",
        "server CPU ms/req",
        "PG CPU ms/req",
        "wrk CPU ms/req",
        "CPU ms/req, sum",
        "PG xacts/req",
        "SQL stmts/req",
    ]
    rows: list[list[str]] = []
    for scenario, arms in scale["rounds"].items():
        for key, rounds in arms.items():
            rows.append(
                [
                    scenario,
                    key,
                    fmt(med(rounds, "rps")),
                    fmt(med(rounds, "p50_ms"), 1),
                    fmt(med(rounds, "p99_ms"), 1),
                    str(sum(r["errors"] for r in rounds)),
                    f"{sum(r['leaks'] for r in rounds)} leaks / {sum(r['probes'] for r in rounds)}",
                    fmt((med(rounds, "machine_busy") or 0) * 100, 0, "%"),
                    fmt((med(rounds, "wrk_cpu") or 0) * 100, 0, "%"),
                    fmt((med(rounds, "server_cpu") or 0) * 100, 0, "%"),
                    fmt(med_per_request(rounds, "server_ms"), 2),
                    fmt(med_per_request(rounds, "pg_ms"), 2),
                    fmt(med_per_request(rounds, "wrk_ms"), 2),
                    fmt(med_per_request(rounds, "total_ms"), 2),
                    fmt(med_per_request(rounds, "xacts"), 2),
                    fmt(med_per_request(rounds, "statements"), 2),
                ]
            )
    return table(header, rows)


# Issue 13's targets against Parse Server (with MindHarbor's indexes), at every scale:
# scenario -> (least req/s ratio, whether p99 must also be at most Parse's).
TARGETS: dict[str, tuple[float, bool]] = {
    "S1": (0.9, False),
    "S2": (1.5, True),
    "S3": (1.5, True),
    "S4": (1.5, True),
    "S5": (1.2, False),
}
READ_SCENARIOS = ("S2", "S3")  # PostgreSQL transactions per request must be at most 1
MAX_READ_XACTS = 1.0


def target_text(scenario: str) -> str:
    least, p99 = TARGETS[scenario]
    return f"≥ {least:g}x Parse's req/s" + (" and p99 ≤ Parse's" if p99 else "")


def target_met(scenario: str, rps: float | None, p99: float | None) -> bool | None:
    """Whether MindHarbor met ``scenario``'s target (None: no target or nothing measured)."""
    if scenario not in TARGETS or rps is None:
        return None
    least, needs_p99 = TARGETS[scenario]
    if needs_p99 and p99 is None:
        return None
    return rps >= least and (not needs_p99 or (p99 is not None and p99 <= 1.0))


def verdict(met: bool | None) -> str:
    return "-" if met is None else ("met" if met else "**not met**")


def ratio_table(scale: dict[str, Any]) -> str:
    header = ["scenario", "compared with", "req/s ratio", "p99 ratio", "target"]
    rows: list[list[str]] = []
    for scenario, arms in scale["rounds"].items():
        if SUBJECT not in arms:
            continue
        for base in ("parse", "parse-stock"):
            if base not in arms:
                continue
            rps = ratio(arms[SUBJECT], arms[base], "rps")
            p99 = ratio(arms[SUBJECT], arms[base], "p99_ms")
            target = "-"
            met = target_met(scenario, rps, p99) if base == BASELINE else None
            if met is not None:
                target = f"{verdict(met)} ({target_text(scenario)})"
            rows.append([scenario, base, fmt(rps, 2, "x"), fmt(p99, 2, "x"), target])
        if "mindharbor-noaudit" in arms:
            rows.append(
                [
                    scenario,
                    "MindHarbor, audit off",
                    fmt(ratio(arms[SUBJECT], arms["mindharbor-noaudit"], "rps"), 2, "x"),
                    fmt(ratio(arms[SUBJECT], arms["mindharbor-noaudit"], "p99_ms"), 2, "x"),
                    "(cost of read auditing)",
                ]
            )
    return table(header, rows)


def targets_table(scales: list[dict[str, Any]]) -> str:
    """Every target of issue 13 at every scale, in one place."""
    header = ["target", *(f"scale {s['scale']:g}" for s in scales)]
    rows: list[list[str]] = []
    for scenario in TARGETS:
        cells = []
        for scale in scales:
            arms = scale["rounds"].get(scenario, {})
            if SUBJECT not in arms or BASELINE not in arms:
                cells.append("-")
                continue
            rps = ratio(arms[SUBJECT], arms[BASELINE], "rps")
            p99 = ratio(arms[SUBJECT], arms[BASELINE], "p99_ms")
            met = target_met(scenario, rps, p99)
            cells.append(
                "-"
                if met is None
                else f"{verdict(met)}: {fmt(rps, 2, 'x')} req/s, p99 {fmt(p99, 2, 'x')}"
            )
        rows.append([f"{scenario}: {target_text(scenario)}", *cells])
    for scenario in READ_SCENARIOS:
        cells = []
        for scale in scales:
            rounds = scale["rounds"].get(scenario, {}).get(SUBJECT)
            xacts = med_per_request(rounds, "xacts") if rounds else None
            met = None if xacts is None else xacts <= MAX_READ_XACTS
            cells.append("-" if met is None else f"{verdict(met)}: {fmt(xacts, 2)}")
        rows.append([f"{scenario}: PostgreSQL transactions per request ≤ 1", *cells])
    return table(header, rows)


STATEMENT_SCENARIOS = ("S2", "S3")
STATEMENT_ARMS = (SUBJECT, BASELINE)
STATEMENTS_SHOWN = 5


def one_line(sql: str, width: int = 90) -> str:
    text = " ".join(sql.split()).replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def statement_table(scale: dict[str, Any]) -> str:
    """The statements each S2/S3 request runs most, per server, from the last measured round:
    calls and PostgreSQL execution milliseconds per request."""
    header = ["scenario", "server", "calls/req", "exec ms/req", "statement"]
    rows: list[list[str]] = []
    for scenario in STATEMENT_SCENARIOS:
        for key in STATEMENT_ARMS:
            rounds = scale["rounds"].get(scenario, {}).get(key) or []
            last = next((r for r in reversed(rounds) if r.get("pg_top_statements")), None)
            if last is None:
                continue
            served = last.get("requests", 0) + last.get("probes", 0)
            if not served:
                continue
            for top in last["pg_top_statements"][:STATEMENTS_SHOWN]:
                rows.append(
                    [
                        scenario,
                        key,
                        fmt(top["calls"] / served, 2),
                        fmt(top["exec_ms"] / served, 3),
                        f"`{one_line(top['query'])}`",
                    ]
                )
    return table(header, rows) if rows else ""


def propagation_table(outcome: dict[str, Any]) -> str:
    header = ["where", "refusals timed", "refused at first request", "p50 ms", "p99 ms", "max ms"]
    rows = [
        [
            where,
            str(g["samples"]),
            str(g["refused_at_first_request"]),
            fmt(g["p50_ms"], 1),
            fmt(g["p99_ms"], 1),
            fmt(g["max_ms"], 1),
        ]
        for where, g in outcome["groups"].items()
    ]
    return table(header, rows)


def propagation_text(outcome: dict[str, Any]) -> str:
    covered = outcome["workers_covered_min"]
    workers = outcome["servers"] * outcome["workers_per_server"]
    return (
        f"{outcome['trials']} revocations (`POST /logout` through server A), two servers of "
        f"{outcome['workers_per_server']} workers on one database, "
        f"{outcome['connections_per_server']}+ kept-alive connections per server "
        f"(workers holding a connection in every trial: at least {covered} of {workers}). "
        f"The revoking connection was refused at once in {outcome['revoker_immediate']} of "
        f"{outcome['trials']}; connections still accepting the session after "
        f"{POLL_TIMEOUT:.0f} s: {outcome['not_refused']}; accepting it again after a refusal: "
        f"{outcome['flapped']}. Times run from the logout's reply to the refusal's reply "
        f"(Parse error 209), so each includes one request's round trip with every connection "
        f"polling at once: the revoking connection's row is that round trip alone.\n"
    )


def live_table(scale: dict[str, Any]) -> str:
    header = [
        "server",
        "subscribers",
        "writes",
        "events",
        "p50 ms",
        "p99 ms",
        "max ms",
        "write p50 ms",
        "missing",
        "unexpected",
    ]
    rows = [
        [
            key,
            str(r["subscribers"]),
            str(r["writes"]),
            str(r["delivered"]),
            fmt(r["p50_ms"], 1),
            fmt(r["p99_ms"], 1),
            fmt(r["max_ms"], 1),
            fmt(r["write_p50_ms"], 1),
            str(r["missing"]),
            str(r["unexpected"]),
        ]
        for key, r in scale["live"].items()
    ]
    return table(header, rows)


def ceiling_table(scale: dict[str, Any]) -> str:
    header = ["script", "what it runs", "tx/s", "p50 ms", "p99 ms"]
    rows = [
        [name, r["what"], fmt(r["tps"]), fmt(r["p50_ms"], 1), fmt(r["p99_ms"], 1)]
        for name, r in scale["ceiling"].items()
    ]
    return table(header, rows)


def growth_table(scales: list[dict[str, Any]]) -> str:
    """The smallest scale against the largest, per scenario and server: how cost grows with
    data. Each figure is that scale's median; the ratio divides the two medians (the scales
    ran minutes apart, so there are no paired rounds)."""
    small, large = scales[0], scales[-1]
    factor = large["scale"] / small["scale"]
    header = [
        "scenario",
        "server",
        f"req/s at {small['scale']:g}",
        f"req/s at {large['scale']:g}",
        f"req/s ratio ({factor:g}x data)",
        f"p99 ms at {small['scale']:g}",
        f"p99 ms at {large['scale']:g}",
    ]
    rows: list[list[str]] = []
    for scenario, arms in large["rounds"].items():
        for key, rounds in arms.items():
            before = small["rounds"].get(scenario, {}).get(key)
            if not before:
                continue
            rps_small, rps_large = med(before, "rps"), med(rounds, "rps")
            rows.append(
                [
                    scenario,
                    key,
                    fmt(rps_small),
                    fmt(rps_large),
                    fmt(rps_large / rps_small if rps_small and rps_large else None, 2, "x"),
                    fmt(med(before, "p99_ms"), 1),
                    fmt(med(rounds, "p99_ms"), 1),
                ]
            )
    return table(header, rows)


def render(payload: dict[str, Any]) -> str:
    parts: list[str] = []
    measured = [s for s in payload["scales"] if s["rounds"]]
    if measured:
        parts.append("### Targets (issue 13), MindHarbor with read auditing against Parse Server\n")
        parts.append(targets_table(measured) + "\n")
    if len(measured) > 1:
        parts.append("### How cost grows with data\n")
        parts.append(growth_table(measured) + "\n")
    for scale in payload["scales"]:
        parts.append(
            f"### Scale {scale['scale']}: {scale['patients']:,} patients, "
            f"{scale['providers']:,} providers\n"
        )
        parts.append(scenario_table(scale) + "\n")
        parts.append(
            "Ratios, MindHarbor (read audit on) ÷ the other server, median of per-round ratios:\n"
        )
        parts.append(ratio_table(scale) + "\n")
        logins = scale.get("login_seconds", {})
        if logins:
            parts.append(
                "One login alone, sequential median (mostly the password hash): "
                + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in logins.items())
                + "\n"
            )
        if scale.get("live"):
            parts.append("S6 LiveQuery fan-out (committed write → event at its subscriber):\n")
            parts.append(live_table(scale) + "\n")
        statements = statement_table(scale)
        if statements:
            parts.append(
                "Statements S2 and S3 run most per request (last round; PostgreSQL's execution "
                "time, without the round trips):\n"
            )
            parts.append(statements + "\n")
        if scale.get("propagation"):
            parts.append("S7 identity propagation (a revoked session, refused by every worker):\n")
            parts.append(propagation_text(scale["propagation"]))
            parts.append(propagation_table(scale["propagation"]) + "\n")
        if scale.get("ceiling"):
            parts.append("Database ceiling (pgbench, the same SQL straight to PostgreSQL):\n")
            parts.append(ceiling_table(scale) + "\n")
        if scale.get("failures"):
            parts.append(
                "**Failures:**\n\n" + "\n".join(f"- {f}" for f in scale["failures"]) + "\n"
            )
    return "\n".join(parts)


def document(payload: dict[str, Any], tables: str) -> str:
    env = payload["environment"]
    cfg = payload["config"]
    scenarios = "\n".join(f"- **{k}** {v}" for k, v in DESCRIPTIONS.items())
    settings = "\n".join(f"- {k}: {v}" for k, v in env.items())
    return f"""# MindHarbor vs Parse Server: results

Generated by `make bench-compare` (`{cfg["command"]}`). Do not edit by hand: rerun it.
How the run works and how to read it: bench/README.md (section `compare`).

## Setup

{settings}
- workers per server: {cfg["workers"]} (Node `cluster` workers for Parse, uvicorn workers for
  MindHarbor); one server loaded at a time, order rotated every round
- load: wrk, {cfg["connections"]} connections ({cfg["login_connections"]} in S1),
  {cfg["threads"]} thread(s), {cfg["rounds"]} rounds of {cfg["duration"]:.0f} s per scenario and
  server after {cfg["warmup"]:.0f} s warm-up; each run starts once the server is idle

Scenarios:

{scenarios}
- **S6** LiveQuery: subscribers on `Message` where `to` = me; providers write at a fixed rate
- **S7** identity propagation: a session revoked through one server, timed until every worker
  of both servers refuses it

Per-request CPU: the server's process tree, PostgreSQL's (the scratch cluster's postmaster and
all its backends, exited ones included) and wrk's, each divided by the requests of the run (the
server's and PostgreSQL's by the requests plus the leak sampler's probes, about 5 a second).
PostgreSQL transactions (`pg_stat_database`, read once the statistics are flushed) and SQL
statements (`pg_stat_statements`, top level, `BEGIN`/`COMMIT` included) count in the server's
database only.

{tables}
## What differs between the servers, on purpose

- **Access control.** Parse checks the session, resolves roles and filters rows by `_rperm`;
  so does MindHarbor, in the SQL. Both keep resolved sessions in memory per worker process.
  Parse's cache lets a revoked session keep working on another worker for up to 5 s (its
  default TTL). MindHarbor drops a cached session when the database announces a change
  (`NOTIFY` at the commit of a logout, a role or care-team change, a break-glass grant), and
  reads every session from the database while that feed is down. S7 measures how long another
  worker or server keeps accepting a revoked session.
- **Read auditing.** With auditing on (MindHarbor's default), every read of PHI also writes an
  `AuditLog` entry. A read sends its statements outside any explicit transaction. Each worker
  group-commits the entries of many reads in one multi-row insert, and a reply leaves only
  after the batch holding its entry has committed. Parse has no equivalent. The
  `mindharbor-noaudit` rows show what auditing costs.
- **Writes.** A MindHarbor message write checks that sender and recipient are the patient and
  their care team, sets `from` and the ACL itself, writes an audit entry and publishes the
  LiveQuery event through Redis. Parse stores what the client sends (`from` and the ACL included)
  and publishes through Redis too.
- **Password hashes.** MindHarbor verifies argon2id with its configured profile (by default
  OWASP's: 19 MiB, 2 passes, 1 lane), Parse bcrypt cost 10. The CPU of one verify alone is in
  the setup list (`hash_cpu_seconds`). It is shown for reading S1 and S5 (a tenth of S5's
  requests are logins). The targets do not allow for it.
- **Indexes.** Parse on PostgreSQL indexes no pointer field and not `_Session.sessionToken`; the
  `parse` rows have MindHarbor's indexes added through Parse's schema API (each pointer, except
  one that leads a compound index, and the compound indexes), `parse-stock` does not. Neither
  server has a GIN index Parse could use on `_rperm` (its filter is
  `_rperm IS NULL OR _rperm && ...`).
"""
