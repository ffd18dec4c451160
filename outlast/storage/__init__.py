"""Persistence: the `Store` and `Reads` protocols (`base`, the spec) and their backends, one SQL
for all (`sql/`): SQLite files (`sqlite`), SQLite in memory run inline (`memory`, for tests),
PostgreSQL (`postgres`)."""

from __future__ import annotations

from outlast.errors import StoreError
from outlast.storage.base import Backend

SCHEMES = "memory://, sqlite:///path.db, postgresql://user@host/db"


def open_store(url: str, *, postgres_pool_size: int = 4) -> Backend:
    """A store for a URL: `memory://` (SQLite in memory, inline), `sqlite:///path.db`, or
    `postgresql://...` (with `postgres_pool_size` pooled connections). `sqlite:///:memory:` is
    `memory://`."""
    if url.startswith("memory:") or url == "sqlite:///:memory:":
        from outlast.storage.memory import MemoryStore

        return MemoryStore()
    if url.startswith("sqlite:"):
        from outlast.storage.sqlite import SqliteStore

        return SqliteStore(sqlite_path(url))
    if url.startswith(("postgresql:", "postgres:")):
        try:
            from outlast.storage.postgres import PostgresStore
        except ImportError:
            raise StoreError("PostgreSQL needs the postgres extra: pip install 'outlast[postgres]'") from None
        return PostgresStore(url, pool_size=postgres_pool_size)
    raise StoreError(f"database_url: unsupported scheme in {url!r} (use {SCHEMES})")


def sqlite_path(url: str) -> str:
    """The file of a `sqlite:///relative.db` or `sqlite:////absolute.db` URL."""
    return (
        url.removeprefix("sqlite://").removeprefix("/")
        if url.startswith("sqlite:////")
        else url.removeprefix("sqlite:///")
    )
