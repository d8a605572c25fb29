"""The `mindharbor` command as `make run` uses it: seed-demo (twice) then serve on SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support import free_port


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINDHARBOR_")}
    env.update({"MINDHARBOR_DATA_DIR": str(data_dir), **extra})
    return env


def test_seed_demo_is_idempotent_and_serve_answers_health(tmp_path: Path) -> None:
    for _ in range(2):
        seeded = subprocess.run(
            [sys.executable, "-m", "mindharbor", "seed-demo"],
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert seeded.returncode == 0, seeded.stderr
        assert "pat.morgan" in seeded.stdout
    assert (tmp_path / "master.key").stat().st_mode & 0o777 == 0o600
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mindharbor", "serve"],
        env=_env(tmp_path, MINDHARBOR_PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/parse/health", timeout=2)
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "server did not start"
            time.sleep(0.2)
        assert health.json() == {"status": "ok"}
        login = httpx.post(
            f"http://127.0.0.1:{port}/parse/login",
            headers={"X-Parse-Application-Id": "mindharbor"},
            json={"username": "pat.morgan", "password": "harbor-demo-password"},
        )
        assert login.status_code == 200, login.text
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert "harbor-demo-password" not in output  # serve prints the master key, not passwords


def test_production_refuses_a_missing_master_key(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mindharbor", "migrate"],
        env=_env(tmp_path, MINDHARBOR_PRODUCTION="true"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "MINDHARBOR_MASTER_KEY is required" in result.stderr


_HEAP_PROBE = """
import gc, sys
from starlette.testclient import TestClient
from mindharbor.app import app_from_environment, create_app
from mindharbor.settings import load_settings
app = app_from_environment() if sys.argv[1] == "worker" else create_app(load_settings())
with TestClient(app) as client:
    assert client.get("/parse/health").status_code == 200
    print(gc.get_freeze_count() > 0, gc.get_threshold())
"""


def test_only_a_server_worker_settles_its_heap(tmp_path: Path) -> None:
    """uvicorn's app factory (one app per process) freezes the startup heap and raises the
    collector's thresholds; an app built by a test or an embedder leaves the process alone."""
    seen = {}
    for kind in ("worker", "embedded"):
        probe = subprocess.run(
            [sys.executable, "-c", _HEAP_PROBE, kind],
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert probe.returncode == 0, probe.stderr
        seen[kind] = probe.stdout.split()[0], probe.stdout.split(maxsplit=1)[1].strip()
    assert seen["worker"] == ("True", "(20000, 20, 20)")
    assert seen["embedded"] == ("False", "(700, 10, 10)")
