"""The database ceiling: each scenario's SQL sent straight to PostgreSQL by pgbench.

Per request, a server must at least find the session, resolve the user's roles and run the
access-filtered query (or insert). These scripts do exactly that against a copy of MindHarbor's
seeded database (its tables and indexes), with prepared statements and the same number of
connections as the HTTP load, and without any audit write. No server can beat these numbers on
this machine; how close each one gets shows what its own layers cost.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
from pathlib import Path
from typing import Any

import asyncpg

from bench.compare.cluster import Cluster
from bench.compare.dataset import Seeded
from mindharbor.auth.sessions import token_hash

PROVIDER_BASE = 1_000_000  # bench_users.n of provider k is PROVIDER_BASE + k

# pgbench takes ":name" anywhere in a script for a variable, so no literal here may contain a
# colon followed by a letter (hence 'role:' || 'careTeam_' and the role_users view).
# Shared steps: the session by its token's hash, then the user's role names.
SESSION = """SELECT s."user", s."expiresAt" FROM "_Session" s
  WHERE s._session_token_hash = (SELECT token_hash FROM bench_users WHERE n = :n)
    AND s."expiresAt" > now();"""
ROLES = """SELECT r.name FROM "_Role" r JOIN role_users j ON j."owningId" = r."objectId"
  WHERE j."relatedId" = (SELECT user_id FROM bench_users WHERE n = :n);"""
IDENTITIES = """(SELECT ARRAY['*', b.user_id] || coalesce(array_agg('role:' || r.name), '{}')
   FROM bench_users b LEFT JOIN role_users j ON j."relatedId" = b.user_id
   LEFT JOIN "_Role" r ON r."objectId" = j."owningId" WHERE b.n = :n GROUP BY b.user_id)"""

SCRIPTS: dict[str, tuple[str, str]] = {
    "S2a": (
        "session, roles, own PatientProfile (ACL filtered)",
        f"""\\set n random(1, :patients)
{SESSION}
{ROLES}
SELECT p.* FROM "PatientProfile" p
  WHERE p."user" = (SELECT user_id FROM bench_users WHERE n = :n)
    AND p._rperm && {IDENTITIES} LIMIT 100;
""",
    ),
    "S2b": (
        "session, roles, own IntakeAssessment newest 10 (ACL filtered)",
        f"""\\set n random(1, :patients)
{SESSION}
{ROLES}
SELECT a.* FROM "IntakeAssessment" a
  WHERE a.patient = (SELECT profile_id FROM bench_users WHERE n = :n)
    AND a._rperm && {IDENTITIES}
  ORDER BY a."assessmentDate" DESC, a."objectId" LIMIT 10;
""",
    ),
    "S3": (
        "session, roles, Message to me unread newest 50 (ACL filtered)",
        f"""\\set n {PROVIDER_BASE} + random(1, :providers)
{SESSION}
{ROLES}
SELECT m.* FROM "Message" m
  WHERE m."to" = (SELECT user_id FROM bench_users WHERE n = :n) AND m."isRead" = false
    AND m._rperm && {IDENTITIES}
  ORDER BY m."createdAt" DESC, m."objectId" LIMIT 50;
""",
    ),
    "S4": (
        "session, roles, INSERT Message",
        f"""\\set n random(1, :patients)
{SESSION}
{ROLES}
INSERT INTO "Message" ("objectId", "createdAt", "updatedAt", _acl, _rperm, _wperm,
    "conversationId", "from", "to", patient, body, "isRead", "sentAt", status)
  SELECT substr(md5(random()::text), 1, 10), now(), now(),
    jsonb_build_object(b.user_id, '{{"read": true, "write": true}}'::jsonb),
    ARRAY[b.user_id, 'role:' || 'careTeam_' || b.profile_id],
    ARRAY[b.user_id, 'role:' || 'careTeam_' || b.profile_id],
    b.conversation, b.user_id, b.peer, b.profile_id,
    'How are you feeling since the last session? Please reply when you can.',
    false, now(), 'sent'
  FROM bench_users b WHERE b.n = :n;
""",
    ),
}


def pgbench_path() -> str | None:
    from bench.compare.cluster import postgres_bin_dir

    try:
        candidate = postgres_bin_dir() / "pgbench"
    except RuntimeError:
        candidate = Path("/nonexistent")
    return str(candidate) if candidate.exists() else shutil.which("pgbench")


async def load_users(cluster: Cluster, database: str, seeded: Seeded) -> None:
    conn = await asyncpg.connect(cluster.url(database))
    try:
        await conn.execute(
            "CREATE TABLE bench_users (n int PRIMARY KEY, user_id text, profile_id text,"
            " token_hash text, peer text, conversation text)"
        )
        rows = [
            (
                i + 1,
                p.user_id,
                p.profile_id,
                token_hash(p.token),
                seeded.provider_of(p).user_id,
                p.conversation_id,
            )
            for i, p in enumerate(seeded.patients)
        ] + [
            (PROVIDER_BASE + k + 1, p.user_id, None, token_hash(p.token), None, None)
            for k, p in enumerate(seeded.providers)
        ]
        await conn.copy_records_to_table("bench_users", records=rows)
        # pgbench reads ":users" in a quoted identifier as a variable; a view names it plainly.
        await conn.execute('CREATE VIEW role_users AS SELECT * FROM "_Join:users:_Role"')
        await conn.execute("ANALYZE bench_users")
    finally:
        await conn.close()


def latencies_ms(log_dir: Path, prefix: str) -> list[float]:
    values: list[float] = []
    for path in log_dir.glob(f"{prefix}.*"):
        for line in path.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3:
                values.append(int(fields[2]) / 1000)
        path.unlink()
    return values


async def run(
    cluster: Cluster,
    template: str,
    seeded: Seeded,
    seconds: float,
    connections: int,
    work_dir: Path,
) -> dict[str, dict[str, Any]]:
    pgbench = pgbench_path()
    if pgbench is None:
        return {}
    database = "ceiling_run"
    await cluster.clone(template, database)
    results: dict[str, dict[str, Any]] = {}
    try:
        await load_users(cluster, database, seeded)
        log_dir = work_dir / "pgbench"
        log_dir.mkdir(parents=True, exist_ok=True)
        for name, (what, script) in SCRIPTS.items():
            script_path = log_dir / f"{name}.sql"
            script_path.write_text(script)
            prefix = f"log-{name}"
            proc = await asyncio.create_subprocess_exec(
                pgbench,
                "-n",
                "-M",
                "prepared",
                "-c",
                str(connections),
                "-j",
                "2",
                "-T",
                str(max(1, round(seconds))),
                "-D",
                f"patients={len(seeded.patients)}",
                "-D",
                f"providers={len(seeded.providers)}",
                "-f",
                str(script_path),
                "-l",
                f"--log-prefix={log_dir / prefix}",
                "-h",
                "127.0.0.1",
                "-p",
                str(cluster.port),
                "-U",
                "postgres",
                database,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=log_dir,
            )
            out, err = await proc.communicate()
            text = out.decode()
            if proc.returncode != 0:
                raise RuntimeError(f"pgbench {name} failed: {text[-1000:]} {err.decode()[-1000:]}")
            tps = next(
                float(line.split("=")[1].split()[0])
                for line in text.splitlines()
                if line.startswith("tps =")
            )
            lat = sorted(latencies_ms(log_dir, prefix))
            results[name] = {
                "what": what,
                "tps": tps,
                "p50_ms": statistics.median(lat) if lat else None,
                "p99_ms": lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else None,
            }
    finally:
        await cluster.drop(database)
    return results
