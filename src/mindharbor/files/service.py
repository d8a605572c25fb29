"""Encrypted attachments: upload, signed download, delete, key rotation and garbage collection.

Policy decisions, each enforced here:

* **What may be stored.** Only types on the allow-list (PDF, PNG, JPEG, plain text by default),
  decided by sniffing the bytes, not by trusting ``Content-Type``. A declared type that
  disagrees with the bytes is refused (130), and so is a file name whose extension disagrees
  (122): the name is what a browser uses when the download is saved, so ``invoice.exe`` that is
  "really" a PDF must not be produced. Oversize bodies are refused with 413 while streaming.
* **Unguessable names.** The stored name is 128 random bits + ``_`` + the client's name, as
  Parse's unique prefix, so names cannot be enumerated.
* **Who may download.** Only a holder of an unexpired URL this server signed (minted when an
  object referencing the file was read by someone allowed to read it, or for the uploader),
  or the master key. A URL minted for a session also needs that session: the download must
  present its token and the session must still be valid, so a shared link fails for anyone
  else (``bind_urls_to_session``; off only for deployments whose clients download files
  without headers, such as the Parse SDKs' ``getData``). Every refusal is the same 403,
  whether or not the file exists, and a forged signature never touches storage, so timing
  does not reveal existence either.
* **Audit.** Every download writes an audit entry (actor = the user the URL was minted for)
  *before* the first byte is sent; if the audit cannot be written, nothing is served. The entry
  names the file by its random id, not by the client's file name, which may itself be PHI.
* **Lifecycle.** Files referenced by no object are removed by ``purgeOrphanFiles`` once older
  than the grace period; when the retention purge deletes a message, its attachments become
  unreferenced and follow it.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import os
import re
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mindharbor.errors import FileSaveError, InvalidFileName, OperationForbidden, RequestTooLarge
from mindharbor.files.blobstore import (
    BlobNotFound,
    BlobStore,
    LocalBlobStore,
    S3BlobStore,
    S3Config,
    one_piece,
)
from mindharbor.files.crypto import (
    DEFAULT_CHUNK_SIZE,
    Envelope,
    FileIntegrityError,
    StreamDecryptor,
    StreamEncryptor,
    decrypt_stream,
    encrypt_stream,
    kek_id,
    new_data_key,
    new_kek_text,
    open_envelope,
    parse_kek,
    rewrap_envelope,
    seal_envelope,
)
from mindharbor.files.signing import UrlSigner, derive_signing_key
from mindharbor.security.auth import Auth
from mindharbor.security.profile import may_attach_public_upload
from mindharbor.storage.file_scan import values_that_may_hold_files

if TYPE_CHECKING:
    from mindharbor.hooks import Hooks, JobRequest
    from mindharbor.settings import Settings
    from mindharbor.storage.db import Store
    from mindharbor.storage.repository import Repository

log = logging.getLogger(__name__)

SNIFF_BYTES = 8 * 1024
BODY_SUFFIX = ".body"
ENVELOPE_SUFFIX = ".envelope"
_NAME_RE = re.compile(r"^[_a-zA-Z0-9][a-zA-Z0-9@. ~_-]*$")  # Parse Server's rule
MAX_NAME_CHARS = 128
_STORED_RE = re.compile(r"^([0-9a-f]{32})_(.+)$")

_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "application/x-pdf": "application/pdf",
}
_EXTENSIONS = {
    "application/pdf": {"pdf"},
    "image/png": {"png"},
    "image/jpeg": {"jpg", "jpeg", "jpe", "jfif"},
    "text/plain": {"txt", "text", "log", "csv", "md"},
}
_UNDECLARED = {"", "application/octet-stream", "binary/octet-stream"}


_NOT_YOURS = "A file can only be attached by the user who uploaded it."


class FileAccessDenied(Exception):
    """A download that must be answered with the one generic 403."""


def normalize_type(value: str | None) -> str:
    """``Text/Plain; charset=utf-8`` → ``text/plain``; known aliases folded."""
    base = (value or "").split(";", 1)[0].strip().lower()
    return _ALIASES.get(base, base)


def sniff(head: bytes, complete: bool) -> str | None:
    """The allow-listable type the leading bytes show, or None.

    ``complete`` says ``head`` is the whole file (so a multi-byte UTF-8 character cut at the
    end of the sample is an error rather than an artefact of sampling)."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if _looks_like_text(head, complete):
        return "text/plain"
    return None


def _looks_like_text(head: bytes, complete: bool) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=complete)
    except UnicodeDecodeError:
        return False
    controls = sum(1 for b in head if b < 0x20 and b not in (0x09, 0x0A, 0x0C, 0x0D))
    return controls * 100 <= len(head)  # a stray control byte or two, not binary


def check_file_name(name: str | None) -> str:
    """A client-chosen file name, validated as Parse Server does (122 otherwise)."""
    if not name:
        raise InvalidFileName("Filename not provided.")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidFileName("Filename too long.")
    if not _NAME_RE.match(name):
        raise InvalidFileName("Filename contains invalid characters.")
    return name


def file_id(stored_name: str) -> str | None:
    """The random id at the front of a stored name (what audit entries record)."""
    match = _STORED_RE.match(stored_name)
    return match.group(1) if match else None


def original_name(stored_name: str) -> str:
    match = _STORED_RE.match(stored_name)
    return match.group(2) if match else stored_name


def _extension(name: str) -> str | None:
    stem, dot, ext = name.rpartition(".")
    return ext.lower() if dot and stem else None


@dataclass(frozen=True)
class StoredFile:
    name: str
    content_type: str
    size: int


@dataclass
class Download:
    """An authorised, opened download: headers known, body verified chunk by chunk."""

    name: str
    content_type: str
    size: int
    body: AsyncIterator[bytes]

    @property
    def filename(self) -> str:
        return original_name(self.name)


@dataclass(frozen=True)
class FilePolicy:
    max_bytes: int
    allowed_types: frozenset[str]
    gc_grace_seconds: float
    bind_urls_to_session: bool = True


class FileService:
    """Encrypted attachments behind signed, expiring URLs.

    Parameters:
        blobs: where ciphertext and envelopes are kept.
        kek: the 32-byte key-encryption key (``MINDHARBOR_FILES_KEY``).
        signer: mints and checks file URLs.
        policy: size limit, allowed types, garbage-collection grace.
        store: the database store (for download audit entries and orphan scans).
    """

    def __init__(
        self,
        blobs: BlobStore,
        kek: bytes,
        signer: UrlSigner,
        policy: FilePolicy,
        store: Store | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self.blobs = blobs
        self._kek = kek
        self.signer = signer
        self.policy = policy
        self.store = store
        self.chunk_size = chunk_size

    @classmethod
    def from_settings(cls, settings: Settings, store: Store | None = None) -> FileService:
        kek = parse_kek(resolve_files_key(settings))
        blobs: BlobStore
        if settings.files_backend == "s3":
            if not settings.s3_bucket:
                raise SystemExit(
                    "MINDHARBOR_S3_BUCKET is required when MINDHARBOR_FILES_BACKEND=s3"
                )
            blobs = S3BlobStore(
                S3Config(
                    bucket=settings.s3_bucket,
                    endpoint_url=settings.s3_endpoint_url,
                    region=settings.s3_region,
                    access_key_id=settings.s3_access_key_id,
                    secret_access_key=settings.s3_secret_access_key,
                    prefix=settings.s3_prefix,
                )
            )
        elif settings.files_backend == "local":
            blobs = LocalBlobStore(settings.data_dir / "files")
        else:
            raise SystemExit("MINDHARBOR_FILES_BACKEND must be 'local' or 's3'")
        base = settings.public_url or f"http://{settings.host}:{settings.port}"
        signer = UrlSigner(
            derive_signing_key(kek),
            settings.app_id,
            base.rstrip("/") + settings.mount_path,
            settings.file_url_ttl_seconds,
        )
        allowed = frozenset(
            normalize_type(t) for t in settings.allowed_file_types.split(",") if t.strip()
        )
        policy = FilePolicy(
            settings.max_file_bytes,
            allowed,
            settings.file_gc_grace_seconds,
            settings.file_urls_bound_to_session,
        )
        return cls(blobs, kek, signer, policy, store)

    async def aclose(self) -> None:
        await self.blobs.aclose()

    # -- URLs -----------------------------------------------------------------------------------
    def sign_refs(self, value: Any, auth: Auth) -> Any:
        """``value`` with signed URLs for every File in it, bound to the reader's session; see
        ``UrlSigner.sign_refs``."""
        session = auth.session_id if self.policy.bind_urls_to_session else None
        return self.signer.sign_refs(value, auth.user_id, session)

    def url_for(self, name: str, auth: Auth) -> str:
        """A signed URL of ``name`` for this caller (bound to its session, as ``sign_refs``)."""
        session = auth.session_id if self.policy.bind_urls_to_session else None
        return self.signer.url(name, auth.user_id, session=session)

    async def check_refs(
        self, auth: Auth, body: dict[str, Any], existing: dict[str, Any] | None
    ) -> None:
        """Refuse a write that makes an object reference a file the caller did not upload.

        Without this, anyone who once learned a file's name (a former care-team member, say)
        could put it in an object of their own and read a freshly signed URL back. A name the
        object already references (an update of other fields) stays allowed. A missing file
        and someone else's file get the same refusal, so existence is not revealed."""
        wanted: set[str] = set()
        _collect_names(body, wanted)
        if not wanted:
            return
        if existing is not None:
            wanted -= _names_in(existing)
        for name in sorted(wanted):
            try:
                if not _NAME_RE.match(name) or len(name) > 200:
                    raise BlobNotFound(name)
                envelope = Envelope.from_bytes(await self.blobs.read(name + ENVELOPE_SUFFIX))
            except (BlobNotFound, FileIntegrityError) as exc:
                raise OperationForbidden(_NOT_YOURS) from exc
            store = self.store
            if envelope.owner is None and store and may_attach_public_upload(store.settings, auth):
                continue  # a public upload, attached by a caller without a session
            if envelope.owner is None or envelope.owner != auth.user_id:
                raise OperationForbidden(_NOT_YOURS)

    # -- upload ---------------------------------------------------------------------------------
    async def upload(
        self,
        name: str | None,
        declared_type: str | None,
        source: AsyncIterable[bytes],
        *,
        owner: str | None,
        declared_length: int | None = None,
    ) -> StoredFile:
        """Check, encrypt and store one file; the stored (unique) name and its type.

        ``source`` is consumed as it arrives: nothing but the sniffing sample and one chunk is
        buffered, so the size limit, not the memory, bounds what can be uploaded."""
        name = check_file_name(name)
        limit = self.policy.max_bytes
        if declared_length is not None and declared_length > limit:
            raise RequestTooLarge(f"File too large (limit {limit} bytes).")
        pieces = aiter(source)
        head = bytearray()
        complete = False
        while len(head) < SNIFF_BYTES:
            try:
                head += await anext(pieces)
            except StopAsyncIteration:
                complete = True
                break
        if len(head) > limit:
            raise RequestTooLarge(f"File too large (limit {limit} bytes).")
        if not head:
            raise FileSaveError("Invalid file upload: the file is empty.")
        content_type = self._check_type(name, declared_type, bytes(head[:SNIFF_BYTES]), complete)

        stored = f"{secrets.token_hex(16)}_{name}"
        data_key = new_data_key()
        size = 0

        async def plaintext() -> AsyncIterator[bytes]:
            nonlocal size
            size = len(head)
            yield bytes(head)
            head.clear()
            if complete:
                return
            async for piece in pieces:
                size += len(piece)
                if size > limit:
                    raise RequestTooLarge(f"File too large (limit {limit} bytes).")
                yield piece

        encryptor = StreamEncryptor(data_key, stored, self.chunk_size)
        await self.blobs.put(stored + BODY_SUFFIX, encrypt_stream(plaintext(), encryptor))
        envelope = seal_envelope(
            self._kek,
            data_key,
            name=stored,
            content_type=content_type,
            size=size,
            chunk_size=self.chunk_size,
            created=time.time(),
            owner=owner,
        )
        try:
            # The envelope is written last: it is the commit point of an upload.
            await self.blobs.put(stored + ENVELOPE_SUFFIX, one_piece(envelope.to_bytes()))
        except BaseException:
            with contextlib.suppress(Exception):
                await self.blobs.delete(stored + BODY_SUFFIX)
            raise
        return StoredFile(stored, content_type, size)

    async def store_generated(
        self, name: str, content_type: str, pieces: AsyncIterable[bytes], *, owner: str | None
    ) -> StoredFile:
        """Encrypt and store a file the server produced itself (a bulk-export output).

        No sniffing or allow-list: the content is the server's own, not a client's upload. It is
        referenced by no object, so ``purgeOrphanFiles`` removes it once older than the grace
        period: that is the export's lifetime. Downloads use the same signed, audited URLs."""
        stored = f"{secrets.token_hex(16)}_{check_file_name(name)}"
        data_key = new_data_key()
        size = 0

        async def counted() -> AsyncIterator[bytes]:
            nonlocal size
            async for piece in pieces:
                size += len(piece)
                yield piece

        encryptor = StreamEncryptor(data_key, stored, self.chunk_size)
        await self.blobs.put(stored + BODY_SUFFIX, encrypt_stream(counted(), encryptor))
        envelope = seal_envelope(
            self._kek,
            data_key,
            name=stored,
            content_type=content_type,
            size=size,
            chunk_size=self.chunk_size,
            created=time.time(),
            owner=owner,
        )
        await self.blobs.put(stored + ENVELOPE_SUFFIX, one_piece(envelope.to_bytes()))
        return StoredFile(stored, content_type, size)

    async def remove_generated(self, name: str) -> None:
        """Delete a generated file (a cancelled export), envelope first."""
        if _NAME_RE.match(name) and len(name) <= 200:
            await self.blobs.delete(name + ENVELOPE_SUFFIX)
            await self.blobs.delete(name + BODY_SUFFIX)

    def _check_type(self, name: str, declared: str | None, head: bytes, complete: bool) -> str:
        detected = sniff(head, complete)
        if detected is None or detected not in self.policy.allowed_types:
            raise FileSaveError("File type not allowed.")
        wanted = normalize_type(declared)
        if wanted not in _UNDECLARED and wanted != detected:
            raise FileSaveError("File content does not match its declared type.")
        ext = _extension(name)
        if ext is not None and ext not in _EXTENSIONS.get(detected, set()):
            raise InvalidFileName("Filename extension does not match the file's content.")
        return detected

    # -- download -------------------------------------------------------------------------------
    async def open_download(
        self,
        name: str,
        *,
        expires: str | None,
        by: str | None,
        sig: str | None,
        master: bool = False,
        meta: dict[str, Any] | None = None,
        session: str | None = None,
        reader: Auth | None = None,
    ) -> Download:
        """Authorise, audit and open a download; ``FileAccessDenied`` for every refusal.

        The first chunk is decrypted before returning, so a missing or tampered body fails
        here (before any header is sent) in the common case; a chunk that fails later aborts
        the response mid-stream, and no unauthenticated byte is ever released."""
        if not master and not self.signer.verify(name, expires, by, sig, session):
            raise FileAccessDenied()
        if (
            not master
            and session
            and (reader is None or reader.session_id != session or reader.user_id != by)
        ):
            raise FileAccessDenied()  # a session's URL, and this is not that session
        if not _NAME_RE.match(name) or len(name) > 200:
            raise FileAccessDenied()
        try:
            envelope = Envelope.from_bytes(await self.blobs.read(name + ENVELOPE_SUFFIX))
        except BlobNotFound as exc:
            raise FileAccessDenied() from exc
        if envelope.name != name:
            raise FileIntegrityError("envelope belongs to another file")
        data_key = open_envelope(self._kek, envelope)
        decryptor = StreamDecryptor(data_key, name, envelope.chunk_size, envelope.size)
        body = decrypt_stream(self.blobs.get(name + BODY_SUFFIX), decryptor)
        try:
            first = await anext(body)
        except BlobNotFound as exc:
            raise FileAccessDenied() from exc
        except StopAsyncIteration:
            first = b""
        except BaseException:
            await body.aclose()
            raise
        if self.store is not None:
            via = "masterKey" if master else "signedUrl"
            summary = "File downloaded " + ("with the master key" if master else "by signed URL")
            actor = None if master else (by or None)
            await self._audit("file.download", name, actor, summary, {"via": via}, meta or {})
        return Download(name, envelope.content_type, envelope.size, _prepend(first, body))

    async def _audit(
        self,
        action: str,
        name: str,
        actor: str | None,
        summary: str,
        details: dict[str, Any],
        meta: dict[str, Any],
    ) -> None:
        from mindharbor.domain.audit.writer import record

        assert self.store is not None
        async with self.store.unit_of_work(Auth.system()) as repo:
            repo.meta = dict(meta)
            await record(
                repo,
                action,
                entity_type="File",
                entity_id=file_id(name) or "unknown",
                summary=summary,
                metadata=details,
                actor=actor,
            )

    # -- delete ---------------------------------------------------------------------------------
    async def delete(self, name: str, meta: dict[str, Any] | None = None) -> bool:
        """Remove a file (the caller has checked the master key); False if it did not exist."""
        if not _NAME_RE.match(name) or len(name) > 200:
            return False
        existed = True
        try:
            await self.blobs.read(name + ENVELOPE_SUFFIX)
        except BlobNotFound:
            existed = False
        # Envelope first: without it the body is undecryptable noise, even if its delete fails.
        await self.blobs.delete(name + ENVELOPE_SUFFIX)
        await self.blobs.delete(name + BODY_SUFFIX)
        if existed and self.store is not None:
            summary = "File deleted with the master key"
            await self._audit("file.delete", name, None, summary, {"via": "masterKey"}, meta or {})
        return existed

    # -- garbage collection ---------------------------------------------------------------------
    async def collect_garbage(self, repo: Repository, now: float | None = None) -> dict[str, int]:
        """Delete files that no object references and that are older than the grace period.

        The grace period protects uploads not yet attached to an object. Age is the upload
        time, so an old attachment whose message was just purged goes at the next run."""
        cutoff = (time.time() if now is None else now) - self.policy.gc_grace_seconds
        referenced = await referenced_files(repo)
        newest: dict[str, float] = {}
        async for info in self.blobs.list():
            for suffix in (BODY_SUFFIX, ENVELOPE_SUFFIX):
                if info.key.endswith(suffix):
                    stem = info.key[: -len(suffix)]
                    newest[stem] = max(newest.get(stem, 0.0), info.modified)
        removed = 0
        for stem, modified in newest.items():
            if modified <= cutoff and stem not in referenced:
                await self.blobs.delete(stem + ENVELOPE_SUFFIX)
                await self.blobs.delete(stem + BODY_SUFFIX)
                removed += 1
        return {"removed": removed, "kept": len(newest) - removed}

    def register(self, hooks: Hooks) -> None:
        """Install the ``purgeOrphanFiles`` job."""

        @hooks.job("purgeOrphanFiles")
        async def purge_orphan_files(job: JobRequest) -> dict[str, int]:
            return await self.collect_garbage(job.repo)


async def _prepend(first: bytes, rest: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
    try:
        if first:
            yield first
        async for piece in rest:
            yield piece
    finally:
        await rest.aclose()


async def referenced_files(repo: Repository) -> set[str]:
    """Names of every file referenced by any stored object (File fields, or Files nested in
    Array and Object fields). Runs as the server: it must see every row."""
    names: set[str] = set()
    async for value in values_that_may_hold_files(repo):
        _collect_names(value, names)
    return names


def _names_in(value: Any) -> set[str]:
    names: set[str] = set()
    _collect_names(value, names)
    return names


def _collect_names(value: Any, names: set[str]) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("__type") == "File" and isinstance(item.get("name"), str):
                names.add(item["name"])
            else:
                stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


async def rotate_files_key(
    blobs: BlobStore,
    old_kek: bytes,
    new_kek: bytes,
    advance: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Rewrap every file's data key from ``old_kek`` to ``new_kek``; bodies are not touched.

    Idempotent and resumable: envelopes already under the new key are skipped, so an
    interrupted rotation is finished by running it again. An envelope under neither key is
    counted as ``failed`` (and logged), never silently dropped."""
    old_id, new_id = kek_id(old_kek), kek_id(new_kek)
    counts = {"rewrapped": 0, "skipped": 0, "failed": 0}
    keys = [info.key async for info in blobs.list() if info.key.endswith(ENVELOPE_SUFFIX)]
    for key in keys:
        if advance is not None:
            advance(1)
        try:
            envelope = Envelope.from_bytes(await blobs.read(key))
        except (BlobNotFound, FileIntegrityError):
            counts["failed"] += 1
            log.error("rotate-files-key: envelope %s is unreadable", key)
            continue
        if envelope.kek_id == new_id:
            counts["skipped"] += 1
            continue
        if envelope.kek_id != old_id:
            counts["failed"] += 1
            log.error("rotate-files-key: envelope %s is under an unknown key", key)
            continue
        try:
            fresh = rewrap_envelope(envelope, old_kek, new_kek)
        except FileIntegrityError:
            counts["failed"] += 1
            log.error("rotate-files-key: envelope %s failed authentication", key)
            continue
        await blobs.put(key, one_piece(fresh.to_bytes()))  # atomic replace
        counts["rewrapped"] += 1
    return counts


def resolve_files_key(settings: Settings) -> str:
    """The configured KEK text; the embedded demo generates one under ``data_dir`` once.

    Production refuses to start without an explicit key: a generated key living beside the
    encrypted files would protect nothing against someone who copies the data directory."""
    if settings.files_key:
        return settings.files_key
    if settings.production:
        raise SystemExit("MINDHARBOR_FILES_KEY is required when MINDHARBOR_PRODUCTION=true")
    path: Path = settings.data_dir / "files.key"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(new_kek_text())
    for _ in range(50):  # another worker may be between creating and writing the file
        text = path.read_text().strip()
        if text:
            return text
        time.sleep(0.02)
    raise SystemExit(f"{path} is empty: remove it or set MINDHARBOR_FILES_KEY")


async def rotate_configured_key(
    settings: Settings, new_key_text: str, advance: Callable[[int], None] | None = None
) -> dict[str, int]:
    """``mindharbor rotate-files-key``: rewrap everything from the configured key to a new one."""
    old, new = parse_kek(resolve_files_key(settings)), parse_kek(new_key_text)
    files = FileService.from_settings(settings)
    try:
        return await rotate_files_key(files.blobs, old, new, advance)
    finally:
        await files.aclose()
