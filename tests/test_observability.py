"""Logs and metrics of a served MindHarbor (issue 14: operations).

Logs: a seeded demo clinic is used as a clinic would use it (logins, searches by name, reads
by id, messages, a failed login, GraphQL, FHIR) against ``mindharbor serve`` in its own
process; every line it wrote is JSON, one per request with its route *template*, and not one
PHI value of the clinic (names, emails, usernames, record numbers, message text, ids of PHI
rows, session tokens) appears anywhere in the output.

Metrics: two workers on PostgreSQL; ``/metrics`` refuses a caller without the master key or
the metrics token and sums both workers' samples.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson

from tests.conftest import _need_postgres
from tests.support import free_port, postgres_database, serve_process, wait_healthy

MASTER = "test-master-key-not-secret-0123456789"
APP = "mindharbor"
PASSWORD = "harbor-demo-password"


def _seed(data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINDHARBOR_")}
    env.update(MINDHARBOR_DATA_DIR=str(data_dir), MINDHARBOR_MASTER_KEY=MASTER)
    done = subprocess.run(
        [sys.executable, "-m", "mindharbor", "seed-demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr


def _clinic_flow(base: str) -> list[str]:
    """Use the clinic; return every PHI value it saw or sent."""
    phi: list[str] = []
    h = {"X-Parse-Application-Id": APP}
    master = {**h, "X-Parse-Master-Key": MASTER}
    with httpx.Client(base_url=f"{base}/parse", timeout=30) as http:
        for cls in ("PatientProfile", "ProviderProfile", "Message", "_User", "IntakeAssessment"):
            found = http.get(f"/classes/{cls}", headers=master).json()["results"]
            for row in found:
                phi.append(row["objectId"]) if cls != "_User" else None
                for key in ("displayName", "medicalRecordNumber", "body", "email", "username"):
                    if isinstance(row.get(key), str):
                        phi.append(row[key])
        login = http.get(
            "/login", params={"username": "dr.rivera", "password": PASSWORD}, headers=h
        )
        assert login.status_code == 200, login.text
        token = login.json()["sessionToken"]
        phi.append(token)
        staff = {**h, "X-Parse-Session-Token": token}
        where = orjson.dumps({"displayName": "Morgan Lee"}).decode()
        found = http.get("/classes/PatientProfile", params={"where": where}, headers=staff)
        assert found.status_code == 200, found.text
        patient = found.json()["results"][0]["objectId"]
        assert http.get(f"/classes/PatientProfile/{patient}", headers=staff).status_code == 200
        text = "I have been feeling hopeless since the 14th, please call 555-0142"
        phi.append(text)
        me = http.get("/users/me", headers=staff).json()["objectId"]
        sent = http.post(
            "/classes/Message",
            headers=staff,
            json={
                "conversationId": f"demo-{patient}",
                "to": {"__type": "Pointer", "className": "_User", "objectId": me},
                "patient": {
                    "__type": "Pointer",
                    "className": "PatientProfile",
                    "objectId": patient,
                },
                "body": text,
            },
        )
        assert sent.status_code == 201, sent.text
        phi.append(sent.json()["objectId"])
        bad = http.post(
            "/login", json={"username": "pat.jordan", "password": "wrong-Password-1"}, headers=h
        )
        assert bad.status_code in (400, 401, 404)
        missing = http.get("/classes/PatientProfile/NoSuchId-Jordan-Diaz", headers=staff)
        assert missing.status_code == 404
        phi.append("NoSuchId-Jordan-Diaz")
    gql = httpx.post(
        f"{base}/graphql",
        headers={**h, "X-Parse-Session-Token": token},
        json={
            "query": '{ patientProfiles(where: {displayName: {equalTo: "Jordan Diaz"}}) { count } }'
        },
        timeout=30,
    )
    assert gql.status_code == 200, gql.text
    fhir = httpx.get(
        f"{base}/fhir/R4/Patient",
        params={"name": "Morgan"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert fhir.status_code < 500
    httpx.get(f"{base}/fhir/R4/Patient/{patient}", headers={"Authorization": f"Bearer {token}"})
    return [value for value in phi if len(value) >= 6]


def test_logs_are_json_lines_without_phi(tmp_path: Path) -> None:
    _seed(tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = serve_process(tmp_path, port, 1, master_key=MASTER, mfa_required_roles="")
    try:
        wait_healthy(server, base)
        phi = _clinic_flow(base)
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert len(phi) > 20
    leaked = sorted({value for value in phi if value in output})
    assert not leaked, leaked
    lines = [orjson.loads(line) for line in output.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line["logger"] == "mindharbor.request"]
    assert len(requests) >= 12
    for line in requests:
        assert set(line) >= {"time", "requestId", "route", "status", "durationMs", "role"}
        assert "?" not in line["route"], line
    routes = {line["route"] for line in requests}
    assert "/parse/classes/{className}/{objectId}" in routes
    assert "/parse/login" in routes
    staff = [line for line in requests if line["role"] == "provider"]
    assert staff and all(line["userId"] for line in staff)
    fhir = [line for line in requests if line["route"].startswith("/fhir/R4/{type}")]
    assert fhir and all(line["role"] == "provider" for line in fhir), fhir
    assert any(line["status"] == 404 for line in requests)
    assert "uvicorn.access" not in output


def _samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    found = []
    for line in text.splitlines():
        match = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
            found.append((labels, float(match.group(2))))
    return found


def test_metrics_sum_both_workers_and_are_protected(tmp_path: Path) -> None:
    _need_postgres()
    metrics_dir = tmp_path / "metrics"
    with postgres_database() as url:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = serve_process(
            tmp_path,
            port,
            2,
            database_url=url,
            master_key=MASTER,
            metrics_token="scrape-token-for-tests",
            metrics_dir=str(metrics_dir),
        )
        try:
            wait_healthy(server, base)
            count = 60
            for _ in range(count):  # fresh connections: spread over both workers
                assert httpx.get(f"{base}/parse/health/live").status_code == 200
            missing = httpx.get(
                f"{base}/parse/classes/Nope/abc",
                headers={"X-Parse-Application-Id": APP, "X-Parse-Master-Key": MASTER},
            )
            assert missing.status_code in (400, 404)
            assert httpx.get(f"{base}/metrics").status_code == 403
            bad = httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer wrong"})
            assert bad.status_code == 403
            time.sleep(6)  # each worker samples its gauges every 5 s
            scrapes = [
                httpx.get(
                    f"{base}/metrics", headers={"Authorization": "Bearer scrape-token-for-tests"}
                ),
                httpx.get(f"{base}/metrics", headers={"X-Parse-Master-Key": MASTER}),
            ]
            pids = {path.stem.rsplit("_", 1)[1] for path in metrics_dir.glob("counter_*.db")}
        finally:
            server.terminate()
            output = server.communicate(timeout=30)[0]
    assert len(pids) >= 2, pids  # both workers wrote samples
    for scrape in scrapes:
        assert scrape.status_code == 200
        text = scrape.text
        live = [
            value
            for labels, value in _samples(text, "mindharbor_requests_total")
            if labels["route"] == "/parse/health/live" and labels["status"] == "200"
        ]
        assert sum(live) >= count
        routes = {labels["route"] for labels, _ in _samples(text, "mindharbor_requests_total")}
        assert "/parse/classes/{className}/{objectId}" in routes
        assert not any("abc" in route or "Nope" in route for route in routes)
        assert _samples(text, "mindharbor_request_duration_seconds_bucket")
        pools = _samples(text, "mindharbor_db_pool_connections")
        assert {labels["pool"] for labels, _ in pools} >= {"sqlalchemy", "asyncpg"}
        assert _samples(text, "mindharbor_audit_batch_lag_seconds")
        assert _samples(text, "mindharbor_live_query_connections")
        assert _samples(text, "mindharbor_live_query_queue_depth")
        jobs = _samples(text, "mindharbor_job_runs_total")
        assert any(labels["job"] == "sealAuditLog" for labels, _ in jobs), jobs
    assert "Traceback" not in output


def test_a_stalled_log_reader_never_stalls_the_server(tmp_path: Path) -> None:
    """Nobody reads the server's standard output (a full pipe, a paused log shipper): the
    request lines queue, then are dropped, and requests keep being answered."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = serve_process(tmp_path, port, 1, master_key=MASTER)  # its pipe is not read
    try:
        wait_healthy(server, base)
        started = time.monotonic()
        with httpx.Client(base_url=base, timeout=10) as http:
            for _ in range(1500):  # ~450 KB of log lines: a pipe holds 64 KB
                assert http.get("/parse/health/live").status_code == 200
        assert time.monotonic() - started < 60
    finally:
        server.terminate()
        server.communicate(timeout=30)
