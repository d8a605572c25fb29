"""The bench-compare report's arithmetic and verdicts, from made-up rounds (no timing, no load).

bench/compare/report.py turns a run's JSON into bench/RESULTS.md: per-request CPU split by
server, PostgreSQL and wrk, PostgreSQL's transactions and statements per request, and issue 13's
targets. A wrong division or an inverted verdict would go unnoticed in a table of numbers.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench.compare import report
from bench.compare.meters import Snapshot, statements_delta


def _round(rps: float, p99: float, **extra: Any) -> dict[str, Any]:
    base = {
        "requests": int(rps * 10),
        "seconds": 10.0,
        "rps": rps,
        "p50_ms": p99 / 4,
        "p99_ms": p99,
        "errors": 0,
        "leaks": 0,
        "probes": 0,
        "wrk_cpu": 0.05,
        "server_cpu": 1.0,
        "machine_busy": 1.0,
    }
    return base | extra


def _scale(rounds: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    return {"scale": 1.0, "patients": 1000, "providers": 50, "rounds": rounds}


def test_per_request_splits_cpu_and_counts_probes_as_served_requests() -> None:
    row = _round(
        100,
        50,
        requests=990,
        probes=10,
        server_cpu_s=2.0,
        pg_cpu_s=1.0,
        wrk_cpu_s=0.099,
        pg_xacts=1500,
        pg_statements=4000,
    )
    per = report.per_request(row)
    assert per["server_ms"] == pytest.approx(2.0)  # 2 s over 990 + 10 served requests
    assert per["pg_ms"] == pytest.approx(1.0)
    assert per["wrk_ms"] == pytest.approx(0.1)  # wrk only sent its own 990
    assert per["total_ms"] == pytest.approx(3.1)
    assert per["xacts"] == pytest.approx(1.5)
    assert per["statements"] == pytest.approx(4.0)


def test_per_request_leaves_out_what_was_not_measured() -> None:
    per = report.per_request(_round(100, 50, wrk_cpu_s=0.1, server_cpu_s=None))
    assert per["server_ms"] is None and per["pg_ms"] is None
    assert per["total_ms"] is None  # a sum with a part missing would understate the cost
    assert per["xacts"] is None and per["statements"] is None
    assert report.per_request(_round(0, 0, requests=0, wrk_cpu_s=0.1))["wrk_ms"] is None


@pytest.mark.parametrize(
    ("scenario", "rps", "p99", "met"),
    [
        ("S2", 1.5, 1.0, True),
        ("S2", 1.49, 0.5, False),  # fast enough on p99, not on throughput
        ("S3", 2.0, 1.01, False),  # throughput, but a worse tail than Parse's
        ("S4", 1.6, None, None),
        ("S1", 0.9, 3.0, True),  # S1 and S5 have no p99 target
        ("S1", 0.89, 0.5, False),
        ("S5", 1.2, 9.0, True),
        ("S5", 1.19, 0.1, False),
        ("S6", 5.0, 0.1, None),
        ("S2", None, 0.5, None),
    ],
)
def test_targets_of_issue_13(
    scenario: str, rps: float | None, p99: float | None, met: bool | None
) -> None:
    assert report.target_met(scenario, rps, p99) is met


def test_ratio_and_target_tables_judge_against_parse_round_by_round() -> None:
    # Round ratios 1.6x and 1.4x (median 1.5x), p99 ratios 0.8x and 0.9x: met. Parse stock is
    # slower, but only the indexed Parse is a target.
    scale = _scale(
        {
            "S2": {
                "parse": [_round(100, 100), _round(100, 100)],
                "parse-stock": [_round(10, 900), _round(10, 900)],
                "mindharbor": [
                    _round(160, 80, pg_xacts=1600, requests=1600),
                    _round(140, 90, pg_xacts=2100, requests=1400),
                ],
                "mindharbor-noaudit": [_round(200, 60), _round(200, 60)],
            },
            "S3": {
                "parse": [_round(100, 100)],
                "mindharbor": [_round(300, 120, pg_xacts=300, requests=3000)],
            },
        }
    )
    ratios = report.ratio_table(scale)
    lines = {tuple(c.strip() for c in line.strip("|").split("|")) for line in ratios.splitlines()}
    assert ("S2", "parse", "1.50x", "0.85x", "met (≥ 1.5x Parse's req/s and p99 ≤ Parse's)") in (
        lines
    )
    assert ("S2", "parse-stock", "15.00x", "0.09x", "-") in lines
    assert ("S2", "MindHarbor, audit off", "0.75x", "1.42x", "(cost of read auditing)") in lines
    assert any(row[:2] == ("S3", "parse") and "**not met**" in row[4] for row in lines)

    targets = report.targets_table([scale])
    assert "| S2: ≥ 1.5x Parse's req/s and p99 ≤ Parse's | met: 1.50x req/s, p99 0.85x |" in targets
    assert "| S3: ≥ 1.5x Parse's req/s and p99 ≤ Parse's | **not met**: 3.00x req/s" in targets
    # Transactions per read request: rounds of 1.0 and 1.5, median 1.25 > 1.
    assert "| S2: PostgreSQL transactions per request ≤ 1 | **not met**: 1.25 |" in targets
    assert "| S3: PostgreSQL transactions per request ≤ 1 | met: 0.10 |" in targets
    assert "| S1: ≥ 0.9x Parse's req/s | - |" in targets  # not run: no verdict


def test_scenario_table_has_the_cost_columns() -> None:
    scale = _scale(
        {
            "S3": {
                "mindharbor": [
                    _round(
                        100,
                        50,
                        requests=1000,
                        server_cpu_s=1.5,
                        pg_cpu_s=0.5,
                        wrk_cpu_s=0.1,
                        pg_xacts=1000,
                        pg_statements=3000,
                    )
                ]
            }
        }
    )
    header, _, row = report.scenario_table(scale).splitlines()
    cells = dict(zip(header.strip("|").split("|"), row.strip("|").split("|"), strict=True))
    cells = {k.strip(): v.strip() for k, v in cells.items()}
    assert cells["server CPU ms/req"] == "1.50"
    assert cells["PG CPU ms/req"] == "0.50"
    assert cells["wrk CPU ms/req"] == "0.10"
    assert cells["CPU ms/req, sum"] == "2.10"
    assert cells["PG xacts/req"] == "1.00"
    assert cells["SQL stmts/req"] == "3.00"


def test_statements_delta_counts_only_what_ran_between_the_snapshots() -> None:
    before = Snapshot(10, {(1, True): (100, 50.0, "SELECT a"), (2, True): (5, 1.0, "BEGIN")}, 0)
    after = Snapshot(
        20,
        {
            (1, True): (160, 80.0, "SELECT a"),
            (2, True): (5, 1.0, "BEGIN"),  # did not run meanwhile
            (3, True): (7, 2.0, "INSERT b"),  # new since the first snapshot
        },
        0,
    )
    calls, exec_ms, top = statements_delta(before, after)
    assert calls == 67
    assert exec_ms == pytest.approx(32.0)
    assert [t["query"] for t in top] == ["SELECT a", "INSERT b"]


def test_propagation_section_reports_every_place_a_refusal_was_timed() -> None:
    group = {"samples": 200, "refused_at_first_request": 190, "p50_ms": 3.0, "p99_ms": 12.5}
    outcome = {
        "trials": 200,
        "servers": 2,
        "workers_per_server": 2,
        "connections_per_server": 8,
        "workers_covered_min": 4,
        "revoker_immediate": 200,
        "not_refused": 0,
        "flapped": 0,
        "groups": {
            "revoking connection": group | {"max_ms": 20.0},
            "other workers (both servers)": group | {"max_ms": 40.0},
        },
    }
    text = report.propagation_text(outcome)
    assert "refused at once in 200 of 200" in text
    assert "at least 4 of 4" in text
    table = report.propagation_table(outcome)
    assert "| other workers (both servers) | 200 | 190 | 3.0 | 12.5 | 40.0 |" in table
    rendered = report.render({"environment": {}, "scales": [_scale({}) | {"propagation": outcome}]})
    assert "S7 identity propagation" in rendered


def test_statement_table_shows_calls_per_request_of_the_last_round() -> None:
    top = [{"calls": 2000, "exec_ms": 100.0, "query": 'SELECT "a"\n  FROM t WHERE x = $1 | y'}]
    rounds = [
        _round(100, 50, requests=990, probes=10, pg_top_statements=[]),
        _round(100, 50, requests=990, probes=10, pg_top_statements=top),
    ]
    table = report.statement_table(_scale({"S3": {"mindharbor": rounds}}))
    assert '| S3 | mindharbor | 2.00 | 0.100 | `SELECT "a" FROM t WHERE x = $1 \\| y` |' in table
    assert report.statement_table(_scale({"S4": {"mindharbor": rounds}})) == ""
