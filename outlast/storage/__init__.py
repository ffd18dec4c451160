"""Persistence: the Store protocol and its backends (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

from outlast.storage.base import Store


def open_store(url: str) -> Store:
    """A store for a URL: `memory://`, `sqlite:///path.db`, or `postgresql://...`."""
    if url.startswith("memory:"):
        from outlast.storage.memory import MemoryStore

        return MemoryStore()
    if url.startswith("sqlite:"):
        from outlast.storage.sqlite import SqliteStore

        return SqliteStore(url.removeprefix("sqlite://").removeprefix("/") if url.startswith("sqlite:////")
                           else url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql:", "postgres:")):
        from outlast.storage.postgres import PostgresStore  # type: ignore[import-not-found,unused-ignore]

        return PostgresStore(url)  # type: ignore[no-any-return,unused-ignore]
    raise ValueError(f"database_url: unsupported scheme in {url!r} (use memory://, sqlite:///path, postgresql://)")
