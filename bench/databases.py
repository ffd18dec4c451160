"""Databases for benchmarks: migrate one, and drop a PostgreSQL one when done."""

from __future__ import annotations

from outlast.storage import open_store


async def migrate(url: str) -> None:
    """Create the schema (opening a store migrates it)."""
    store = open_store(url)
    await store.open()
    await store.close()


def drop_postgres(base_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
