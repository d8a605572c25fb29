"""Encrypted attachments behind signed, expiring URLs (issue 6).

``crypto`` seals bodies (AES-256-GCM, a data key per file wrapped by the files KEK), ``blobstore``
keeps the ciphertext (local directory or S3), ``signing`` mints and checks expiring URLs and
``service`` ties them together with the upload checks, audit, rotation and garbage collection.
Routes never touch keys: they call ``FileService``.
"""

from __future__ import annotations

from mindharbor.files.blobstore import BlobStore, LocalBlobStore, S3BlobStore, S3Config
from mindharbor.files.crypto import FileIntegrityError
from mindharbor.files.service import FileAccessDenied, FileService, rotate_files_key
from mindharbor.files.signing import UrlSigner

__all__ = [
    "BlobStore",
    "FileAccessDenied",
    "FileIntegrityError",
    "FileService",
    "LocalBlobStore",
    "S3BlobStore",
    "S3Config",
    "UrlSigner",
    "rotate_files_key",
]
