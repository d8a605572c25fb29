"""FileService and both blob stores (local directory, S3 via moto server): storage-level rules.

Bytes at rest, tampering, refusals, rotation and garbage collection, run once per backend.
"""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from mindharbor.errors import FileSaveError, InvalidFileName, RequestTooLarge
from mindharbor.files.blobstore import BlobNotFound, one_piece
from mindharbor.files.crypto import FileIntegrityError, parse_kek
from mindharbor.files.service import (
    BODY_SUFFIX,
    ENVELOPE_SUFFIX,
    FileAccessDenied,
    FileService,
    rotate_files_key,
    sniff,
)
from tests.files.conftest import ensure_bucket, file_settings

pytestmark = pytest.mark.anyio

MARKER = b"KNOWN-PLAINTEXT-MARKER-93c1"
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(300)
PDF = b"%PDF-1.7\n" + os.urandom(5000) + b"\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0" + os.urandom(300)


@pytest.fixture
async def service(tmp_path: Path, blob_backend: dict[str, Any]) -> AsyncIterator[FileService]:
    settings = file_settings(tmp_path, blob_backend, max_file_bytes=1_000_000)
    ensure_bucket(settings)
    files = FileService.from_settings(settings)
    yield files
    await files.aclose()


async def pieces(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def read_all(files: FileService, name: str, **kw: Any) -> bytes:
    url = files.signer.url(name, "u1")
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert unquote(urlsplit(url).path.rsplit("/", 1)[1]) == name
    opened = await files.open_download(name, expires=q["expires"], by=q["by"], sig=q["sig"], **kw)
    return b"".join([piece async for piece in opened.body])


async def raw_blob(files: FileService, key: str) -> bytes:
    return b"".join([piece async for piece in files.blobs.get(key)])


async def test_round_trip_and_nothing_readable_at_rest(service: FileService) -> None:
    plain = MARKER + b"\n" + b"session notes line\n" * 3000
    stored = await service.upload("notes.txt", "text/plain", pieces(plain), owner="u1")
    assert stored.content_type == "text/plain" and stored.size == len(plain)
    assert stored.name.endswith("_notes.txt") and len(stored.name) == 32 + 1 + 9
    assert await read_all(service, stored.name) == plain
    body = await raw_blob(service, stored.name + BODY_SUFFIX)
    envelope = await service.blobs.read(stored.name + ENVELOPE_SUFFIX)
    assert MARKER not in body and b"session notes" not in body
    assert MARKER not in envelope and plain[:64] not in body
    assert len(body) > len(plain)  # ciphertext plus per-chunk nonces and tags


async def test_local_disk_holds_only_ciphertext(tmp_path: Path) -> None:
    settings = file_settings(tmp_path, {"files_backend": "local"})
    files = FileService.from_settings(settings)
    stored = await files.upload("m.txt", None, one_piece(MARKER * 100), owner=None)
    on_disk = list((tmp_path / "data" / "files").iterdir())
    assert {p.name for p in on_disk if p.is_file()} == {
        stored.name + BODY_SUFFIX,
        stored.name + ENVELOPE_SUFFIX,
    }
    for path in on_disk:
        if path.is_file():
            assert MARKER not in path.read_bytes()
    assert list((tmp_path / "data" / "files" / ".tmp").iterdir()) == []  # no temp left behind


async def test_tampered_body_fails_and_never_returns_altered_bytes(service: FileService) -> None:
    plain = PDF + os.urandom(900_000)
    stored = await service.upload("r.pdf", "application/pdf", pieces(plain, 7000), owner=None)
    key = stored.name + BODY_SUFFIX
    body = bytearray(await raw_blob(service, key))
    body[len(body) - 1000] ^= 0x40  # a bit in the last chunk, well past the first read
    await service.blobs.put(key, one_piece(bytes(body)))
    url = service.signer.url(stored.name, None)
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    opened = await service.open_download(stored.name, expires=q["expires"], by=None, sig=q["sig"])
    received = bytearray()
    with pytest.raises(FileIntegrityError):
        async for piece in opened.body:
            received += piece
    assert plain.startswith(bytes(received))  # only authenticated prefix chunks, unaltered
    assert len(received) < len(plain)

    body[len(body) - 1000] ^= 0x40
    await service.blobs.put(key, one_piece(bytes(body[:-100])))  # truncated
    with pytest.raises(FileIntegrityError):
        await read_all(service, stored.name)

    body[100] ^= 1  # first chunk: refused before anything is returned
    await service.blobs.put(key, one_piece(bytes(body)))
    with pytest.raises(FileIntegrityError):
        await read_all(service, stored.name)


async def test_tampered_envelope_fails(service: FileService) -> None:
    stored = await service.upload("a.png", "image/png", one_piece(PNG), owner=None)
    key = stored.name + ENVELOPE_SUFFIX
    envelope = await service.blobs.read(key)
    await service.blobs.put(key, one_piece(envelope.replace(b"image/png", b"text/html")))
    with pytest.raises(FileIntegrityError):
        await read_all(service, stored.name)


async def test_forged_expired_and_missing_are_all_denied(service: FileService) -> None:
    stored = await service.upload("a.png", "image/png", one_piece(PNG), owner=None)
    with pytest.raises(FileAccessDenied):
        await service.open_download(stored.name, expires="9999999999", by=None, sig="forged")
    with pytest.raises(FileAccessDenied):
        await service.open_download(stored.name, expires="1", by=None, sig=None)
    missing = "f" * 32 + "_gone.png"
    with pytest.raises(FileAccessDenied):  # validly signed, but absent: the same refusal
        await read_all(service, missing)
    assert await read_all(service, stored.name, master=True) == PNG


@pytest.mark.parametrize(
    ("name", "declared", "data", "error"),
    [
        ("a.png", "image/png", PDF, FileSaveError),  # declared type disagrees with bytes
        ("a.pdf", "text/plain", PDF, FileSaveError),
        ("a.bin", None, b"\x00\x01\x02" * 50, FileSaveError),  # not an allowed type
        ("a.gif", "image/gif", b"GIF89a" + b"\x00" * 50, FileSaveError),
        ("a.html", "text/html", b"<html><script>alert(1)</script></html>", FileSaveError),
        ("a.txt", "text/plain", b"", FileSaveError),  # empty
        ("a.exe", "application/pdf", PDF, InvalidFileName),  # extension disagrees
        ("../etc/passwd", None, b"hi", InvalidFileName),
        (".hidden", None, b"hi", InvalidFileName),
        ("a/b.txt", None, b"hi", InvalidFileName),
        ("", None, b"hi", InvalidFileName),
        ("x" * 129, None, b"hi", InvalidFileName),
    ],
)
async def test_refusals(
    service: FileService, name: str, declared: str | None, data: bytes, error: type
) -> None:
    with pytest.raises(error):
        await service.upload(name, declared, one_piece(data), owner=None)
    assert [info async for info in service.blobs.list()] == []


async def test_oversize_is_refused_while_streaming(service: FileService) -> None:
    with pytest.raises(RequestTooLarge):
        await service.upload("big.txt", "text/plain", pieces(b"a" * 1_000_001, 65536), owner=None)
    with pytest.raises(RequestTooLarge):
        await service.upload(
            "big.txt", None, pieces(b"a" * 10), owner=None, declared_length=1_000_001
        )
    assert [info async for info in service.blobs.list()] == []  # nothing partial was kept


async def test_types_are_sniffed() -> None:
    assert sniff(PDF[:100], False) == "application/pdf"
    assert sniff(PNG, True) == "image/png"
    assert sniff(JPEG, True) == "image/jpeg"
    assert sniff("héllo wörld\n".encode(), True) == "text/plain"
    assert sniff("é".encode()[:1], False) == "text/plain"  # cut mid-character by the sample
    assert sniff("é".encode()[:1], True) is None
    assert sniff(b"\x00abc", True) is None


async def test_rotation_rewraps_without_touching_bodies(
    service: FileService, tmp_path: Path
) -> None:
    stored = [
        await service.upload(f"f{i}.txt", None, one_piece(MARKER + bytes([65 + i])), owner=None)
        for i in range(3)
    ]
    bodies = {s.name: await raw_blob(service, s.name + BODY_SUFFIX) for s in stored}
    old = service._kek
    new = parse_kek(base64.b64encode(os.urandom(32)).decode())
    assert await rotate_files_key(service.blobs, old, new) == {
        "rewrapped": 3,
        "skipped": 0,
        "failed": 0,
    }
    assert await rotate_files_key(service.blobs, old, new) == {
        "rewrapped": 0,
        "skipped": 3,
        "failed": 0,
    }
    for s in stored:
        assert await raw_blob(service, s.name + BODY_SUFFIX) == bodies[s.name]
    with pytest.raises(FileIntegrityError):  # the old key no longer opens anything
        await read_all(service, stored[0].name)
    service._kek = new
    for i, s in enumerate(stored):
        assert await read_all(service, s.name) == MARKER + bytes([65 + i])


async def test_delete_is_idempotent(service: FileService) -> None:
    stored = await service.upload("a.txt", None, one_piece(b"bye"), owner=None)
    assert await service.delete(stored.name) is True
    assert await service.delete(stored.name) is False
    with pytest.raises(BlobNotFound):
        await service.blobs.read(stored.name + ENVELOPE_SUFFIX)
    with pytest.raises(FileAccessDenied):
        await read_all(service, stored.name)
