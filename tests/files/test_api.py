"""``/files`` over HTTP against a live server, on both storage backends.

Upload forms, download headers and audit, the uniform 403, refusals, master-key delete, and the
access matrix: a working URL reaches only callers who may read an object referencing the file.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import httpx
import pytest

from mindharbor.files.crypto import parse_kek
from mindharbor.files.signing import UrlSigner, derive_signing_key
from tests.api.identity_helpers import session
from tests.api.identity_helpers import sign_up as _sign_up
from tests.files.conftest import TEST_KEK, ensure_bucket, file_settings
from tests.support import LiveServer, ParseClient, live_server, unique_class

MARKER = b"PHI-MARKER-consent-form-0042"
PDF = b"%PDF-1.4\n" + MARKER + os.urandom(4000) + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(500)
# Each user's session token: a URL minted for a session downloads only with that session.
SESSIONS: dict[str, str] = {}


def sign_up(api: ParseClient) -> dict[str, Any]:
    user = _sign_up(api)
    SESSIONS[user["objectId"]] = user["sessionToken"]
    return user


@pytest.fixture
def api(files_server: LiveServer) -> Iterator[ParseClient]:
    client = files_server.client()
    yield client


def upload(
    api: ParseClient,
    name: str,
    data: bytes,
    content_type: str,
    token: str | None = None,
    master: bool = False,
) -> httpx.Response:
    headers = {"Content-Type": content_type}
    if token:
        headers.update(session(token))
    return api.request("POST", f"/files/{name}", content=data, headers=headers, master=master)


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def fetch(url: str, **kw: Any) -> httpx.Response:
    """A download as the reader the URL was minted for (its session's token sent along)."""
    minted_for = query(url).get("by")
    if "headers" not in kw and minted_for in SESSIONS:
        kw["headers"] = session(SESSIONS[minted_for])
    return httpx.get(url, timeout=30, **kw)


def test_raw_upload_then_signed_download(api: ParseClient, files_server: LiveServer) -> None:
    patient = sign_up(api)
    response = upload(api, "consent form.pdf", PDF, "application/pdf", patient["sessionToken"])
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"].endswith("_consent form.pdf")
    assert response.headers["Location"] == body["url"]
    assert body["url"].startswith(f"{files_server.url}/files/{files_server.app_id}/")
    assert {"expires", "sig", "by"} <= set(query(body["url"]))

    got = fetch(body["url"])
    assert got.status_code == 200
    assert got.content == PDF
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"] == 'attachment; filename="consent form.pdf"'
    assert got.headers["x-content-type-options"] == "nosniff"
    assert "no-store" in got.headers["cache-control"]
    assert got.headers["content-length"] == str(len(PDF))

    file_id = body["name"].split("_", 1)[0]
    entries = api.find("AuditLog", where={"action": "file.download", "entityId": file_id})
    assert len(entries["results"]) == 1
    entry = entries["results"][0]
    assert entry["actor"]["objectId"] == patient["objectId"] and entry["entityType"] == "File"
    assert "consent" not in str(entry)  # the client's file name is not copied into the log


def test_js_sdk_json_form(api: ParseClient) -> None:
    patient = sign_up(api)
    payload = {
        "base64": base64.b64encode(PNG).decode(),
        "fileData": {"metadata": {}, "tags": {}},
        "_ContentType": "image/png",
        "_ApplicationId": api.server.app_id,
        "_SessionToken": patient["sessionToken"],
        "_ClientVersion": "js6.1.1",
    }
    body = httpx.Request("POST", "/", json=payload).content
    response = api.http.post("/files/pic.png", content=body, headers={"Content-Type": "text/plain"})
    assert response.status_code == 201, response.text
    got = fetch(response.json()["url"])
    assert got.status_code == 200 and got.content == PNG
    assert got.headers["content-type"] == "image/png"


def test_uploads_need_a_user_or_the_master_key(api: ParseClient) -> None:
    response = upload(api, "a.txt", b"hello", "text/plain")
    assert response.status_code == 400 and response.json()["code"] == 130
    assert upload(api, "a.txt", b"hello", "text/plain", master=True).status_code == 201
    response = api.http.post(
        "/files/a.txt", content=b"hello", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 403  # no application id at all (not JSON form either)


@pytest.mark.parametrize(
    ("name", "data", "content_type", "code"),
    [
        ("a.png", PDF, "image/png", 130),
        ("a.html", b"<html><script>x()</script>", "text/html", 130),
        ("a.bin", os.urandom(64) + b"\x00", "application/octet-stream", 130),
        ("a.exe", PDF, "application/pdf", 122),
        (".env", b"x", "text/plain", 122),
    ],
)
def test_refused_types_and_names(
    api: ParseClient, name: str, data: bytes, content_type: str, code: int
) -> None:
    response = upload(api, name, data, content_type, master=True)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code


def test_post_without_a_name(api: ParseClient) -> None:
    response = api.request("POST", "/files", content=b"x", master=True)
    assert response.status_code == 400 and response.json()["code"] == 122


def test_oversize_is_413(tmp_path: Path, blob_backend: dict[str, Any]) -> None:
    settings = file_settings(tmp_path, blob_backend, max_file_bytes=50_000)
    ensure_bucket(settings)
    with live_server(settings, "sqlite") as live:
        client = live.client()
        assert upload(client, "a.txt", b"a" * 50_000, "text/plain", master=True).status_code == 201

        def chunks() -> Iterator[bytes]:  # no Content-Length: refused while streaming
            for _ in range(20):
                yield b"a" * 4096

        response = client.http.post(
            "/files/b.txt",
            content=chunks(),
            headers={**client.headers(True, None), "Content-Type": "text/plain"},
        )
        assert response.status_code == 413, response.text
        response = upload(client, "c.txt", b"a" * 50_001, "text/plain", master=True)
        assert response.status_code == 413


def test_forged_altered_expired_and_unknown_urls_all_get_the_same_403(
    api: ParseClient, files_server: LiveServer
) -> None:
    stored = upload(api, "a.txt", b"hello", "text/plain", master=True).json()
    good = stored["url"]
    q = query(good)
    base, name = good.split("?")[0], stored["name"]
    signer = UrlSigner(
        derive_signing_key(parse_kek(TEST_KEK)),
        files_server.app_id,
        files_server.url,
        300,
        clock=lambda: time.time() - 3600,
    )
    ghost = "0" * 32 + "_ghost.txt"
    bad_urls = [
        f"{base}?expires={q['expires']}&sig={'A' * 43}",  # forged signature
        f"{base}?expires={int(q['expires']) + 1}&sig={q['sig']}",  # extended expiry
        f"{base}?expires={q['expires']}&by=someoneelse&sig={q['sig']}",  # altered actor
        base,  # no signature at all
        signer.url(name),  # validly signed, expired an hour ago
        signer.url(name).replace("/files/" + files_server.app_id, "/files/other"),
        f"{files_server.url}/files/{files_server.app_id}/{quote(ghost)}?expires=9999999999&sig=x",
    ]
    live_signer = UrlSigner(
        derive_signing_key(parse_kek(TEST_KEK)), files_server.app_id, files_server.url, 300
    )
    bad_urls.append(live_signer.url(ghost))  # validly signed but no such file
    answers = {(r.status_code, r.content) for r in map(fetch, bad_urls)}
    assert answers == {(403, b'{"error":"unauthorized"}')}
    assert fetch(good).status_code == 200


def test_master_key_downloads_without_a_signature(
    api: ParseClient, files_server: LiveServer
) -> None:
    stored = upload(api, "a.txt", b"hello", "text/plain", master=True).json()
    plain = stored["url"].split("?")[0]
    assert fetch(plain).status_code == 403
    got = fetch(plain, headers={"X-Parse-Master-Key": files_server.master_key})
    assert got.status_code == 200 and got.content == b"hello"


def test_delete_needs_the_master_key(api: ParseClient) -> None:
    stored = upload(api, "a.txt", b"hello", "text/plain", master=True).json()
    patient = sign_up(api)
    response = api.delete(f"/files/{stored['name']}", headers=session(patient["sessionToken"]))
    assert response.status_code == 403
    assert fetch(stored["url"]).status_code == 200
    assert api.delete(f"/files/{stored['name']}", master=True).status_code == 200
    assert fetch(stored["url"]).status_code == 403
    # Deleting it again (or a name never stored): Parse's 153, not a silent 200.
    again = api.delete(f"/files/{stored['name']}", master=True)
    assert (again.status_code, again.json()) == (
        400,
        {"code": 153, "error": "Could not delete file."},
    )


def test_urls_only_for_readers_by_any_route(api: ParseClient) -> None:
    """Patient A's attachment: A (and the master key) get working URLs; B gets none by get,
    find, include (through a public object pointing at A's) or an Array of Files."""
    a, b = sign_up(api), sign_up(api)
    stored = upload(api, "a.pdf", PDF, "application/pdf", a["sessionToken"]).json()
    file_ref = {"__type": "File", "name": stored["name"]}
    doc, holder = unique_class("Doc"), unique_class("Holder")
    api.create_class(doc, {"file": {"type": "File"}, "files": {"type": "Array"}})
    api.create_class(holder, {"doc": {"type": "Pointer", "targetClass": doc}})
    acl = {a["objectId"]: {"read": True, "write": True}}
    doc_id = api.create(
        doc, {"file": file_ref, "files": [file_ref, {"k": 1}], "ACL": acl}, master=True
    )
    holder_id = api.create(
        holder, {"doc": {"__type": "Pointer", "className": doc, "objectId": doc_id}}
    )

    as_a = api.get(f"/classes/{doc}/{doc_id}", headers=session(a["sessionToken"])).json()
    for ref in (as_a["file"], as_a["files"][0]):
        assert ref["name"] == stored["name"]
        got = fetch(ref["url"])
        assert got.status_code == 200 and got.content == PDF
        assert query(ref["url"])["by"] == a["objectId"]

    b_headers = session(b["sessionToken"])
    assert api.get(f"/classes/{doc}/{doc_id}", headers=b_headers).status_code == 404
    assert api.get(f"/classes/{doc}", headers=b_headers).json()["results"] == []
    included = api.get(
        f"/classes/{holder}/{holder_id}", params={"include": "doc"}, headers=b_headers
    ).json()
    assert stored["name"] not in str(included)
    listed = api.get(f"/classes/{holder}", params={"include": "doc"}, headers=b_headers).json()
    assert stored["name"] not in str(listed)
    as_a_included = api.get(
        f"/classes/{holder}/{holder_id}",
        params={"include": "doc"},
        headers=session(a["sessionToken"]),
    ).json()
    assert fetch(as_a_included["doc"]["file"]["url"]).status_code == 200
    stale = as_a["file"]["url"]
    assert unquote(urlsplit(stale).path).endswith(stored["name"])


def test_orphans_are_collected_after_the_grace_period(
    tmp_path: Path, blob_backend: dict[str, Any]
) -> None:
    settings = file_settings(tmp_path, blob_backend, file_gc_grace_seconds=2)
    ensure_bucket(settings)
    with live_server(settings, "sqlite") as live:
        client = live.client()
        kept = upload(client, "kept.txt", b"kept", "text/plain", master=True).json()
        orphan = upload(client, "orphan.txt", b"orphan", "text/plain", master=True).json()
        cls = unique_class("Att")
        client.create_class(cls, {"attachments": {"type": "Array"}})
        client.create(cls, {"attachments": [{"__type": "File", "name": kept["name"]}]})
        fresh_run = client.post("/jobs/purgeOrphanFiles", {}, master=True)
        assert fresh_run.status_code in (200, 202), fresh_run.text
        time.sleep(1)
        assert fetch(orphan["url"]).status_code == 200  # within the grace period: kept
        time.sleep(2.5)
        assert client.post("/jobs/purgeOrphanFiles", {}, master=True).status_code in (200, 202)
        deadline = time.monotonic() + 20
        while fetch(orphan["url"]).status_code != 403:
            assert time.monotonic() < deadline, "orphan was not collected"
            time.sleep(0.2)
        assert fetch(kept["url"]).status_code == 200


def test_only_the_uploader_can_attach_a_file(api: ParseClient) -> None:
    """Knowing a file's name is not enough to mint a URL for it through an object of your own."""
    a, b = sign_up(api), sign_up(api)
    stored = upload(api, "a.pdf", PDF, "application/pdf", a["sessionToken"]).json()
    ref = {"__type": "File", "name": stored["name"]}
    cls = unique_class("Note")
    api.create_class(
        cls,
        {"file": {"type": "File"}, "files": {"type": "Array"}, "title": {"type": "String"}},
        clp={op: {"*": True} for op in ("get", "find", "create", "update", "delete", "count")},
    )
    as_b, as_a = session(b["sessionToken"]), session(a["sessionToken"])
    ghost = {"__type": "File", "name": "0" * 32 + "_ghost.pdf"}
    for body in ({"file": ref}, {"files": [ref]}, {"file": ghost}):
        refused = api.post(f"/classes/{cls}", body, headers=as_b)
        assert refused.status_code == 400 and refused.json()["code"] == 119, refused.text
    assert {r.json()["error"] for r in [
        api.post(f"/classes/{cls}", {"file": ref}, headers=as_b),
        api.post(f"/classes/{cls}", {"file": ghost}, headers=as_b),
    ]} == {"A file can only be attached by the user who uploaded it."}  # fmt: skip
    created = api.post(f"/classes/{cls}", {"file": ref, "title": "x"}, headers=as_a)
    assert created.status_code == 201, created.text
    object_id = created.json()["objectId"]
    # Anyone allowed to update may keep the reference while changing other fields...
    assert api.put(f"/classes/{cls}/{object_id}", {"title": "y"}, headers=as_b).status_code == 200
    kept = api.put(f"/classes/{cls}/{object_id}", {"file": ref, "title": "z"}, headers=as_b)
    assert kept.status_code == 200, kept.text
    # ...but cannot copy it into another object.
    own = api.post(f"/classes/{cls}", {"title": "mine"}, headers=as_b).json()["objectId"]
    moved = api.put(f"/classes/{cls}/{own}", {"files": [ref]}, headers=as_b)
    assert moved.status_code == 400 and moved.json()["code"] == 119
