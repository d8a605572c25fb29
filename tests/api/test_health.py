import asyncio
from pathlib import Path
from types import SimpleNamespace

from mindharbor.files.blobstore import LocalBlobStore
from mindharbor.health import HealthChecks
from tests.support import ParseClient


def test_health_needs_no_app_id(client: ParseClient) -> None:
    response = client.http.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_unknown_app_id_is_unauthorized(client: ParseClient) -> None:
    response = client.http.get("/classes/Anything", headers={"X-Parse-Application-Id": "nope"})
    assert response.status_code == 403
    assert response.json() == {"error": "unauthorized"}


def test_wrong_master_key_is_unauthorized(client: ParseClient) -> None:
    response = client.get("/classes/Anything", headers={"X-Parse-Master-Key": "wrong"})
    assert response.status_code == 403


def test_health_in_the_sdks_post_form(client: ParseClient) -> None:
    """The JS SDK's ``Parse.getServerHealth()``: POST, text/plain, ``_method: GET`` in the body."""
    body = b'{"_method":"GET","_ApplicationId":"' + client.server.app_id.encode() + b'"}'
    for path in ("/health", "/health/live"):
        response = client.http.post(path, content=body, headers={"Content-Type": "text/plain"})
        assert response.status_code == 200, response.text
    response = client.http.post("/health", content=body, headers={"Content-Type": "text/plain"})
    assert response.json() == {"status": "ok"}


def test_concurrent_file_probes_never_fail_each_other(tmp_path: Path) -> None:
    """Every worker probes the same file store: under load their probes overlapped and healthy
    workers answered 503 ``files: unavailable``."""
    blobs = LocalBlobStore(tmp_path)
    checks = [HealthChecks(None, SimpleNamespace(blobs=blobs), None) for _ in range(8)]

    async def probe_all() -> list[bool]:
        return await asyncio.gather(*(c._files() for c in checks for _ in range(10)))

    assert all(asyncio.run(probe_all()))
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # every probe cleaned up
