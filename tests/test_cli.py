"""The `mindharbor` command as `make run` uses it: seed-demo (twice) then serve on SQLite."""

from __future__ import annotations

import os
import socket
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
    result = f"{gc.get_freeze_count() > 0} {gc.get_threshold()}"
with open(sys.argv[2], "w") as out:
    out.write(result)
"""


def test_only_a_server_worker_settles_its_heap(tmp_path: Path) -> None:
    """uvicorn's app factory (one app per process) freezes the startup heap and raises the
    collector's thresholds; an app built by a test or an embedder leaves the process alone."""
    seen = {}
    for kind in ("worker", "embedded"):
        # The answer goes to a file: the worker's JSON log lines come from other threads on the
        # same stdout and can land between the parts of one print.
        answer = tmp_path / f"{kind}.txt"
        probe = subprocess.run(
            [sys.executable, "-c", _HEAP_PROBE, kind, str(answer)],
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert probe.returncode == 0, probe.stderr
        line = answer.read_text()
        seen[kind] = line.split()[0], line.split(maxsplit=1)[1].strip()
    assert seen["worker"] == ("True", "(20000, 20, 20)")
    assert seen["embedded"] == ("False", "(700, 10, 10)")


def _mindharbor(
    data_dir: Path, *args: str, stdin: str = "", **settings: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mindharbor", *args],
        env=_env(data_dir, **{f"MINDHARBOR_{k.upper()}": v for k, v in settings.items()}),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_line_error(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_create_user_reads_stdin_and_fails_in_one_line(tmp_path: Path) -> None:
    created = _mindharbor(
        tmp_path, "create-user", "--username", "first.admin", stdin="a-Good-passphrase-42\n"
    )
    assert created.returncode == 0, created.stderr
    assert "Created admin first.admin" in created.stdout
    assert "a-Good-passphrase-42" not in created.stdout + created.stderr
    again = _mindharbor(
        tmp_path, "create-user", "--username", "first.admin", stdin="a-Good-passphrase-42\n"
    )
    _one_line_error(again, "already exists")
    weak = _mindharbor(tmp_path, "create-user", "--username", "someone", stdin="short\n")
    _one_line_error(weak, "at least 10 characters")
    role = _mindharbor(
        tmp_path, "create-user", "--username", "x.y", "--role", "wizard", stdin="long-enough-pw\n"
    )
    _one_line_error(role, "unknown role 'wizard'")
    empty = _mindharbor(tmp_path, "create-user", "--username", "nopw")
    _one_line_error(empty, "no password")
    on_argv = _mindharbor(tmp_path, "create-user", "--username", "a.b", "--password", "x" * 12)
    assert on_argv.returncode != 0  # argv is visible to every user of the machine: refused


def test_database_urls_that_cannot_work_fail_in_one_line(tmp_path: Path) -> None:
    _one_line_error(
        _mindharbor(tmp_path, "migrate", database_url="mysql://user:secret@db/clinic"),
        "MINDHARBOR_DATABASE_URL: must be postgresql://",
    )
    unreachable = _mindharbor(
        tmp_path, "migrate", database_url="postgresql://postgres:pw-not-shown@127.0.0.1:1/x"
    )
    _one_line_error(unreachable, "cannot reach the database")
    assert "pw-not-shown" not in unreachable.stderr
    _one_line_error(
        _mindharbor(tmp_path, "migrate", database_url="postgresql://u@no-such-host.invalid/x"),
        "does not resolve",
    )


def test_wrong_database_name_fails_in_one_line(tmp_path: Path) -> None:
    from tests.conftest import _need_postgres
    from tests.support import PG_ADMIN_URL

    _need_postgres()
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/mindharbor_no_such_database"
    _one_line_error(_mindharbor(tmp_path, "migrate", database_url=url), "does not exist")


def test_production_names_every_missing_or_weak_setting_at_once(tmp_path: Path) -> None:
    result = _mindharbor(tmp_path, "serve", production="true", master_key="only-20-characters!!")
    assert result.returncode != 0
    assert "MindHarbor serving" not in result.stdout
    for setting in ("MASTER_KEY is too short", "FILES_KEY", "AUDIT_KEY", "PUBLIC_URL"):
        assert f"MINDHARBOR_{setting}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_the_banner_follows_the_bind(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _mindharbor(tmp_path, "serve", port=str(port))
    _one_line_error(result, f"cannot listen on 127.0.0.1:{port}")
    assert "MindHarbor serving" not in result.stdout


def test_long_commands_show_progress_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal, seed-demo draws a rich progress bar on stderr; in a pipe it does not."""
    import pty

    controller, terminal = pty.openpty()
    try:
        seeded = subprocess.run(
            [sys.executable, "-m", "mindharbor", "seed-demo"],
            env={**_env(tmp_path), "COLUMNS": "100", "TERM": "xterm"},
            stdout=subprocess.PIPE,
            stderr=terminal,
            text=True,
            timeout=180,
        )
        os.close(terminal)
        drawn = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(controller)
    assert seeded.returncode == 0
    assert b"Seeding the demo clinic" in drawn
    assert b"6/6" in drawn
    piped = _mindharbor(tmp_path, "seed-demo")
    assert piped.returncode == 0 and "Seeding" not in piped.stderr
