"""S7: how soon a revoked session is refused by every worker of every server.

MindHarbor keeps each worker's resolved sessions in memory and drops a copy when the database
announces a change (``NOTIFY`` at the commit of the revoking transaction, ``LISTEN`` in every
worker). This measures the bound the design promises: two servers on one database, each with
``workers`` processes spreading connections with ``SO_REUSEPORT``. Per trial:

1. a patient logs in (a new session);
2. every connection (``connections`` kept-alive sockets per server) reads ``/users/me`` with
   that session, so every worker holding a connection has the session in its cache;
3. one connection of server A sends ``POST /logout``; from the moment its reply arrives, every
   connection, the revoking one included, asks ``/users/me`` again and again until it is
   refused (Parse error 209); each refusal is timed from the logout's reply;
4. each connection asks once more: a session, once refused, must stay refused.

Which worker serves a connection is read from ``/proc`` (the server side of the socket and
the process holding it), so the report splits the times by where they were measured: the
revoking connection, other connections to the revoking worker, the other worker of the same
server, and the other server. The revoking connection must be refused on its first request.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.compare.dataset import PASSWORD, Seeded
from bench.compare.live import pct
from bench.compare.servers import Arm

MOUNT = "/parse"
INVALID_SESSION = 209
POLL_TIMEOUT = 10.0  # seconds a connection may keep accepting a revoked session: a failure
GROUPS = ("revoking connection", "revoking worker", "other worker, same server", "other server")
OTHER_WORKERS = ("other worker, same server", "other server")


class RawConnection:
    """One kept-alive HTTP/1.1 connection: requests on it always reach the same worker."""

    def __init__(self, server: Arm, server_pid: int) -> None:
        self.server = server
        self.server_pid = server_pid
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.worker: int | None = None  # pid of the worker process serving this connection
        self.mapped = False  # looked the worker up since the connection opened

    async def request(
        self, method: str, path: str, token: str, body: bytes = b""
    ) -> tuple[int, dict[str, Any]]:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.server.port)
            self.worker, self.mapped = None, False
        head = (
            f"{method} {MOUNT}{path} HTTP/1.1\r\nHost: 127.0.0.1:{self.server.port}\r\n"
            f"X-Parse-Application-Id: {self.server.app_id}\r\n"
            f"X-Parse-Session-Token: {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        try:
            self.writer.write(head.encode() + body)
            await self.writer.drain()
            status_line = await self.reader.readline()
            if not status_line:
                raise ConnectionError("closed by the server")
            status = int(status_line.split()[1])
            length, close = 0, False
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            payload = await self.reader.readexactly(length) if length else b"{}"
        except BaseException:
            self.close()
            raise
        if close:
            self.close()
        elif not self.mapped:  # the worker has accepted it by now
            self.worker = worker_of(self.writer, self.server.port, self.server_pid)
            self.mapped = True
        return status, json.loads(payload)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def worker_of(writer: asyncio.StreamWriter | None, server_port: int, server_pid: int) -> int | None:
    """The pid of the server process holding the other end of this connection (Linux)."""
    if writer is None:
        return None
    sockname = writer.get_extra_info("sockname")
    if not sockname:
        return None
    inode = server_side_inode(server_port, int(sockname[1]))
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in descendants(server_pid):
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == target:
                    return pid
            except OSError:
                continue
    return None


def server_side_inode(server_port: int, client_port: int) -> int | None:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if (
                int(local.rsplit(":", 1)[1], 16) == server_port
                and int(remote.rsplit(":", 1)[1], 16) == client_port
            ):
                return int(fields[9])
    return None


def descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "stat").read_text()
                parents[int(entry.name)] = int(raw[raw.rindex(")") + 2 :].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = [root], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found.extend(children)
        frontier.extend(children)
    return found


@dataclass
class PropagationResult:
    trials: int = 0
    servers: int = 2
    workers_per_server: int = 0
    connections_per_server: int = 0
    workers_covered_min: int = 0  # fewest distinct workers holding a connection in a trial
    revoker_immediate: int = 0  # trials whose revoking connection was refused at once
    not_refused: int = 0  # connections still accepting the session after POLL_TIMEOUT
    flapped: int = 0  # accepted again after a refusal
    errors: list[str] = field(default_factory=list)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0


def summarize(values: list[float], first_poll: int) -> dict[str, Any]:
    return {
        "samples": len(values),
        "refused_at_first_request": first_poll,
        "p50_ms": pct(values, 0.5),
        "p99_ms": pct(values, 0.99),
        "max_ms": max(values) if values else None,
    }


async def measure(
    server_a: Arm, server_b: Arm, seeded: Seeded, trials: int, connections: int, workers: int
) -> PropagationResult:
    """``trials`` revocations through server A, each timed on every connection of A and B."""
    assert server_a.proc is not None and server_b.proc is not None
    result = PropagationResult(workers_per_server=workers, connections_per_server=connections)
    conns = [
        RawConnection(server, proc.pid)
        for server, proc in ((server_a, server_a.proc), (server_b, server_b.proc))
        for _ in range(connections)
    ]
    async with httpx.AsyncClient(
        base_url=server_a.base_url,
        headers={"X-Parse-Application-Id": server_a.app_id},
        timeout=60.0,
    ) as http:
        token = await log_in(http, seeded.patients[0].username)
        conns = await cover_workers(conns, token, workers, connections * 4)
        revokers = [c for c in conns if c.server is server_a]
        times: dict[str, list[float]] = {g: [] for g in GROUPS}
        first_poll: dict[str, int] = {g: 0 for g in GROUPS}
        started = time.perf_counter()
        for n in range(trials):
            patient = seeded.patients[n % len(seeded.patients)]
            token = await log_in(http, patient.username)
            problem = await run_trial(conns, revokers[n % len(revokers)], token, times, first_poll)
            result.trials += 1
            covered = {c.worker for c in conns if c.worker is not None}
            if n == 0 or len(covered) < result.workers_covered_min:
                result.workers_covered_min = len(covered)
            if problem.get("revoker_immediate"):
                result.revoker_immediate += 1
            result.not_refused += problem.get("not_refused", 0)
            result.flapped += problem.get("flapped", 0)
            result.errors.extend(problem.get("errors", []))
            if len(result.errors) > 20:
                break
    for conn in conns:
        conn.close()
    result.seconds = time.perf_counter() - started
    result.groups = {g: summarize(times[g], first_poll[g]) for g in GROUPS}
    others = [t for g in OTHER_WORKERS for t in times[g]]
    result.groups["other workers (both servers)"] = summarize(
        others, sum(first_poll[g] for g in OTHER_WORKERS)
    )
    return result


async def log_in(http: httpx.AsyncClient, username: str) -> str:
    reply = await http.post(f"{MOUNT}/login", json={"username": username, "password": PASSWORD})
    if reply.status_code != 200:
        raise RuntimeError(f"S7 login: HTTP {reply.status_code} {reply.text[:200]}")
    return str(reply.json()["sessionToken"])


async def cover_workers(
    conns: list[RawConnection], token: str, workers: int, most: int
) -> list[RawConnection]:
    """Open more connections to a server while one of its workers holds none (the kernel
    spreads them by a hash of the addresses), up to ``most`` per server."""
    for conn in conns:
        await conn.request("GET", "/users/me", token)
    for server in {id(c.server): c.server for c in conns}.values():
        mine = [c for c in conns if c.server is server]
        while len({c.worker for c in mine}) < workers and len(mine) < most:
            if any(c.worker is None for c in mine):
                break  # /proc does not say which worker holds a connection: nothing to aim at
            extra = RawConnection(server, mine[0].server_pid)
            await extra.request("GET", "/users/me", token)
            mine.append(extra)
            conns.append(extra)
    return conns


def group_of(conn: RawConnection, revoker: RawConnection) -> str:
    if conn is revoker:
        return "revoking connection"
    if conn.server is not revoker.server:
        return "other server"
    if conn.worker is not None and conn.worker == revoker.worker:
        return "revoking worker"
    return "other worker, same server"


async def run_trial(
    conns: list[RawConnection],
    revoker: RawConnection,
    token: str,
    times: dict[str, list[float]],
    first_poll: dict[str, int],
) -> dict[str, Any]:
    outcome: dict[str, Any] = {"errors": [], "not_refused": 0, "flapped": 0}

    async def warm_one(conn: RawConnection) -> tuple[int, dict[str, Any]]:
        try:
            return await conn.request("GET", "/users/me", token)
        except (ConnectionError, asyncio.IncompleteReadError):
            # Closed by the server while idle (keep-alive timeout): a new connection, which
            # the kernel may hand to another worker; the worker is looked up again.
            return await conn.request("GET", "/users/me", token)

    warm = await asyncio.gather(*(warm_one(c) for c in conns), return_exceptions=True)
    for reply in warm:
        if isinstance(reply, BaseException) or reply[0] != 200:
            outcome["errors"].append(f"warm-up: {reply!r}"[:200])
            return outcome
    status, body = await revoker.request("POST", "/logout", token, b"{}")
    revoked_at = time.perf_counter()
    if status != 200:
        outcome["errors"].append(f"logout: HTTP {status} {body}"[:200])
        return outcome

    async def poll(conn: RawConnection) -> None:
        group = group_of(conn, revoker)
        polls = 0
        while time.perf_counter() - revoked_at < POLL_TIMEOUT:
            status, body = await conn.request("GET", "/users/me", token)
            polls += 1
            if body.get("code") == INVALID_SESSION:
                times[group].append((time.perf_counter() - revoked_at) * 1000)
                if polls == 1:
                    first_poll[group] += 1
                    if conn is revoker:
                        outcome["revoker_immediate"] = True
                return
            if status != 200:
                outcome["errors"].append(f"poll: HTTP {status} {body}"[:200])
                return
        outcome["not_refused"] += 1

    polled = await asyncio.gather(*(poll(c) for c in conns), return_exceptions=True)
    outcome["errors"].extend(f"poll: {r!r}"[:200] for r in polled if isinstance(r, BaseException))
    again = await asyncio.gather(
        *(c.request("GET", "/users/me", token) for c in conns), return_exceptions=True
    )
    for reply in again:
        if isinstance(reply, BaseException):
            outcome["errors"].append(f"re-check: {reply!r}"[:200])
        elif reply[1].get("code") != INVALID_SESSION:
            outcome["flapped"] += 1
    return outcome
