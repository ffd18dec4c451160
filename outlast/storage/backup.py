"""Online backups of a SQLite database through SQLite's backup API.

The copy is one consistent snapshot: it is taken in a single step under a read transaction, which
in WAL mode never blocks the writers of other processes (workers go on while it runs). It is
written beside the destination and renamed into place once complete, so a failed or interrupted
backup never leaves a partial file under the name asked for.

PostgreSQL is backed up with its own tools (`pg_dump`, or base backups and WAL archiving).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from outlast.errors import StoreError

BUSY_TIMEOUT_MS = 30_000


def backup_sqlite(source: str, destination: str) -> int:
    """Copy the SQLite database `source` to the new file `destination`; return its size in bytes."""
    src_path, dest_path = Path(source), Path(destination)
    if not src_path.is_file():
        raise StoreError(f"backup: no SQLite database at {source!r}")
    if dest_path.exists():
        raise StoreError(f"backup: {destination!r} already exists; give a new path")
    if not dest_path.parent.is_dir():
        raise StoreError(f"backup: no directory {str(dest_path.parent)!r} to write {dest_path.name!r} in")
    partial = dest_path.with_name(dest_path.name + ".partial")
    try:
        src = sqlite3.connect(src_path.absolute().as_uri() + "?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst)
                problem = dst.execute("PRAGMA quick_check").fetchone()[0]
            finally:
                dst.close()
        finally:
            src.close()
        if problem != "ok":
            raise StoreError(f"backup: the copy of {source!r} fails SQLite's quick_check: {problem}")
        os.replace(partial, dest_path)
    except sqlite3.Error as exc:
        raise StoreError(f"backup of {source!r} to {destination!r} failed: {exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return dest_path.stat().st_size
