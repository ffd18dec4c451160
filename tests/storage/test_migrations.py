"""Migrations produce the same documented schema on every SQL backend."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from outlast.storage.sqlite import SqliteStore
from tests.conftest import PG_URL

TABLES = {
    "apps",
    "chores",
    "events",
    "event_values",
    "event_effects",
    "dedupe",
    "functions",
    "gathering",
    "gcra",
    "messages",
    "lookback_fields",
    "held_signals",
    "meta",
    "paused_functions",
    "queue",
    "reruns",
    "runs",
    "run_logs",
    "schema_migrations",
    "signal_waits",
    "step_failures",
    "steps",
    "wait_checks",
    "wait_fields",
    "watched_runs",
    "waits",
    "workers",
}


async def sqlite_columns(tmp_path: Path) -> dict[str, set[str]]:
    store = SqliteStore(str(tmp_path / "schema.db"))
    await store.open()
    await store.close()
    with sqlite3.connect(tmp_path / "schema.db") as conn:
        listed = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        tables = [r[0] for r in listed]
        return {t: {r[1] for r in conn.execute(f"PRAGMA table_info({t})")} for t in tables}


async def test_sqlite_has_the_documented_tables(tmp_path: Path) -> None:
    columns = await sqlite_columns(tmp_path)
    assert set(columns) == TABLES
    assert {"lease_token", "due_at", "ck1", "ck2"} <= columns["queue"]
    assert {"last_seen_at", "provisional"} <= columns["functions"]


async def test_opening_twice_applies_each_migration_once(tmp_path: Path) -> None:
    for _ in range(2):
        store = SqliteStore(str(tmp_path / "twice.db"))
        await store.open()
        await store.close()
    with sqlite3.connect(tmp_path / "twice.db") as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == sorted(set(versions))


@pytest.mark.skipif(not PG_URL, reason="OUTLAST_TEST_POSTGRES_URL is not set")
async def test_postgres_schema_matches_sqlite(tmp_path: Path) -> None:
    import psycopg

    from outlast.storage.postgres import PostgresStore
    from tests.conftest import pg_database

    url = pg_database(migrated=False)
    store = PostgresStore(url)
    await store.open()
    await store.close()
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
        ).fetchall()
    pg: dict[str, set[str]] = {}
    for table, column in rows:
        pg.setdefault(table, set()).add(column)
    assert pg == await sqlite_columns(tmp_path)


async def test_the_memory_template_has_the_schema_of_a_migrated_file(tmp_path: Path) -> None:
    from outlast.storage.memory import schema_template
    from outlast.storage.sql.migrations import MIGRATIONS

    await sqlite_columns(tmp_path)  # migrates tmp_path/schema.db
    memory = sqlite3.connect(":memory:")
    memory.deserialize(schema_template())
    with sqlite3.connect(tmp_path / "schema.db") as file_conn:
        assert sorted(memory.execute("SELECT type, name, sql FROM sqlite_master")) == sorted(
            file_conn.execute("SELECT type, name, sql FROM sqlite_master")
        )
    versions = [r[0] for r in memory.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == [v for v, _ in MIGRATIONS]
