"""Where a request's cost goes: CPU of each process tree, and PostgreSQL's work per database.

* **CPU** of a process tree from ``/proc``: every live process's own time plus the time of
  the children it has already reaped (``cutime``/``cstime``). PostgreSQL forks a backend per
  connection and reaps it when the connection closes, so a pool that opens and closes
  connections during a run would otherwise hide their CPU; summed this way the total only grows.
* **Transactions** of one database: ``xact_commit + xact_rollback`` of ``pg_stat_database``.
  PostgreSQL 15 counts them in each backend and flushes them to shared memory at most once a
  second while busy, or within ``IDLE_FLUSH_SECONDS`` once the backend goes idle. So a run's
  count is read only after the database has been idle that long: the reading is deferred to
  just before the same server's next run (other servers run meanwhile), or waited for.
* **Statements** of one database: the ``calls`` of ``pg_stat_statements`` (top level, utility
  statements such as ``BEGIN`` and ``COMMIT`` included), counted as they finish, so they are
  read right after the run once the server is idle.

Every query of this module runs in the cluster's ``postgres`` database, so the bench's own
sampling never counts towards the database it measures.
"""

from __future__ import annotations

import asyncio
import os
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

# PostgreSQL 15's PGSTAT_IDLE_INTERVAL (10 s) plus a margin.
IDLE_FLUSH_SECONDS = 11.0
TOP_STATEMENTS = 8  # per run, the statements with the most calls, for the JSON


def tree_cpu_seconds(root_pid: int | None) -> float | None:
    """CPU seconds of ``root_pid`` and its descendants, reaped ones included; None if gone."""
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
            # utime, stime, cutime, cstime: the process's own time and its reaped children's.
            spent = sum(int(f) for f in fields[11:15]) / ticks
            stats[int(entry.name)] = (int(fields[1]), spent)
    if root_pid not in stats:
        return None
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, frontier = 0.0, [root_pid]
    while frontier:
        pid = frontier.pop()
        total += stats[pid][1]
        frontier.extend(children.get(pid, ()))
    return total


@dataclass
class Snapshot:
    xacts: int
    calls: dict[tuple[int, bool], tuple[int, float, str]]  # (queryid, toplevel) -> calls, ms, SQL
    dealloc: int  # pg_stat_statements entries evicted so far (a count that may undercount)


def statements_delta(before: Snapshot, after: Snapshot) -> tuple[int, float, list[dict[str, Any]]]:
    """(calls, execution ms, the top statements by calls) between two snapshots."""
    rows = []
    for key, (calls, ms, sql) in after.calls.items():
        was_calls, was_ms, _ = before.calls.get(key, (0, 0.0, ""))
        if calls > was_calls:
            rows.append((calls - was_calls, ms - was_ms, sql))
    rows.sort(key=lambda r: r[0], reverse=True)
    top = [{"calls": c, "exec_ms": round(m, 1), "query": q[:300]} for c, m, q in rows]
    return sum(r[0] for r in rows), sum(r[1] for r in rows), top[:TOP_STATEMENTS]


class Stats:
    """One connection to the cluster's ``postgres`` database for reading the statistics."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.conn: asyncpg.Connection | None = None

    async def open(self) -> None:
        self.conn = await asyncpg.connect(self.admin_url)
        await self.conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()
            self.conn = None

    async def xacts(self, database: str) -> int:
        assert self.conn is not None
        value = await self.conn.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1",
            database,
        )
        return int(value or 0)

    async def snapshot(self, database: str) -> Snapshot:
        assert self.conn is not None
        rows = await self.conn.fetch(
            "SELECT s.queryid, s.toplevel, s.calls, s.total_exec_time, s.query"
            " FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid"
            " WHERE d.datname = $1",
            database,
        )
        dealloc = await self.conn.fetchval("SELECT dealloc FROM pg_stat_statements_info")
        return Snapshot(
            await self.xacts(database),
            {
                (r["queryid"], r["toplevel"]): (r["calls"], r["total_exec_time"], r["query"])
                for r in rows
            },
            int(dealloc or 0),
        )


@dataclass
class DbMeter:
    """PostgreSQL's work for one server's database, run by run.

    ``before_run`` and ``after_run`` bracket every load on the server (warm-ups included, so
    their work is never billed to a measured run). Statements are final at ``after_run``; the
    transaction count of a measured run is written into its row by the next ``before_run`` (or
    ``finish``), once the database has been idle for ``IDLE_FLUSH_SECONDS``.
    """

    stats: Stats
    database: str
    idle_since: float = 0.0
    baseline: Snapshot | None = None
    pending: tuple[dict[str, Any], int] | None = None  # (row, xacts at its start)
    waited: float = 0.0  # seconds spent waiting for the flush, for the log
    notes: list[str] = field(default_factory=list)

    async def _close_pending(self, *, flushed: bool) -> None:
        """Fill the pending row's transaction count; with ``flushed`` (or a pending row) first
        wait until the database has been idle long enough for every count to be flushed."""
        delay = self.idle_since + IDLE_FLUSH_SECONDS - time.monotonic()
        if (flushed or self.pending is not None) and self.idle_since and delay > 0:
            self.waited += delay
            await asyncio.sleep(delay)
        if self.pending is not None:
            row, started = self.pending
            row["pg_xacts"] = await self.stats.xacts(self.database) - started
            self.pending = None

    async def before_run(self, *, measured: bool = True) -> None:
        """Before any load on the server. A measured run starts from flushed counts; a
        warm-up waits only to close the previous measured run's count."""
        await self._close_pending(flushed=measured)
        self.baseline = await self.stats.snapshot(self.database)

    async def after_run(self, row: dict[str, Any] | None) -> None:
        """``row``: the measured run's dict (None for a warm-up), filled in place."""
        after = await self.stats.snapshot(self.database)
        self.idle_since = time.monotonic()
        before = self.baseline
        if before is None or row is None:
            return
        calls, exec_ms, top = statements_delta(before, after)
        row["pg_statements"] = calls
        row["pg_exec_ms"] = round(exec_ms, 1)
        row["pg_top_statements"] = top
        if after.dealloc != before.dealloc:
            row["pg_statements_evicted"] = after.dealloc - before.dealloc
        self.pending = (row, before.xacts)

    async def finish(self) -> None:
        await self._close_pending(flushed=False)
