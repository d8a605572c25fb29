"""SQLite's online backup: a consistent copy of a live database file (``mindharbor backup``).

The copy is taken through SQLite's backup API while the server keeps serving: readers and the
writer go on, and the copy is the database as of one moment (WAL content included). The check
runs ``PRAGMA integrity_check`` on a copy before ``restore`` puts it in place.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

SIDE_FILES = ("-wal", "-shm", "-journal")


def online_copy(source: Path, target: Path, pages_per_step: int = 1024) -> None:
    """Copy the live database ``source`` to a new file ``target``."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst, pages=pages_per_step)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            dst.close()
    finally:
        src.close()


def integrity_problems(path: Path) -> list[str]:
    """``PRAGMA integrity_check``'s complaints (none: the file is a sound database)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    finally:
        conn.close()
    return [str(row[0]) for row in rows if row[0] != "ok"]


def remove_database(path: Path) -> None:
    """The database file and its side files (WAL, shared memory, journal)."""
    for suffix in ("", *SIDE_FILES):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
