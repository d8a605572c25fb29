"""``mindharbor backup`` / ``restore`` round trip on the embedded default (issue 14).

A seeded clinic is served; a patient uploads a file and sends a message; the backup is taken
while the server runs; a later message is not in it. Restored into an empty data directory, a
new server logs the same patient in with the same password, serves the same file through the
URL minted before the backup (the restored files key both signs and decrypts it), has the first
message and not the later one, and ``verify-audit`` passes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support import free_port, serve_process, wait_healthy

APP = {"X-Parse-Application-Id": "mindharbor"}


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINDHARBOR_")}
    env["MINDHARBOR_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "mindharbor", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _serve(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    server = serve_process(data_dir, port, 1, mfa_required_roles="")
    base = f"http://127.0.0.1:{port}"
    wait_healthy(server, base)
    return server, base


def _login(base: str) -> dict[str, str]:
    login = httpx.post(
        f"{base}/parse/login",
        headers=APP,
        json={"username": "pat.morgan", "password": "harbor-demo-password"},
    )
    assert login.status_code == 200, login.text
    return {**APP, "X-Parse-Session-Token": login.json()["sessionToken"]}


def _message(base: str, session: dict[str, str], text: str) -> None:
    me = httpx.get(f"{base}/parse/users/me", headers=session).json()["objectId"]
    profile = httpx.get(f"{base}/parse/classes/PatientProfile", headers=session).json()
    patient = profile["results"][0]["objectId"]
    rivera = {"__type": "Pointer", "className": "_User", "objectId": me}
    sent = httpx.post(
        f"{base}/parse/classes/Message",
        headers=session,
        json={
            "conversationId": f"demo-{patient}",
            "to": rivera,
            "patient": {"__type": "Pointer", "className": "PatientProfile", "objectId": patient},
            "body": text,
        },
    )
    assert sent.status_code == 201, sent.text


def _bodies(base: str) -> set[str]:
    session = _login(base)
    found = httpx.get(f"{base}/parse/classes/Message", headers=session, params={"limit": "1000"})
    return {row["body"] for row in found.json()["results"]}


def test_backup_while_serving_then_restore_into_an_empty_directory(tmp_path: Path) -> None:
    source, target, archive = tmp_path / "a", tmp_path / "b", tmp_path / "out" / "clinic.tar.gz"
    assert _cli(source, "seed-demo").returncode == 0
    server, base = _serve(source)
    try:
        session = _login(base)
        content = b"Safety plan, page 1\n" * 50
        uploaded = httpx.post(
            f"{base}/parse/files/plan.txt",
            headers={**session, "Content-Type": "text/plain"},
            content=content,
        )
        assert uploaded.status_code == 201, uploaded.text
        url = uploaded.json()["url"]
        _message(base, session, "before the backup")
        made = _cli(source, "backup", str(archive))  # online: the server keeps running
        assert made.returncode == 0, made.stderr
        _message(base, session, "after the backup")
    finally:
        server.terminate()
        server.communicate(timeout=30)
    assert archive.stat().st_mode & 0o777 == 0o600
    restored = _cli(target, "restore", str(archive))
    assert restored.returncode == 0, restored.stderr
    again = _cli(target, "restore", str(archive))
    assert again.returncode == 1 and again.stderr.startswith("error: ")
    assert "--force" in again.stderr and "Traceback" not in again.stderr
    verified = _cli(target, "verify-audit")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    server, restored_base = _serve(target)
    try:
        bodies = _bodies(restored_base)
        assert "before the backup" in bodies and "after the backup" not in bodies
        # The signed URL is bound to the uploader's session, restored with everything else.
        served = httpx.get(url.replace(base, restored_base), headers=session)
        assert served.status_code == 200, served.text
        assert served.content == content
    finally:
        server.terminate()
        server.communicate(timeout=30)
    assert (target / "master.key").read_text() == (source / "master.key").read_text()


def test_backup_refuses_postgresql_and_restore_refuses_a_non_backup(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINDHARBOR_")}
    env.update(
        MINDHARBOR_DATA_DIR=str(tmp_path),
        MINDHARBOR_DATABASE_URL="postgresql://postgres@127.0.0.1:5432/postgres",
    )
    refused = subprocess.run(
        [sys.executable, "-m", "mindharbor", "backup", str(tmp_path / "x.tar.gz")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1 and "pg_dump" in refused.stderr
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a backup")
    bad = _cli(tmp_path / "c", "restore", str(junk))
    assert bad.returncode == 1 and "not a readable backup" in bad.stderr
