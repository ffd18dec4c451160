"""SQLite backend: one file, WAL, several processes may share it.

All statements run on one connection owned by one thread. WAL checkpoints (and their fsync)
run on a second connection in a background thread, so commits never pay for them. Writes are group-committed: the
thread takes every request waiting in its queue, runs each inside its own SAVEPOINT of one
`BEGIN IMMEDIATE` transaction, commits once, then answers them. A request that raises is
rolled back alone; the others commit. This is the "group commit" DESIGN.md §2 allows: no
caller sees its result before the commit that holds it.
"""

from __future__ import annotations

import asyncio
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from outlast.errors import StoreError
from outlast.storage.sql.migrations import MIGRATIONS
from outlast.storage.sql.replies import Outbox, Reply, take_group
from outlast.storage.sql.store import SqlStore
from outlast.storage.sql.tx import Row

T = TypeVar("T")
_MAX_GROUP = 256
CHECKPOINT_INTERVAL_S = 0.5
#: a WAL holding this many frames (about 8 MB of 4 KiB pages) is truncated after its checkpoint
WAL_TRUNCATE_FRAMES = 2048
#: how long a truncating checkpoint may wait for readers (writers wait while it does)
TRUNCATE_BUSY_MS = 200


class SqliteTx:
    lock_suffix = ""
    row_lock = ""
    claim_lock = None

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.conn.execute(sql, params).fetchall()

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = self.conn.execute(sql, params).fetchone()
        return row

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.conn.execute(sql, params).rowcount

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)


class SqliteStore(SqlStore):
    def __init__(self, path: str, *, synchronous: str = "NORMAL", busy_timeout_ms: int = 30_000) -> None:
        super().__init__()
        self.path = path
        self.synchronous = synchronous
        self.busy_timeout_ms = busy_timeout_ms
        self._requests: queue.SimpleQueue[tuple[Callable[[SqliteTx], Any], Reply] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._checkpointer: threading.Thread | None = None
        self._closing = threading.Event()

    async def open(self) -> None:
        if self._thread is not None:
            return
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="outlast-sqlite", daemon=True)
        self._thread.start()
        await asyncio.wrap_future(ready)
        self._closing.clear()
        if self.path == ":memory:":
            return  # nothing to checkpoint
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="outlast-sqlite-checkpoint",
                                              daemon=True)
        self._checkpointer.start()

    async def close(self) -> None:
        if self._thread is None:
            return
        self._requests.put(None)
        self._closing.set()
        await asyncio.to_thread(self._thread.join)
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.join)
        self._thread = self._checkpointer = None

    def _submit(self, fn: Callable[[SqliteTx], Any], reply: Reply) -> Any:
        if self._thread is None:
            raise StoreError("the SQLite store is not open")
        self._requests.put((fn, reply))
        return reply.future

    async def _run(self, fn: Callable[[SqliteTx], T]) -> T:
        result: T = await self._submit(fn, Reply.for_running_loop())
        return result

    def _run_now(self, fn: Callable[[SqliteTx], T]) -> T:
        result: T = self._submit(fn, Reply.blocking()).result()
        return result

    # -- the connection thread ----------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if os.path.dirname(self.path):
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=self.busy_timeout_ms / 1000)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        return conn

    def _checkpoint_loop(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=self.busy_timeout_ms / 1000)
        try:
            while not self._closing.wait(CHECKPOINT_INTERVAL_S):
                try:
                    _busy, frames, _done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if frames >= WAL_TRUNCATE_FRAMES:
                        self._truncate_wal(conn)
                except sqlite3.Error:
                    continue  # busy or locked: the next round will do it
        finally:
            conn.close()

    def _truncate_wal(self, conn: sqlite3.Connection) -> None:
        """Under steady load a PASSIVE checkpoint never catches up with the writer, so the WAL never
        restarts and only grows. Once it is long, checkpoint the last frames with writers held off
        (briefly: the PASSIVE round just copied the rest) and truncate it to zero bytes."""
        conn.execute(f"PRAGMA busy_timeout={TRUNCATE_BUSY_MS}")
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")

    def _serve(self, ready: Future[None]) -> None:
        try:
            conn = self._connect()
            _migrate(conn)
        except Exception as exc:
            ready.set_exception(StoreError(f"cannot open SQLite database {self.path!r}: {exc}"))
            return
        ready.set_result(None)
        tx = SqliteTx(conn)
        try:
            while (group := take_group(self._requests, _MAX_GROUP)) is not None:
                self._run_group(conn, tx, group)
        finally:
            conn.close()

    def _run_group(self, conn: sqlite3.Connection, tx: SqliteTx, group: list[Any]) -> None:
        outbox = Outbox()
        results: list[tuple[Reply, bool, Any]] = []
        started = time.perf_counter()
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, reply in group:
                conn.execute("SAVEPOINT op")
                try:
                    results.append((reply, True, fn(tx)))
                    conn.execute("RELEASE op")
                except Exception as exc:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    results.append((reply, False, exc))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            results = [(reply, False, StoreError(f"SQLite transaction failed: {exc}")) for _fn, reply in group]
        for reply, ok, value in results:
            outbox.put(reply, ok, value)
        outbox.send()
        if self.group_observer is not None:
            self.group_observer(len(group), time.perf_counter() - started)


def _migrate(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
        done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
        for version, script in MIGRATIONS:
            if version in done:
                continue
            for statement in filter(str.strip, script.split(";")):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", (version,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
