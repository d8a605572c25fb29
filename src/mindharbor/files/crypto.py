"""Envelope encryption for stored files: AES-256-GCM, a fresh data key per file, streamed.

Why this shape:

* **A data key per file, wrapped by the key-encryption key (KEK).** A leaked data key exposes
  one file; rotating the KEK (``MINDHARBOR_FILES_KEY``) rewraps a few dozen bytes per file
  instead of re-encrypting every body.
* **The envelope is authenticated.** The wrapped key is sealed with the KEK under AES-GCM whose
  associated data is the file's canonical description (name, type, size, chunk size, owner,
  creation time). Editing any of those in storage makes the unwrap fail, so a swapped
  ``Content-Type`` (say ``text/html`` for a PDF) can never be served.
* **Chunked, each chunk its own GCM nonce and tag.** A 100 MB file is encrypted and decrypted
  64 KiB at a time, never held whole. Each chunk's associated data binds the file name, the
  chunk's index and a final-chunk flag, so reordering (index), truncation at a chunk boundary
  (the new last chunk was sealed as "not final"), extension, splicing chunks from another file
  (other key, other name) and bit flips are all detected. Plaintext is released only after its
  chunk's tag verified, so a tampered blob yields an error, never altered bytes.

A chunk record on disk is ``nonce (12) || ciphertext || tag (16)``. Every chunk but the last
holds exactly ``chunk_size`` plaintext bytes; the last holds 0..chunk_size.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
from collections.abc import AsyncGenerator, AsyncIterable
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT_VERSION = 1
DEFAULT_CHUNK_SIZE = 64 * 1024
NONCE_BYTES = 12
TAG_BYTES = 16
RECORD_OVERHEAD = NONCE_BYTES + TAG_BYTES
KEY_BYTES = 32
_CHUNK_CONTEXT = b"mindharbor/file-chunk/v1\x00"
_WRAP_CONTEXT = b"mindharbor/file-key/v1\x00"


class FileIntegrityError(Exception):
    """Stored ciphertext or its envelope failed authentication (tampered, truncated, wrong key).

    Deliberately carries no detail a caller could use as an oracle; the server logs it."""


def parse_kek(text: str) -> bytes:
    """The 32-byte KEK from its configured text form: base64 (standard or URL-safe) or hex."""
    value = text.strip()
    candidates: list[bytes] = []
    if len(value) == 2 * KEY_BYTES:
        with contextlib.suppress(ValueError):
            candidates.append(bytes.fromhex(value))
    for decode in (base64.urlsafe_b64decode, base64.b64decode):
        try:
            candidates.append(decode(value + "=" * (-len(value) % 4)))
        except (binascii.Error, ValueError):
            continue
    for key in candidates:
        if len(key) == KEY_BYTES:
            return key
    raise ValueError("MINDHARBOR_FILES_KEY must be 32 random bytes, base64- or hex-encoded")


def new_kek_text() -> str:
    """A fresh KEK in the form ``parse_kek`` reads (for the demo and for rotation)."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode().rstrip("=")


def kek_id(kek: bytes) -> str:
    """A short, non-secret fingerprint naming which KEK wrapped a data key (for rotation)."""
    return hashlib.sha256(b"mindharbor/kek-id\x00" + kek).hexdigest()[:16]


@dataclass(frozen=True)
class Envelope:
    """Everything about a stored file except its body: kept beside the body as small JSON."""

    name: str
    content_type: str
    size: int
    chunk_size: int
    created: float
    owner: str | None
    kek_id: str
    wrap_nonce: str
    wrapped_key: str
    v: int = FORMAT_VERSION

    def description(self) -> bytes:
        """The authenticated fields, canonically encoded (associated data of the key wrap)."""
        return orjson.dumps(
            [self.v, self.name, self.content_type, self.size, self.chunk_size, self.created,
             self.owner]
        )  # fmt: skip

    def to_bytes(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_SORT_KEYS)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        try:
            data: dict[str, Any] = orjson.loads(raw)
            envelope = cls(**data)
        except (orjson.JSONDecodeError, TypeError) as exc:
            raise FileIntegrityError("unreadable file envelope") from exc
        if envelope.v != FORMAT_VERSION or envelope.chunk_size <= 0:
            raise FileIntegrityError("unsupported file envelope")
        return envelope


def seal_envelope(
    kek: bytes,
    data_key: bytes,
    *,
    name: str,
    content_type: str,
    size: int,
    chunk_size: int,
    created: float,
    owner: str | None,
) -> Envelope:
    """Wrap ``data_key`` under ``kek``, bound to the file's description."""
    draft = Envelope(name, content_type, size, chunk_size, created, owner, kek_id(kek), "", "")
    return _wrap(draft, kek, data_key)


def _wrap(envelope: Envelope, kek: bytes, data_key: bytes) -> Envelope:
    nonce = os.urandom(NONCE_BYTES)
    wrapped = AESGCM(kek).encrypt(nonce, data_key, _WRAP_CONTEXT + envelope.description())
    return Envelope(
        **{
            **asdict(envelope),
            "kek_id": kek_id(kek),
            "wrap_nonce": base64.b64encode(nonce).decode(),
            "wrapped_key": base64.b64encode(wrapped).decode(),
        }
    )


def open_envelope(kek: bytes, envelope: Envelope) -> bytes:
    """The data key, or ``FileIntegrityError`` if the envelope was altered or the KEK is wrong."""
    try:
        nonce = base64.b64decode(envelope.wrap_nonce, validate=True)
        wrapped = base64.b64decode(envelope.wrapped_key, validate=True)
        key = AESGCM(kek).decrypt(nonce, wrapped, _WRAP_CONTEXT + envelope.description())
    except (InvalidTag, binascii.Error, ValueError) as exc:
        raise FileIntegrityError("file key could not be unwrapped") from exc
    if len(key) != KEY_BYTES:
        raise FileIntegrityError("file key has the wrong length")
    return key


def rewrap_envelope(envelope: Envelope, old_kek: bytes, new_kek: bytes) -> Envelope:
    """The same data key under ``new_kek``; the file body is untouched."""
    return _wrap(envelope, new_kek, open_envelope(old_kek, envelope))


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def _chunk_aad(name: bytes, index: int, final: bool) -> bytes:
    flag = b"\x01" if final else b"\x00"
    return _CHUNK_CONTEXT + name + b"\x00" + index.to_bytes(8, "big") + flag


class StreamEncryptor:
    """Turns plaintext pieces of any size into sealed chunk records.

    The last full chunk is held back until ``finalize`` because only then is it known to be
    the final one (its flag is part of what the tag covers)."""

    def __init__(self, data_key: bytes, name: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self._aead = AESGCM(data_key)
        self._name = name.encode()
        self._chunk = chunk_size
        self._buffer = bytearray()
        self._index = 0
        self._done = False

    def _seal(self, plain: bytes | bytearray, final: bool) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, bytes(plain), _chunk_aad(self._name, self._index, final))
        self._index += 1
        return nonce + sealed

    def update(self, data: bytes) -> list[bytes]:
        if self._done:
            raise RuntimeError("encryptor already finalized")
        self._buffer += data
        out: list[bytes] = []
        while len(self._buffer) > self._chunk:
            out.append(self._seal(self._buffer[: self._chunk], final=False))
            del self._buffer[: self._chunk]
        return out

    def finalize(self) -> bytes:
        self._done = True
        record = self._seal(self._buffer, final=True)
        self._buffer = bytearray()
        return record


class StreamDecryptor:
    """Verifies and opens chunk records; yields plaintext only for authenticated chunks."""

    def __init__(
        self, data_key: bytes, name: str, chunk_size: int, expected_size: int | None = None
    ) -> None:
        self._aead = AESGCM(data_key)
        self._name = name.encode()
        self._record = chunk_size + RECORD_OVERHEAD
        self._buffer = bytearray()
        self._index = 0
        self._plain = 0
        self._expected = expected_size

    def _open(self, record: bytes | bytearray, final: bool) -> bytes:
        if len(record) < RECORD_OVERHEAD:
            raise FileIntegrityError("truncated file")
        nonce, sealed = bytes(record[:NONCE_BYTES]), bytes(record[NONCE_BYTES:])
        try:
            plain = self._aead.decrypt(nonce, sealed, _chunk_aad(self._name, self._index, final))
        except InvalidTag as exc:
            raise FileIntegrityError("file chunk failed authentication") from exc
        self._index += 1
        self._plain += len(plain)
        return plain

    def update(self, data: bytes) -> list[bytes]:
        self._buffer += data
        out: list[bytes] = []
        # Strictly greater: a record that ends exactly at the buffer's end may be the final one.
        while len(self._buffer) > self._record:
            out.append(self._open(self._buffer[: self._record], final=False))
            del self._buffer[: self._record]
        return out

    def finalize(self) -> bytes:
        if not self._buffer:
            raise FileIntegrityError("truncated file")  # every file ends with a final record
        plain = self._open(self._buffer, final=True)
        self._buffer = bytearray()
        if self._expected is not None and self._plain != self._expected:
            raise FileIntegrityError("file size does not match its envelope")
        return plain


async def encrypt_stream(
    source: AsyncIterable[bytes], encryptor: StreamEncryptor
) -> AsyncGenerator[bytes, None]:
    """Sealed records for ``source``, ending with the final record."""
    async for piece in source:
        for record in encryptor.update(piece):
            yield record
    yield encryptor.finalize()


async def decrypt_stream(
    source: AsyncIterable[bytes], decryptor: StreamDecryptor
) -> AsyncGenerator[bytes, None]:
    """Verified plaintext for ``source``; raises ``FileIntegrityError`` at the first bad chunk."""
    async for piece in source:
        for plain in decryptor.update(piece):
            if plain:
                yield plain
    last = decryptor.finalize()
    if last:
        yield last
