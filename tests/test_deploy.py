"""The container deployment, tested by running what it runs (no image is built here).

``compose.yaml`` and the ``Dockerfile`` are read as data: the test checks their shape (a
non-root user, a read-only root filesystem with a tmpfs, migrations in a one-shot service the
servers wait for, servers that never migrate) and then runs their commands with their
environment, interpolated as compose does, pointed at this machine's PostgreSQL and Redis:
a server on an unmigrated database refuses to start, ``migrate`` runs once (and again as a
no-op, the upgrade path), two workers serve in production mode, and the image's health check
passes.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import _need_postgres
from tests.live_query.test_scale import _need_redis
from tests.support import free_port, postgres_database, wait_healthy

ROOT = Path(__file__).parent.parent


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?error}``."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        if env.get(name):
            return env[name]
        if op == ":?":
            raise AssertionError(f"compose would refuse: {arg}")
        return arg if op == ":-" else ""

    return re.sub(r"\$\{(\w+)(:[-?])?([^}]*)\}", one, value)


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def _dockerfile() -> tuple[dict[str, str], list[str], str, list[str]]:
    """The final stage's ENV, CMD, USER and HEALTHCHECK command."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    final = text.rsplit("\nFROM ", 1)[1]
    env: dict[str, str] = {}
    cmd: list[str] = []
    user = health = ""
    for line in final.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", rest)))
        elif word == "CMD":
            cmd = json.loads(rest)
        elif word == "USER":
            user = rest.strip()
        elif word == "HEALTHCHECK":
            health = rest
    return env, cmd, user, json.loads(health.split(" CMD ", 1)[1])


def test_the_image_and_the_compose_file_have_the_promised_shape() -> None:
    env, cmd, user, _ = _dockerfile()
    assert user and not user.startswith(("0", "root")), user
    assert env["MINDHARBOR_DATA_DIR"] == "/data"
    assert env["MINDHARBOR_METRICS_DIR"].startswith("/tmp/")  # the tmpfs of a read-only root
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    services = _compose()["services"]
    assert {"postgres", "redis", "migrate", "mindharbor", "minio"} <= set(services)
    assert services["minio"]["profiles"] == ["s3"]
    server, migrate = services["mindharbor"], services["migrate"]
    assert server["command"] == cmd == ["mindharbor", "serve", "--workers", "2"]
    assert migrate["command"] == ["mindharbor", "migrate"]
    for service in (server, migrate):
        assert service["read_only"] is True and "/tmp" in service["tmpfs"]
        assert service["environment"]["MINDHARBOR_MIGRATE_ON_START"] == "false"
        assert service["environment"]["MINDHARBOR_PRODUCTION"] == "true"
    assert server["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def _secrets(port: int) -> dict[str, str]:
    """What a deployer puts in compose's .env."""
    return {
        "POSTGRES_PASSWORD": "unused-here",
        "MINDHARBOR_MASTER_KEY": secrets.token_urlsafe(32),
        "MINDHARBOR_FILES_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "MINDHARBOR_AUDIT_KEY": secrets.token_urlsafe(32),
        "MINDHARBOR_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "MINDHARBOR_METRICS_TOKEN": secrets.token_urlsafe(32),
    }


def _run_env(
    service: dict[str, Any], data_dir: Path, database_url: str, port: int, dotenv: dict[str, str]
) -> dict[str, str]:
    image_env, _, _, _ = _dockerfile()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINDHARBOR_")}
    env.update(image_env)
    env.update({k: _interpolate(str(v), dotenv) for k, v in service["environment"].items()})
    # This machine's services in place of the compose network's host names.
    env.update(
        MINDHARBOR_DATABASE_URL=database_url,
        MINDHARBOR_REDIS_URL="redis://127.0.0.1:6379/0",
        MINDHARBOR_DATA_DIR=str(data_dir),
        MINDHARBOR_METRICS_DIR=str(data_dir / "tmp" / "metrics"),
        MINDHARBOR_HOST="127.0.0.1",
        MINDHARBOR_PORT=str(port),
    )
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return env


@pytest.mark.redis
def test_the_compose_commands_migrate_once_then_serve_two_workers(tmp_path: Path) -> None:
    _need_postgres()
    _need_redis()
    services = _compose()["services"]
    port = free_port()
    with postgres_database() as url:
        dotenv = _secrets(port)
        env = _run_env(services["mindharbor"], tmp_path, url, port, dotenv)
        migrate_env = _run_env(services["migrate"], tmp_path, url, port, dotenv)
        serve_cmd = services["mindharbor"]["command"]
        early = subprocess.run(serve_cmd, env=env, capture_output=True, text=True, timeout=120)
        assert early.returncode == 1  # the workers do not migrate: a fresh database is refused
        assert early.stderr.startswith("error: the database schema is behind")
        assert "MindHarbor serving" not in early.stdout
        for _ in range(2):  # once, then again as an upgrade with nothing to do
            migrated = subprocess.run(
                services["migrate"]["command"],
                env=migrate_env,
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert migrated.returncode == 0, migrated.stderr
        server = subprocess.Popen(
            serve_cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(server, base)
            assert httpx.get(f"{base}/parse/health").json() == {"status": "ok"}
            _, _, _, health = _dockerfile()
            probe = [sys.executable, *health[1:]]
            probe[-1] = probe[-1].replace("127.0.0.1:1337", f"127.0.0.1:{port}")
            assert subprocess.run(probe, timeout=30).returncode == 0
            scrape = httpx.get(
                f"{base}/metrics",
                headers={"Authorization": f"Bearer {env['MINDHARBOR_METRICS_TOKEN']}"},
            )
            assert scrape.status_code == 200
        finally:
            server.terminate()
            output = server.communicate(timeout=30)[0]
    assert "Traceback" not in output
    assert len(list((tmp_path / "tmp" / "metrics").glob("counter_*.db"))) >= 1
