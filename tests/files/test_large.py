"""A 100 MiB upload and download through the live server stay within a stated memory bound.

Client and server run in this process (the server in a thread; moto in its own process), so
``tracemalloc``'s peak covers the test client, the HTTP server, decryption/encryption and the
blob store together. The bound is far below the file's size: nothing holds the file whole.
"""

from __future__ import annotations

import hashlib
import random
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.files.conftest import ensure_bucket, file_settings
from tests.support import live_server

SIZE = 100 * 1024 * 1024
PIECE = 1024 * 1024
# Local: a few 256 KiB read pieces and 64 KiB chunks in flight. S3: plus one 8 MiB multipart
# part, which is copied once for the request body (S3 needs >= 5 MiB parts).
BOUND = {"local": 16 * 1024 * 1024, "s3": 40 * 1024 * 1024}


def body(digest: Any) -> Iterator[bytes]:
    rng = random.Random(6)
    first = True
    sent = 0
    while sent < SIZE:
        piece = rng.randbytes(min(PIECE, SIZE - sent))
        if first:
            piece = b"%PDF-1.7\n" + piece[9:]
            first = False
        digest.update(piece)
        sent += len(piece)
        yield piece


def test_100_mib_round_trip_memory(
    tmp_path: Path, blob_backend: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    backend = blob_backend["files_backend"]
    settings = file_settings(tmp_path, blob_backend, max_file_bytes=SIZE)
    ensure_bucket(settings)
    with live_server(settings, "sqlite") as live:
        client = live.client()
        headers = {**client.headers(True, None), "Content-Type": "application/pdf"}
        sent = hashlib.sha256()
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            started = time.monotonic()
            response = client.http.post("/files/big.pdf", content=body(sent), headers=headers)
            assert response.status_code == 201, response.text
            upload_peak = tracemalloc.get_traced_memory()[1]
            uploaded = time.monotonic()
            tracemalloc.reset_peak()
            received = hashlib.sha256()
            count = 0
            with httpx.stream("GET", response.json()["url"], timeout=120) as download:
                assert download.status_code == 200
                assert download.headers["content-length"] == str(SIZE)
                for piece in download.iter_bytes():
                    received.update(piece)
                    count += len(piece)
            download_peak = tracemalloc.get_traced_memory()[1]
            done = time.monotonic()
        finally:
            tracemalloc.stop()
    assert count == SIZE and received.hexdigest() == sent.hexdigest()
    with capsys.disabled():
        print(
            f"\n[{backend}] 100 MiB: upload peak {upload_peak / 2**20:.1f} MiB "
            f"({uploaded - started:.1f}s), download peak {download_peak / 2**20:.1f} MiB "
            f"({done - uploaded:.1f}s); bound {BOUND[backend] / 2**20:.0f} MiB"
        )
    assert upload_peak < BOUND[backend]
    assert download_peak < BOUND[backend]
