"""A scratch PostgreSQL cluster of the benchmark's own, shared by both servers.

Both servers get databases in one cluster started here with one set of settings, so neither
gains from a tuned configuration the other lacks, and nothing else on the machine's main
PostgreSQL (tests, other benches) shares its buffers or WAL. The data directory stays under the
git-ignored ``bench/.work`` so the seeded template databases survive between runs: seeding 10,000
accounts hashes 10,000 passwords on each server, which takes far longer than the measurement.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import asyncpg

# The same settings for both servers; chosen for a 2-core, 24 GiB machine. Durability stays at
# PostgreSQL's defaults (fsync, synchronous_commit on, full_page_writes): an acknowledged write
# must survive a crash on either server, so neither may buy speed by giving that up.
SETTINGS: dict[str, str] = {
    "max_connections": "300",
    "shared_buffers": "1GB",
    "effective_cache_size": "4GB",
    "work_mem": "8MB",
    "maintenance_work_mem": "256MB",
    "wal_buffers": "16MB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
    "random_page_cost": "1.1",
    "jit": "off",
    "log_min_messages": "warning",
    "logging_collector": "off",
    # Statements per request (bench/compare/meters.py): counted for both servers alike, at a
    # cost of a few percent of PostgreSQL's CPU per statement.
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.max": "10000",
    "pg_stat_statements.track": "top",
    "pg_stat_statements.track_utility": "on",
}


def postgres_bin_dir() -> Path:
    """The server binaries (initdb, pg_ctl, pgbench); Debian keeps them out of PATH."""
    override = os.environ.get("BENCH_PG_BIN")
    if override:
        return Path(override)
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True)
    if not candidates:
        raise RuntimeError("initdb and pg_ctl not found: set BENCH_PG_BIN")
    return candidates[0].parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    """One postmaster on a free port, its data in ``data_dir``."""

    data_dir: Path
    port: int = 0
    bin_dir: Path = Path()

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str, driver: str = "postgresql") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def _as_owner(self, argv: list[str]) -> list[str]:
        """initdb and postgres refuse to run as root: run them as the data directory's owner."""
        if os.geteuid() != 0:
            return argv
        return ["runuser", "-u", "postgres", "--", *argv]

    def start(self) -> None:
        self.bin_dir = postgres_bin_dir()
        self.data_dir = self.data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            for path in (self.data_dir.parent, self.data_dir):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                self._as_owner(
                    [
                        str(self.bin_dir / "initdb"),
                        "-D",
                        str(self.data_dir),
                        "-U",
                        "postgres",
                        "--auth=trust",
                        "--encoding=UTF8",
                        "--locale=C",
                    ]
                ),
                check=True,
                capture_output=True,
            )
        self.port = free_port()
        options = " ".join(
            [f"-p {self.port}", "-h 127.0.0.1", f"-k {self.data_dir}"]
            + [f"-c {k}={v}" for k, v in SETTINGS.items()]
        )
        subprocess.run(
            self._as_owner(
                [
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.data_dir / "server.log"),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "120",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        if not (self.data_dir / "postmaster.pid").exists():
            return
        subprocess.run(
            self._as_owner(
                [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "stop"]
            ),
            check=False,
            capture_output=True,
        )

    def postmaster_pid(self) -> int | None:
        """For CPU accounting: PostgreSQL's backends are the postmaster's children."""
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    async def execute(self, sql: str, database: str = "postgres") -> None:
        conn = await asyncpg.connect(self.url(database))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def scalar(self, sql: str, *args: object, database: str = "postgres") -> object:
        conn = await asyncpg.connect(self.url(database))
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    async def exists(self, database: str) -> bool:
        found = await self.scalar("SELECT 1 FROM pg_database WHERE datname = $1", database)
        return found is not None

    async def drop(self, database: str) -> None:
        await self.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    async def clone(self, template: str, database: str) -> None:
        """A fresh copy of a seeded database, so one run's writes never leak into the next."""
        await self.drop(database)
        for attempt in range(20):
            try:
                await self.execute(f'CREATE DATABASE "{database}" TEMPLATE "{template}"')
                return
            except asyncpg.ObjectInUseError:  # a just-stopped server's backend still exiting
                await asyncio.sleep(0.5 * (attempt + 1))
        await self.execute(f'CREATE DATABASE "{database}" TEMPLATE "{template}"')

    async def version(self) -> str:
        return str(await self.scalar("SHOW server_version"))
