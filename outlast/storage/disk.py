"""Free space where a store writes: a SQLite database on a full disk still answers reads (so
`check` passes) while every write fails, so `/ready` asks this too."""

from __future__ import annotations

import os
import shutil

from outlast.storage.base import Store

MIB = 1024 * 1024


def disk_problem(store: Store, min_free_mb: int) -> str | None:
    """Why the disk holding the store's database is too full to be ready (less than `min_free_mb`
    MiB free), or None. Only SQLite files are checked: PostgreSQL's disk is its server's."""
    from outlast.storage.sqlite import SqliteStore

    if not min_free_mb or not isinstance(store, SqliteStore) or store.path == ":memory:":
        return None
    directory = os.path.dirname(os.path.abspath(store.path))
    try:
        free = shutil.disk_usage(directory).free
    except OSError as exc:
        return f"cannot read the free space of {directory}: {exc}"
    if free >= min_free_mb * MIB:
        return None
    return (
        f"the disk holding {store.path} is full: {free / MIB:.1f} MiB free, less than"
        f" min_free_disk_mb ({min_free_mb} MiB); writes would fail"
    )
