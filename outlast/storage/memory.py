"""`memory://`: SQLite in memory, inline. The same SQL as every backend, none of the plumbing.

Inline. There is no connection thread: each request (one Store call, `fn(tx)`) runs directly
on the caller's thread, as one transaction of its own (BEGIN ... COMMIT). A request that raises
is rolled back alone and its exception goes to its caller. There is no group commit: with no
disk there is nothing to share. The coroutine methods never yield to the event loop: a call
returns when its transaction has committed, so nobody sees its result before that.

Threads. One lock serialises requests, so several threads and event loops may share one store
(a client's private loop thread, a test's own loop, `TestEngine`'s blocking reads).

Schema. A template database is migrated once per process and serialised; each new store
deserialises it (about a tenth of a millisecond) instead of running the migrations again.
Every store is a new, empty database: nothing is shared between two `memory://` stores.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from outlast.errors import StoreError
from outlast.storage.message_bell import MessageBell
from outlast.storage.sql.store import SqlStore
from outlast.storage.sql.waits import count_committed_checks
from outlast.storage.sqlite import SqliteTx, migrate, store_error

T = TypeVar("T")

_template: bytes | None = None
_template_lock = threading.Lock()


def schema_template() -> bytes:
    """The migrated, empty schema as a serialised database (built on first use)."""
    global _template
    with _template_lock:
        if _template is None:
            conn = sqlite3.connect(":memory:", isolation_level=None)
            try:
                migrate(conn)
                _template = conn.serialize()
            finally:
                conn.close()
        return _template


class MemoryStore(SqlStore):
    def __init__(self) -> None:
        super().__init__()
        self._conn: sqlite3.Connection | None = None
        self._tx: SqliteTx | None = None
        self._lock = threading.Lock()
        self._messages = MessageBell(":memory:")

    async def open(self) -> None:
        with self._lock:
            if self._conn is None:
                conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
                conn.deserialize(schema_template())
                self._conn, self._tx = conn, SqliteTx(conn)

    async def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = self._tx = None

    async def _run(self, fn: Callable[[SqliteTx], T], notify: bool = False) -> T:
        if self.group_observer is None and not self._messages.callbacks:
            return self._transaction(fn)
        started = time.perf_counter()
        result = self._transaction(fn)
        if self.group_observer is not None:
            self.group_observer(1, time.perf_counter() - started)  # each request is its own transaction
        if self._messages.callbacks:
            with self._lock:
                if self._conn is not None:
                    self._messages.after_group(self._conn)  # tell subscribers if it published
        return result

    def add_message_listener(self, callback: Callable[[], None]) -> bool:
        self._messages.callbacks.append(callback)
        return True  # nothing outside this process can publish here

    def _transaction(self, fn: Callable[[SqliteTx], T]) -> T:
        with self._lock:
            conn, tx = self._conn, self._tx
            if conn is None or tx is None:
                raise StoreError("the in-memory store is not open")
            try:
                tx.begin("BEGIN")
            except sqlite3.Error as exc:
                raise store_error(exc, "SQLite (memory)") from exc
            try:
                result = fn(tx)
                tx.cur.execute("COMMIT")
                count_committed_checks(tx)
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise store_error(exc, "SQLite (memory)") from exc
                raise
            return result
