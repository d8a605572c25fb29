"""The servers under test: Parse Server and MindHarbor, each on its own database of the cluster.

Both get the same CPU budget the same way: ``workers`` processes each (Node ``cluster`` workers
for Parse, uvicorn workers for MindHarbor), the same PostgreSQL, pools of 10 connections per
process (pg's and SQLAlchemy's defaults), and they are never loaded at the same time: the
benchmark drives one server at a time while the others sit idle.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.compare import parse_server
from bench.compare.cluster import Cluster, free_port
from bench.compare.dataset import Seeded
from bench.find_messages import REPO_ROOT, Server, tail, wait_healthy

LONG_SESSION_MINUTES = str(60 * 24 * 60)  # 60 days, as long-lived as Parse's default year allows


@dataclass
class Arm:
    """One server configuration in the comparison."""

    key: str  # parse, parse-stock, mindharbor, mindharbor-noaudit
    label: str
    kind: str  # "parse" or "mindharbor"
    database: str
    app_id: str
    master_key: str
    audit_reads: bool = True
    extra_indexes: bool = False
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = Path()
    seeded: Seeded | None = None
    data_file: Path = Path()
    indexes: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def mindharbor_env(
    arm: Arm, cluster: Cluster, data_dir: Path, redis_url: str | None
) -> dict[str, str]:
    """The caller's environment minus any MINDHARBOR_* settings, which would skew the run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINDHARBOR_")}
    env.update(
        {
            "MINDHARBOR_DATA_DIR": str(data_dir),
            "MINDHARBOR_DATABASE_URL": cluster.url(arm.database),
            "MINDHARBOR_MASTER_KEY": arm.master_key,
            "MINDHARBOR_APP_ID": arm.app_id,
            "MINDHARBOR_PORT": str(arm.port),
            "MINDHARBOR_AUDIT_READS": "true" if arm.audit_reads else "false",
            # Every login comes from 127.0.0.1: the per-IP limit would refuse the login scenario.
            "MINDHARBOR_LOGIN_RATE_PER_IP": "100000000",
            # So does every seeded patient's sign-up (issue 19's per-IP sign-up limit).
            "MINDHARBOR_SIGNUP_RATE_PER_IP": "100000000",
            # Parse has no MFA; providers' sessions would otherwise be limited to enrolment.
            "MINDHARBOR_MFA_REQUIRED_ROLES": "",
            # Seeded sessions are reused across runs; Parse's last a year.
            "MINDHARBOR_SESSION_ABSOLUTE_MINUTES": LONG_SESSION_MINUTES,
            "MINDHARBOR_SESSION_IDLE_MINUTES_PATIENT": LONG_SESSION_MINUTES,
            "MINDHARBOR_SESSION_IDLE_MINUTES_STAFF": LONG_SESSION_MINUTES,
        }
    )
    if redis_url:
        env["MINDHARBOR_REDIS_URL"] = redis_url
    return env


async def start(
    arm: Arm, cluster: Cluster, workers: int, redis_url: str | None, work_dir: Path
) -> None:
    arm.port = free_port()
    arm.log_path = work_dir / f"{arm.key}.log"
    if arm.kind == "parse":
        arm.proc = parse_server.start(
            port=arm.port,
            database_url=cluster.url(arm.database, "postgres"),
            workers=workers,
            app_id=arm.app_id,
            master_key=arm.master_key,
            redis_url=redis_url,
            log_path=arm.log_path,
        )
        try:
            await parse_server.wait_ready(f"{arm.base_url}/parse", arm.app_id)
        except BaseException:
            stop(arm)
            raise
        return
    data_dir = work_dir / f"data-{arm.key}"
    data_dir.mkdir(parents=True, exist_ok=True)
    with arm.log_path.open("wb") as log:
        arm.proc = subprocess.Popen(
            [sys.executable, "-m", "mindharbor", "serve", "--workers", str(workers)],
            cwd=REPO_ROOT,
            env=mindharbor_env(arm, cluster, data_dir, redis_url),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(arm.proc, arm.base_url, arm.log_path, arm.audit_reads)
    try:
        await wait_healthy(server, timeout=120)
        await seal_backlog(arm)
    except BaseException:
        stop(arm)
        raise


async def seal_backlog(arm: Arm, timeout: float = 900.0) -> None:
    """Seal the audit entries seeding left behind before anything is measured.

    Seeding writes one audit entry per record; a server that has run for a while has sealed
    them long ago (the ``sealAuditLog`` job runs every minute), so the measured runs start from
    that steady state instead of billing a one-off backlog to whichever scenario comes first.
    """
    for attempt in range(5):
        try:
            await _seal_once(arm, timeout)
            return
        except RuntimeError:
            # At startup a worker's schema DDL can deadlock with the other worker's first
            # scheduled seal (PostgreSQL aborts one; the job runs again a minute later).
            if attempt == 4:
                raise
            await asyncio.sleep(2.0)


async def _seal_once(arm: Arm, timeout: float) -> None:
    headers = {"X-Parse-Application-Id": arm.app_id, "X-Parse-Master-Key": arm.master_key}
    async with httpx.AsyncClient(base_url=arm.base_url, headers=headers, timeout=60.0) as client:
        response = await client.post("/parse/jobs/sealAuditLog", json={})
        if response.status_code != 200:
            raise RuntimeError(f"sealAuditLog: HTTP {response.status_code} {response.text[:200]}")
        status_id = response.headers.get("x-parse-job-status-id")
        deadline = time.monotonic() + timeout
        while status_id and time.monotonic() < deadline:
            status = (await client.get(f"/parse/classes/_JobStatus/{status_id}")).json()
            if status.get("status") != "running":
                if status.get("status") != "succeeded":
                    raise RuntimeError(f"sealAuditLog: {status}")
                return
            await asyncio.sleep(1.0)


def stop(arm: Arm) -> None:
    if arm.proc is None:
        return
    if arm.kind == "parse":
        parse_server.stop(arm.proc)
    elif arm.proc.poll() is None:
        os.killpg(arm.proc.pid, signal.SIGTERM)
        try:
            arm.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(arm.proc.pid, signal.SIGKILL)
            arm.proc.wait()
    arm.proc = None


def check_alive(arm: Arm) -> None:
    if arm.proc is None or arm.proc.poll() is not None:
        raise RuntimeError(f"{arm.label} is not running; log:\n{tail(arm.log_path)}")
