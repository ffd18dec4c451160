"""A SQLite store whose file another process is writing waits for the write lock in short pauses
of its own (`SqliteSession._take_write_lock`), bounded by `busy_timeout_ms`."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from outlast.errors import StoreError
from outlast.storage.sqlite import SqliteStore

BUSY_TIMEOUT_MS = 400


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(str(tmp_path / "locked.db"), busy_timeout_ms=BUSY_TIMEOUT_MS)
    await store.open()
    yield store
    await store.close()


@pytest.fixture
def other_writer(store: SqliteStore) -> Iterator[sqlite3.Connection]:
    """Another connection to the file (SQLite locks it as it would for another process)."""
    conn = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    yield conn
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    conn.close()


def put(name: str) -> Any:
    return lambda tx: tx.run("INSERT INTO meta (name, value) VALUES (?, 1)", (name,))


async def names(store: SqliteStore) -> set[str]:
    return await store._run(lambda tx: {r[0] for r in tx.all("SELECT name FROM meta")})


async def test_a_write_waits_while_another_process_holds_the_lock_then_commits(
    store: SqliteStore, other_writer: sqlite3.Connection
) -> None:
    other_writer.execute("BEGIN IMMEDIATE")
    other_writer.execute("INSERT INTO meta (name, value) VALUES ('theirs', 1)")
    write = asyncio.ensure_future(store._run(put("ours")))
    done, _ = await asyncio.wait({write}, timeout=BUSY_TIMEOUT_MS / 4000)
    assert not done, "the write went ahead while another connection held the write lock"
    other_writer.execute("COMMIT")
    assert await write == 1
    assert {"theirs", "ours"} <= await names(store)


async def test_a_lock_held_past_the_busy_timeout_fails_the_group_and_stores_nothing(
    store: SqliteStore, other_writer: sqlite3.Connection
) -> None:
    other_writer.execute("BEGIN IMMEDIATE")
    with pytest.raises(StoreError, match="locked"):
        await store._run(put("late"))
    other_writer.execute("ROLLBACK")
    assert "late" not in await names(store)
    assert await store._run(put("after")) == 1  # the store goes on once the lock is free
