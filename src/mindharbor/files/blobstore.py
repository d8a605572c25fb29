"""Where encrypted file bytes live: a local directory or S3-compatible object storage.

Only ciphertext and sealed envelopes ever reach a ``BlobStore`` (``service.py`` encrypts before
writing), so neither the disk nor the bucket operator sees PHI. Both backends stream: a body is
written from an async iterator of pieces and read back as one, so memory stays bounded by one
piece (local) or one multipart part (S3) whatever the file's size.

Keys are flat names checked against a conservative pattern before use, so a key can never
climb out of the storage root or address another bucket prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

READ_PIECE = 256 * 1024
S3_PART_SIZE = 8 * 1024 * 1024  # S3 requires >= 5 MiB for every part but the last
_KEY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9@. ~_-]{0,250}$")


class BlobNotFound(Exception):
    """No blob under that key."""


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    modified: float  # seconds since the epoch


def check_key(key: str) -> str:
    if not _KEY_RE.match(key) or key in (".", ".."):
        raise ValueError("invalid blob key")
    return key


class BlobStore(Protocol):
    """Storage for opaque (already encrypted) blobs."""

    async def put(self, key: str, pieces: AsyncIterable[bytes]) -> int:
        """Store the concatenation of ``pieces`` under ``key``, all or nothing; the byte count.

        If ``pieces`` raises, nothing is left under ``key`` (an existing blob is kept)."""
        ...

    def get(self, key: str) -> AsyncIterator[bytes]:
        """The blob's bytes in pieces; raises ``BlobNotFound`` on first iteration if missing."""
        ...

    async def read(self, key: str) -> bytes:
        """A small blob, whole (envelopes)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; no error if it is already gone."""
        ...

    def list(self) -> AsyncIterator[BlobInfo]:
        """Every stored blob (order unspecified)."""
        ...

    async def aclose(self) -> None: ...


async def one_piece(data: bytes) -> AsyncIterator[bytes]:
    yield data


class LocalBlobStore:
    """Blobs as files under ``root`` (``data_dir/files``).

    Writes go to a temporary file in ``root/.tmp`` (same file system), are fsynced, renamed
    over the final name (atomic on POSIX) and the directory is fsynced, so a crash leaves
    either the old blob or the new one, never a torn file that would fail authentication."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / ".tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            root.chmod(0o700)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, pieces: AsyncIterable[bytes]) -> int:
        final = self._path(key)
        tmp = self._tmp / f"{secrets.token_hex(8)}.part"
        handle = await asyncio.to_thread(_open_exclusive, tmp)
        written = 0
        try:
            async for piece in pieces:
                await asyncio.to_thread(handle.write, piece)
                written += len(piece)
            await asyncio.to_thread(_sync_and_close, handle)
            await asyncio.to_thread(os.replace, tmp, final)
            await asyncio.to_thread(_fsync_dir, self.root)
        except BaseException:
            handle.close()
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return written

    async def get(self, key: str) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc
        try:
            while piece := await asyncio.to_thread(handle.read, READ_PIECE):
                yield piece
        finally:
            handle.close()

    async def read(self, key: str) -> bytes:
        try:
            return await asyncio.to_thread(self._path(key).read_bytes)
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)

    async def list(self) -> AsyncIterator[BlobInfo]:
        entries = await asyncio.to_thread(_scan, self.root)
        for info in entries:
            yield info

    async def aclose(self) -> None:
        return None


def _open_exclusive(path: Path) -> Any:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "wb")


def _sync_and_close(handle: Any) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _scan(root: Path) -> list[BlobInfo]:
    found: list[BlobInfo] = []
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.is_file() and _KEY_RE.match(entry.name):
                stat = entry.stat()
                found.append(BlobInfo(entry.name, stat.st_size, stat.st_mtime))
    return found


@dataclass(frozen=True)
class S3Config:
    bucket: str
    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    prefix: str = "files/"


class S3BlobStore:
    """Blobs as objects in an S3-compatible bucket (AWS S3, MinIO, Ceph, moto...).

    Bodies stream through a multipart upload in ``part_size`` parts (only one part in memory);
    a failed upload is aborted so no partial object is ever visible. boto3 is synchronous, so
    each call runs in a worker thread and the event loop is never blocked."""

    def __init__(self, config: S3Config, part_size: int = S3_PART_SIZE) -> None:
        import boto3
        from botocore.config import Config

        self.config = config
        self.part_size = part_size
        self._client = boto3.client(
            "s3",
            endpoint_url=config.endpoint_url,
            region_name=config.region,
            aws_access_key_id=config.access_key_id,
            aws_secret_access_key=config.secret_access_key,
            config=Config(
                signature_version="s3v4",
                retries={"max_attempts": 3, "mode": "standard"},
                s3={"addressing_style": "path"},
            ),
        )

    def _key(self, key: str) -> str:
        return self.config.prefix + check_key(key)

    async def ensure_bucket(self) -> None:
        """Create the bucket if missing (demo and tests; production buckets are provisioned)."""
        from botocore.exceptions import ClientError

        try:
            await asyncio.to_thread(self._client.head_bucket, Bucket=self.config.bucket)
        except ClientError:
            await asyncio.to_thread(self._client.create_bucket, Bucket=self.config.bucket)

    async def put(self, key: str, pieces: AsyncIterable[bytes]) -> int:
        name = self._key(key)
        bucket = self.config.bucket
        buffer = bytearray()
        written = 0
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            async for piece in pieces:
                buffer += piece
                written += len(piece)
                while len(buffer) >= self.part_size:
                    if upload_id is None:
                        started = await asyncio.to_thread(
                            self._client.create_multipart_upload, Bucket=bucket, Key=name
                        )
                        upload_id = str(started["UploadId"])
                    part = bytes(buffer[: self.part_size])
                    del buffer[: self.part_size]
                    parts.append(await self._upload_part(name, upload_id, len(parts) + 1, part))
                    del part
            if upload_id is None:
                await asyncio.to_thread(
                    self._client.put_object, Bucket=bucket, Key=name, Body=bytes(buffer)
                )
                return written
            if buffer or not parts:
                parts.append(
                    await self._upload_part(name, upload_id, len(parts) + 1, bytes(buffer))
                )
            await asyncio.to_thread(
                self._client.complete_multipart_upload,
                Bucket=bucket,
                Key=name,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
            return written
        except BaseException:
            if upload_id is not None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(
                        self._client.abort_multipart_upload,
                        Bucket=bucket,
                        Key=name,
                        UploadId=upload_id,
                    )
            raise

    async def _upload_part(
        self, name: str, upload_id: str, number: int, body: bytes
    ) -> dict[str, Any]:
        result = await asyncio.to_thread(
            self._client.upload_part,
            Bucket=self.config.bucket,
            Key=name,
            UploadId=upload_id,
            PartNumber=number,
            Body=body,
        )
        return {"PartNumber": number, "ETag": result["ETag"]}

    async def _get_object(self, key: str) -> Any:
        from botocore.exceptions import ClientError

        try:
            return await asyncio.to_thread(
                self._client.get_object, Bucket=self.config.bucket, Key=self._key(key)
            )
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "404", "NotFound"):
                raise BlobNotFound(key) from exc
            raise

    async def get(self, key: str) -> AsyncIterator[bytes]:
        body = (await self._get_object(key))["Body"]
        try:
            while piece := await asyncio.to_thread(body.read, READ_PIECE):
                yield piece
        finally:
            body.close()

    async def read(self, key: str) -> bytes:
        body = (await self._get_object(key))["Body"]
        try:
            return bytes(await asyncio.to_thread(body.read))
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(
            self._client.delete_object, Bucket=self.config.bucket, Key=self._key(key)
        )

    async def list(self) -> AsyncIterator[BlobInfo]:
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.config.bucket, Prefix=self.config.prefix)
        iterator = iter(pages)
        while True:
            page = await asyncio.to_thread(next, iterator, None)
            if page is None:
                return
            for item in page.get("Contents", []):
                key = str(item["Key"])[len(self.config.prefix) :]
                if _KEY_RE.match(key):
                    yield BlobInfo(key, int(item["Size"]), item["LastModified"].timestamp())

    async def aclose(self) -> None:
        await asyncio.to_thread(self._client.close)
