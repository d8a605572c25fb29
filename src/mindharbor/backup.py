"""``mindharbor backup`` / ``restore`` for the embedded default (SQLite + local files).

A backup is one ``.tar.gz`` holding everything a restore needs, taken while the server runs:

- ``mindharbor.db``: SQLite's online backup of the database (one consistent moment);
- ``files/``: the encrypted file store, copied *after* the database so that every file the
  copied database refers to is there (files are written before the row naming them);
- the generated keys found in the data directory (``master.key``, ``files.key``); keys given
  by environment variables are not in it and must be kept with it;
- ``manifest.json``: format, version, time, and a SHA-256 of every member, checked by restore.

The archive holds keys and PHI: it is written mode 0600 and belongs in encrypted storage.
``restore`` refuses a data directory that already holds a database unless ``--force``; the
server must be stopped while it runs. PostgreSQL deployments use ``pg_dump`` (see README).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mindharbor import __version__
from mindharbor.settings import Settings
from mindharbor.storage import sqlite_copy

FORMAT = 1
DATABASE = "mindharbor.db"
KEYS = ("master.key", "files.key")


class BackupError(Exception):
    """A backup or restore that cannot proceed; the message says why (one line)."""


def _database_path(settings: Settings) -> Path:
    if settings.dialect != "sqlite":
        raise BackupError(
            "backup covers the embedded SQLite database; for PostgreSQL use pg_dump plus a "
            "copy of the file store and the keys (README: Backup and restore)"
        )
    return Path(settings.sqlalchemy_url.split(":///", 1)[1])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def backup(settings: Settings, archive: Path, advance: Callable[[int], None]) -> dict[str, Any]:
    """Write ``archive``; returns its manifest."""
    database = _database_path(settings)
    if not database.exists():
        raise BackupError(f"no database at {database}: nothing to back up")
    files_dir = settings.data_dir / "files"
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=archive.parent, prefix=".backup-") as work:
        snapshot = Path(work) / DATABASE
        sqlite_copy.online_copy(database, snapshot)
        members: list[tuple[str, Path]] = [(DATABASE, snapshot)]
        if settings.files_backend == "local" and files_dir.exists():
            for path in sorted(files_dir.rglob("*")):
                if path.is_file() and not path.name.endswith(".tmp"):
                    members.append((f"files/{path.relative_to(files_dir).as_posix()}", path))
        members += [
            (key, settings.data_dir / key) for key in KEYS if (settings.data_dir / key).exists()
        ]
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "mindharborVersion": __version__,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "filesBackend": settings.files_backend,
            "keys": [name for name, _ in members if name in KEYS],
            "sha256": {},
        }
        partial = archive.with_name(archive.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for name, path in members:
                manifest["sha256"][name] = _sha256(path)
                tar.add(path, arcname=name, recursive=False)
                advance(1)
            data = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size, info.mode = len(data), 0o600
            tar.addfile(info, io.BytesIO(data))
        partial.replace(archive)
    return manifest


def restore(
    settings: Settings, archive: Path, force: bool, advance: Callable[[int], None]
) -> dict[str, Any]:
    """Put ``archive`` in place under the data directory; returns its manifest."""
    database = _database_path(settings)
    if not archive.is_file():
        raise BackupError(f"no backup at {archive}")
    if database.exists() and not force:
        raise BackupError(
            f"{database} exists: stop the server and pass --force to replace it with the backup"
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.data_dir, prefix=".restore-") as work:
        staging = Path(work)
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(staging, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise BackupError(f"{archive} is not a readable backup ({type(exc).__name__})") from exc
        manifest_path = staging / "manifest.json"
        if not manifest_path.exists():
            raise BackupError(f"{archive} has no manifest.json: not a MindHarbor backup")
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        if manifest.get("format") != FORMAT:
            raise BackupError(f"backup format {manifest.get('format')} is not supported")
        for name, digest in manifest["sha256"].items():
            member = staging / name
            if not member.is_file() or _sha256(member) != digest:
                raise BackupError(f"{name} in the backup is missing or altered (checksum)")
            advance(1)
        problems = sqlite_copy.integrity_problems(staging / DATABASE)
        if problems:
            raise BackupError(f"the backed-up database fails its integrity check: {problems[0]}")
        sqlite_copy.remove_database(database)
        database.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(staging / DATABASE, database)
        files_dir = settings.data_dir / "files"
        if (staging / "files").exists():
            shutil.rmtree(files_dir, ignore_errors=True)
            shutil.move(staging / "files", files_dir)
        for key in manifest.get("keys", []):
            target = settings.data_dir / key
            shutil.move(staging / key, target)
            target.chmod(0o600)
    return manifest
