"""uvicorn (httptools + uvloop, what ``mindharbor serve`` runs) against granian, one worker each,
on the same PostgreSQL database: CPU per request of the server's process tree for a trivial
route (the ASGI server's own cost) and an authenticated master-key find (a typical read).

A measurement, not a test: ``python -m bench.asgi_servers`` with granian installed in the same
environment (``pip install granian``; it is not a dependency) and ``wrk`` on the PATH, against
``MINDHARBOR_DATABASE_URL`` (default: a scratch ``asgi_cmp`` database, migrated first).
Results and the decision are in bench/README.md ("ASGI server").
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

PORT = 18555
KEY = "m" * 40


def _cpu(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its descendants (Linux /proc)."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks = int(fields[11]) + int(fields[12])  # utime, stime
            stats[int(entry)] = (int(fields[1]), ticks / os.sysconf("SC_CLK_TCK"))
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, _) in stats.items():
            if ppid == parent and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(stats[p][1] for p in tree if p in stats)


def _wait_ready() -> None:
    for _ in range(240):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/parse/health/live", timeout=1)
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("server did not start")


def main() -> None:
    if shutil.which("wrk") is None or shutil.which("granian") is None:
        raise SystemExit("needs wrk and granian on the PATH (pip install granian)")
    database = os.environ.get(
        "MINDHARBOR_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/asgi_cmp"
    )
    env = {
        **os.environ,
        "MINDHARBOR_DATABASE_URL": database,
        "MINDHARBOR_MASTER_KEY": KEY,
        "MINDHARBOR_APP_ID": "asgi",
        "MINDHARBOR_DATA_DIR": tempfile.mkdtemp(),
        "MINDHARBOR_JOB_SCHEDULE": "",
    }
    subprocess.run([sys.executable, "-m", "mindharbor", "migrate"], env=env, check=True)
    factory = "mindharbor.app:app_from_environment"
    servers = {
        "uvicorn": [sys.executable, "-m", "uvicorn", "--factory", factory, "--port", str(PORT),
                    "--log-level", "warning", "--no-access-log"],
        "granian": ["granian", "--interface", "asgi", "--factory", "--port", str(PORT),
                    "--workers", "1", "--log-level", "warning", "--no-ws", factory],
    }  # fmt: skip
    master = ["-H", "X-Parse-Application-Id: asgi", "-H", f"X-Parse-Master-Key: {KEY}"]
    routes = {
        "health/live": ("/parse/health/live", []),
        "find (master key)": ("/parse/classes/_Role?limit=1", master),
    }
    for name, command in servers.items():
        proc = subprocess.Popen(command, env=env, start_new_session=True)
        try:
            _wait_ready()
            for label, (path, headers) in routes.items():
                url = f"http://127.0.0.1:{PORT}{path}"
                subprocess.run(["wrk", "-t1", "-c16", "-d3s", *headers, url], capture_output=True)
                before = _cpu(proc.pid)
                out = subprocess.run(
                    ["wrk", "-t1", "-c16", "-d10s", *headers, url], capture_output=True, text=True
                ).stdout
                used = _cpu(proc.pid) - before
                found = re.search(r"(\d+) requests in", out)
                if found is None:
                    raise SystemExit(f"wrk failed against {name}: {out[-300:]}")
                requests = int(found.group(1))
                print(
                    f"{name:8} {label:18} {requests / 10:7.0f} req/s "
                    f"{used / requests * 1000:6.3f} ms CPU/req",
                    flush=True,
                )
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)


if __name__ == "__main__":
    main()
