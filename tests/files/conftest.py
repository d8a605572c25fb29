"""Fixtures for the file tests: both storage backends for real.

``blob_backend`` runs a test once against the local directory store and once against S3 served
by moto in server mode, started here as a separate process on 127.0.0.1 (a real HTTP S3 API,
not an in-process mock). Without moto installed the S3 variant is skipped, or fails when
``MINDHARBOR_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import REQUIRE_SERVICES, LiveServer, free_port, live_server, make_settings

TEST_KEK = base64.b64encode(bytes(range(32))).decode()


@dataclass
class MotoS3:
    endpoint: str
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    """A moto S3 server in its own process (so its memory is not the test's)."""
    try:
        import moto.server  # noqa: F401
    except ImportError:
        if REQUIRE_SERVICES:
            pytest.fail("moto[server] is required for the S3 file tests")
        pytest.skip("moto[server] not installed: S3 variant skipped")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(endpoint + "/moto-api/", timeout=2)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("moto server did not start")
            time.sleep(0.1)
    try:
        yield MotoS3(endpoint, process)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(params=["local", "s3"])
def blob_backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings overrides selecting one storage backend (a fresh bucket for S3)."""
    if request.param == "local":
        return {"files_backend": "local"}
    moto: MotoS3 = request.getfixturevalue("moto_s3")
    return {
        "files_backend": "s3",
        "s3_endpoint_url": moto.endpoint,
        "s3_bucket": f"mh-test-{uuid.uuid4().hex[:12]}",
        "s3_region": "us-east-1",
        "s3_access_key_id": "testing",
        "s3_secret_access_key": "testing",
    }


def file_settings(tmp_path: Path, backend: dict[str, Any], **overrides: Any) -> Any:
    return make_settings(
        f"sqlite:///{tmp_path / 'files.db'}",
        tmp_path / "data",
        files_key=TEST_KEK,
        mfa_required_roles="",
        login_rate_per_ip=100_000,
        job_schedule="",
        **{**backend, **overrides},
    )


def ensure_bucket(settings: Any) -> None:
    if settings.files_backend != "s3":
        return
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=settings.s3_secret_access_key,
    )
    client.create_bucket(Bucket=settings.s3_bucket)
    client.close()


@pytest.fixture
def files_server(tmp_path: Path, blob_backend: dict[str, Any]) -> Iterator[LiveServer]:
    settings = file_settings(tmp_path, blob_backend)
    ensure_bucket(settings)
    with live_server(settings, "sqlite") as live:
        yield live
