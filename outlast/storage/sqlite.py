"""SQLite backend: one file, WAL, several processes may share it.

All statements run on one connection owned by one thread. WAL checkpoints (and their fsync)
run on a second connection in a background thread, so commits never pay for them. Writes are
group-committed (`outlast.storage.sql.group_commit`): the thread takes every request waiting in
its queue, runs them in one `BEGIN IMMEDIATE` transaction, commits once, then answers them. A
request that raises is rolled back alone and gets its exception; the others commit. A group
whose transaction fails as a whole (the disk is full, the database stayed locked past
`busy_timeout_ms`) answers every request with `StoreError`, and nothing was committed.

Errors. The driver's errors become `StoreError` where a statement runs (`SqliteTx`):
`StoreDataError` for a value SQLite cannot take (a number out of range, text that is not
UTF-8), `StoreError` otherwise. Errors of Outlast's own code pass unchanged.

Starting. Several processes may open one new file at once: switching it to WAL and migrating
are tried again while another process holds the lock (`_connect`).

Wake-ups. A group holding an ingest, a commit that ends an attempt, a cancel or a release rings,
once committed, the listeners of other processes on the same file (`add_listener`; Unix datagram
sockets in `<file>.wake/`, see `outlast.storage.wakeup`), as NOTIFY does on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import chain
from typing import Any, TypeVar

from outlast.errors import StoreDataError, StoreError
from outlast.storage.message_bell import MessageBell, messages_directory
from outlast.storage.sql.group_commit import (
    GroupCommitStore,
    Outcomes,
    Request,
    deliver,
    refuse,
    run_group,
)
from outlast.storage.sql.migrations import migrations_for, statements
from outlast.storage.sql.tx import Row, marks
from outlast.storage.wakeup import Doorbell, Listener, start_listener, wake_directory

T = TypeVar("T")
_MAX_GROUP = 256
CHECKPOINT_INTERVAL_S = 0.5
#: pauses between tries of a writer's BEGIN IMMEDIATE while another process writes (see
#: `SqliteSession._take_write_lock`)
_FIRST_BUSY_PAUSE_S = 0.00005
_LONGEST_BUSY_PAUSE_S = 0.001
#: a WAL holding this many frames (about 8 MB of 4 KiB pages) is truncated after its checkpoint
WAL_TRUNCATE_FRAMES = 2048
#: how long a truncating checkpoint may wait for readers (writers wait while it does)
TRUNCATE_BUSY_MS = 200


class SqliteTx:
    """Statements of one transaction. Errors of the database become `StoreError`s here, where a
    statement runs, so an error of Outlast's own code (a TypeError, say) is never disguised.

    One cursor serves every statement (a new cursor per statement costs about a microsecond);
    each statement is stepped to its end, so none is left in progress at COMMIT."""

    lock_suffix = ""
    row_lock = ""
    dialect = "sqlite"
    claim_lock: str | None = None

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.cur = conn.cursor()
        self.memo: dict[Any, Any] = {}
        #: parameters one statement may bind (999 before SQLite 3.32, 32,766 since)
        self.max_variables = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)

    def begin(self, statement: str = "BEGIN IMMEDIATE") -> None:
        """Begin a transaction (the memo of the previous one is forgotten)."""
        self.memo.clear()
        self.cur.execute(statement)

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        try:
            return self.cur.execute(sql, params).fetchall()
        except _DRIVER_ERRORS as exc:
            raise store_error(exc) from exc

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = self.all(sql, params)
        return rows[0] if rows else None

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        try:
            return self.cur.execute(sql, params).rowcount
        except _DRIVER_ERRORS as exc:
            raise store_error(exc) from exc

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            self.cur.executemany(sql, rows)
        except _DRIVER_ERRORS as exc:
            raise store_error(exc) from exc

    def insert_many(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Rows `_ROWS_PER_INSERT` at a time in one multi-row INSERT: a third less time than a
        statement per row (executemany) for 100,000 runs, the rest one per row."""
        if not rows:
            return
        head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
        one = f"({marks(len(columns))})"
        per = max(1, min(_ROWS_PER_INSERT, self.max_variables // len(columns)))
        whole = len(rows) - len(rows) % per
        if whole:
            many = head + ", ".join([one] * per)
            for i in range(0, whole, per):
                self.run(many, list(chain.from_iterable(rows[i : i + per])))
        if whole < len(rows):
            self.many(head + one, rows[whole:])

    def stored(self, table: str, column: str, values: Sequence[Any]) -> set[Any]:
        found: set[Any] = set()
        per = min(_IN_LIST, self.max_variables)
        for i in range(0, len(values), per):
            chunk = values[i : i + per]
            found.update(
                r[0] for r in self.all(f"SELECT {column} FROM {table} WHERE {column} IN ({marks(len(chunk))})", chunk)
            )
        return found

    def tables(self, rows: Sequence[Sequence[Any]], types: Sequence[str]) -> Iterator[tuple[str, list[Any]]]:
        per = max(1, self.max_variables // len(types))
        for i in range(0, len(rows), per):
            chunk = rows[i : i + per]
            yield "VALUES " + ", ".join([f"({marks(len(types))})"] * len(chunk)), list(chain.from_iterable(chunk))


#: values per `IN (...)` list, at most
_IN_LIST = 1000
#: rows per multi-row INSERT, at most (more gains little)
_ROWS_PER_INSERT = 64
#: what the driver raises for a statement: its own errors, and a value it cannot bind
_DRIVER_ERRORS = (sqlite3.Error, OverflowError, UnicodeEncodeError)
_REFUSED_VALUES = (sqlite3.IntegrityError, sqlite3.DataError, OverflowError, UnicodeEncodeError)


def store_error(exc: BaseException, where: str = "SQLite") -> StoreError:
    """A driver error as callers handle it: a refused value, or the database failing."""
    if isinstance(exc, _REFUSED_VALUES):
        return StoreDataError(f"{where} refused a value: {exc}")
    return StoreError(f"{where}: {exc}")


class SqliteSession:
    """The connection thread's transactions, for `group_commit.run_group`. A request's errors are
    all its own: `SqliteTx` made the driver's `StoreError`s where its statements ran."""

    def __init__(self, conn: sqlite3.Connection, *, busy_timeout_ms: int) -> None:
        self.conn = conn
        self.tx = SqliteTx(conn)
        self.busy_timeout_ms = busy_timeout_ms
        #: the last group committed a request that rings listeners in other processes
        self.ring = False

    def begin(self, *, savepoint: bool) -> SqliteTx:
        self.ring = False
        self._take_write_lock()
        if savepoint:
            self.conn.execute("SAVEPOINT op")
        return self.tx

    def _take_write_lock(self) -> None:
        """`BEGIN IMMEDIATE`, tried again after short pauses while another process writes.

        SQLite's own busy handler sleeps 1, 2, 5, 10 ... then 100 ms between tries, while another
        process's group lets go of the lock within a millisecond or so: with a sender and a worker
        writing one file, those sleeps, not the work, set the pace (issue 28). So the writer's
        connection has no busy handler (`_connect`), and the pauses here start at 50 µs and end
        at 1 ms, for `busy_timeout_ms` at most. In WAL mode `BEGIN IMMEDIATE` is the only
        statement of a writer that waits for another process: once it holds the write lock, its
        statements and its COMMIT (which appends to the WAL; checkpoints run on another
        connection) have nothing left to wait for."""
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        _when_not_busy(self.tx.begin, deadline, pause=_FIRST_BUSY_PAUSE_S, longest=_LONGEST_BUSY_PAUSE_S)

    def control(self, *statements: str) -> None:
        for statement in statements:
            self.conn.execute(statement)

    def own_failure(self, exc: Exception) -> Exception:
        return exc

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def commit(self, *, notify: bool, outcomes: Outcomes) -> None:
        """COMMIT: the group's pages are appended to the WAL (two writes a page, no fsync with
        `synchronous=NORMAL`; checkpoints run on their own thread), on the transaction's own
        cursor (`conn.execute` would make one per COMMIT)."""
        self.tx.cur.execute("COMMIT")
        self.ring = notify  # rung once the group is answered (`_run_group`)


class SqliteStore(GroupCommitStore):
    def __init__(self, path: str, *, synchronous: str = "NORMAL", busy_timeout_ms: int = 30_000) -> None:
        super().__init__("SQLite")
        self.path = path
        self.synchronous = synchronous
        self.busy_timeout_ms = busy_timeout_ms
        self._thread: threading.Thread | None = None
        self._checkpointer: threading.Thread | None = None
        self._closing = threading.Event()
        self._wake_dir = wake_directory(path)
        self._doorbell = Doorbell(self._wake_dir) if self._wake_dir is not None else None
        self._callbacks: list[Callable[[], None]] = []
        self._listener: Listener | None = None
        self._messages = MessageBell(path)
        #: the read models' own thread and connection (see `_read`), made on first use
        self._reader: ThreadPoolExecutor | None = None
        self._reader_conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        if self._thread is not None:
            return
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="outlast-sqlite", daemon=True)
        self._thread.start()
        await asyncio.wrap_future(ready)
        self._requests.open()
        self._closing.clear()
        if self._callbacks:
            self._listen()
        if self._messages.callbacks:
            self._messages.listen()
        if self.path == ":memory:":
            return  # nothing to checkpoint
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, name="outlast-sqlite-checkpoint", daemon=True
        )
        self._checkpointer.start()

    async def close(self) -> None:
        if self._thread is None:
            return
        if self._listener is not None:
            await asyncio.to_thread(self._listener.stop)
            self._listener = None
        self._requests.stop(threads=1)
        self._closing.set()
        await asyncio.to_thread(self._thread.join)
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.join)
        self._thread = self._checkpointer = None
        if self._reader is not None:
            reader, self._reader = self._reader, None
            await asyncio.wrap_future(reader.submit(self._close_reader))
            reader.shutdown()
        if self._doorbell is not None:
            self._doorbell.close()
        await asyncio.to_thread(self._messages.stop)

    def add_message_listener(self, callback: Callable[[], None]) -> bool:
        self._messages.callbacks.append(callback)
        if self._thread is not None:
            return self._messages.listen()
        return messages_directory(self.path) is not None  # it listens once open

    def add_listener(self, callback: Callable[[], None]) -> bool:
        """Call `callback()` (from a thread) whenever another process commits new or newly due work
        to this file. False when it never will (in memory, no Unix sockets, or the socket could
        not be bound): the caller must poll."""
        self._callbacks.append(callback)
        if self._thread is not None and self._listener is None:
            return self._listen()
        return self._wake_dir is not None

    def _listen(self) -> bool:
        self._listener = start_listener(self._wake_dir, self._wake, self._doorbell)
        return self._listener is not None

    def _wake(self) -> None:
        for callback in list(self._callbacks):
            callback()

    # -- the connection thread ----------------------------------------------------------------

    async def _read(self, fn: Callable[[SqliteTx], T]) -> T:
        """Read models run on a connection and thread of their own: in WAL mode a reader sees
        every committed write and neither waits for the writer nor holds it up, so a heavy page or
        GraphQL query never delays ingest, claims or commits on the writer's thread."""
        if self._thread is None or self.path == ":memory:":
            return await self._run(fn)  # closed (refused there) or in memory (one connection)
        if self._reader is None:
            self._reader = ThreadPoolExecutor(1, thread_name_prefix="outlast-sqlite-read")
        return await asyncio.wrap_future(self._reader.submit(self._read_now, fn))

    def _read_now(self, fn: Callable[[SqliteTx], T]) -> T:
        if self._reader_conn is None:
            self._reader_conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout_ms / 1000
            )
        conn = self._reader_conn
        tx = SqliteTx(conn)
        try:
            tx.begin("BEGIN")  # deferred: one snapshot for the whole read, no write lock
            try:
                return fn(tx)
            finally:
                conn.execute("ROLLBACK")  # it wrote nothing
        except sqlite3.Error as exc:
            raise store_error(exc, f"SQLite read failed ({self.path})") from exc

    def _close_reader(self) -> None:
        if self._reader_conn is not None:
            self._reader_conn.close()
            self._reader_conn = None

    def _connect(self) -> sqlite3.Connection:
        """Connect, switch to WAL and migrate: safe when several processes start at once on a new
        file. Switching the journal mode does not wait for a busy database (SQLite answers
        "database is locked" at once), so busy steps are tried again until `busy_timeout_ms`."""
        if os.path.dirname(self.path):
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout_ms / 1000
        )
        try:
            deadline = time.monotonic() + self.busy_timeout_ms / 1000
            _when_not_busy(lambda: conn.execute("PRAGMA journal_mode=WAL"), deadline)
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")
            conn.execute("PRAGMA wal_autocheckpoint=0")
            _when_not_busy(lambda: migrate(conn), deadline)
            conn.execute("PRAGMA busy_timeout=0")  # BEGIN IMMEDIATE waits its own way: `_take_write_lock`
        except BaseException:
            conn.close()
            raise
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
        except (sqlite3.Error, OSError) as exc:
            ready.set_exception(StoreError(f"cannot open SQLite database {self.path!r}: {exc}"))
            return
        ready.set_result(None)
        session = SqliteSession(conn, busy_timeout_ms=self.busy_timeout_ms)
        try:
            while (group := self._requests.take_group(_MAX_GROUP)) is not None:
                self._run_group(session, group)
        finally:
            conn.close()
            # requests this thread will not serve, if it failed (nobody else will)
            refuse(self._requests.leftovers(), StoreError("the SQLite store was closed"))

    def _run_group(self, session: SqliteSession, group: list[Request]) -> None:
        started = time.perf_counter()
        try:
            outcomes = run_group(session, group)
        except sqlite3.Error as exc:
            session.rollback()
            session.ring = False
            outcomes = [(False, store_error(exc, f"SQLite transaction failed ({self.path})"))] * len(group)
        deliver(group, outcomes)
        if session.ring and self._doorbell is not None:
            self._doorbell.ring()
        self._messages.after_group(session.conn)
        if self.group_observer is not None:
            self.group_observer(len(group), time.perf_counter() - started)


def _when_not_busy(step: Callable[[], object], deadline: float, *, pause: float = 0.005, longest: float = 0.1) -> None:
    """Run `step`, again while the database is busy (another process holds a lock) until `deadline`,
    pausing from `pause` seconds, doubling up to `longest`."""
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as exc:
            busy = (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            if not busy or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, longest)


def migrate(conn: sqlite3.Connection) -> None:
    """Apply pending migrations in one `BEGIN IMMEDIATE` transaction (other processes wait)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
        done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
        for version, script in migrations_for("sqlite"):
            if version in done:
                continue
            for statement in statements(script):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", (version,))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
