"""PostgreSQL backend: psycopg 3 (sync API) over a connection pool, driven from threads.

Threads. `pool_size` writer threads each hold one pooled connection and drain one shared queue
of requests (a request is one Store call, `fn(tx)`). A thread takes every request waiting (up to
`_MAX_GROUP`), runs them in one transaction, COMMITs once, then answers them: group commit
(`outlast.storage.sql.group_commit`), with up to `pool_size` groups in flight (READ COMMITTED;
claims run first in their group and lock candidates FOR UPDATE SKIP LOCKED; a claim that must
count concurrency keys takes an advisory lock first, see `queue.claim`). `add_listener` starts
one more thread, on its own connection, that LISTENs on `outlast_work`. Read models (`_read`: the
dashboard's pages, a `RunHandle` waiting for its run) run on one more thread and connection,
outside the write groups, a statement at a time.

What is atomic. Each request is all-or-nothing and nobody sees its result before the COMMIT that
holds it. A request that raises is undone alone and gets its exception (a driver error as
`StoreError`, or `StoreDataError` for a refused value such as a NUL character in text; see
`_store_error`); the others commit. A group whose transaction fails as a whole runs
again (`_ATTEMPTS` in all): after a serialization failure, deadlock or unique-key race (SQLSTATE
class 40, 23505), and, on a fresh connection after a backoff, after the connection broke (nothing
was committed). When a COMMIT gets no answer, `txid_status` on a new connection tells whether it
happened: the group is answered or run again. Otherwise every request of the group gets
`StoreError`, and nothing was committed.

Starting. `migrate` holds an advisory lock, so processes opening a new database at once apply
the migrations once, one after another.

Wake-ups. A group holding an ingest, a commit that ends an attempt, a cancel or a release runs
`pg_notify('outlast_work', '')` in its transaction: listeners hear of work once it is committed.
A store's listener passes over the notifications of its own writer connections (the engine of
this process woke its workers already); realtime messages' notifications are all heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import orjson
import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool, PoolTimeout

from outlast.core.models import Claims
from outlast.errors import StoreDataError, StoreError
from outlast.storage.sql.group_commit import GroupCommitStore, Outcomes, Request, deliver, refuse, run_group
from outlast.storage.sql.migrations import MESSAGES_NOTIFY_CHANNEL, migrations_for, statements
from outlast.storage.sql.migrations import tables as migrated_tables
from outlast.storage.sql.replies import Reply
from outlast.storage.sql.run_states import XID
from outlast.storage.sql.tx import Row

log = logging.getLogger("outlast.postgres")
T = TypeVar("T")
Conn = psycopg.Connection[TupleRow]
CHANNEL = "outlast_work"
_MAX_GROUP = 64
_ATTEMPTS = 5
_CONNECT_TIMEOUT_S = 10.0
_MIGRATION_LOCK = 0x6F75746C617374  # "outlast"
_CLAIM_LOCK = _MIGRATION_LOCK + 1
_BEGIN = b"BEGIN"
_BEGIN_WITH_SAVEPOINT = b"BEGIN; SAVEPOINT op"
_XID = "SELECT txid_current_if_assigned()"
_XID_NOTIFY = f"SELECT txid_current_if_assigned(), pg_notify('{CHANNEL}', '')"
_RETRYABLE = ("40", "23505")  # SQLSTATE: serialization failure, deadlock, ...; a unique-key race
#: Outlast's tables changed enough since their last ANALYZE to need another, by autovacuum's own
#: rule (more rows inserted, updated or deleted than 50 plus a tenth of the table)
_STALE_STATISTICS_SQL = (
    "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema()"
    " AND relname = ANY(?) AND n_mod_since_analyze > 50 + 0.1 * n_live_tup ORDER BY relname"
)


@functools.lru_cache(maxsize=4096)
def to_pyformat(sql: str) -> bytes:
    """`?` placeholders outside '...' literals become `%s`; every `%` becomes `%%`."""
    parts = re.split(r"('(?:[^']|'')*')", sql.replace("%", "%%"))
    return "".join(p if i % 2 else p.replace("?", "%s") for i, p in enumerate(parts)).encode()


class PgTx:
    """One transaction's statements. `wrote` tells whether any statement may have written: then
    its COMMIT must be resolvable when it gets no answer (`PgSession.commit` reads the
    transaction's id first). A statement with a data-modifying `WITH` counts as a write (the
    server answers it as the `SELECT` it feeds: a claim's lease, a run's end); any other counts
    unless the server answered it as a `SELECT` or as changing no row (an `UPDATE 0`: an empty
    claim's lease). Our SQL calls no function that writes from a plain SELECT. A SELECT ... FOR
    UPDATE that only locked rows changed nothing, so its transaction, committed or not, left the
    data as it was."""

    lock_suffix = "FOR UPDATE SKIP LOCKED"
    row_lock = "FOR UPDATE"
    dialect = "postgresql"
    claim_lock: str | None = f"pg_advisory_xact_lock({_CLAIM_LOCK})"

    def __init__(self, conn: Conn) -> None:
        self.cur = conn.cursor()
        self.memo: dict[Any, Any] = {}  # a PgTx lives for one transaction
        self.wrote = False

    def _execute(self, sql: str, params: Sequence[Any]) -> psycopg.Cursor[TupleRow]:
        cur = self.cur.execute(to_pyformat(sql), params)
        if not self.wrote and (
            _writes_with(sql) or not ((cur.statusmessage or "").startswith("SELECT") or cur.rowcount == 0)
        ):
            self.wrote = True
        return cur

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._execute(sql, params).fetchall()

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return self._execute(sql, params).fetchone()

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._execute(sql, params).rowcount

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.wrote = True
        self.cur.executemany(to_pyformat(sql), rows)

    def insert_many(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """COPY, in text format (each value converted as the column needs, like a parameter)."""
        if not rows:
            return
        self.wrote = True
        with self.cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN".encode()) as copy:
            for row in rows:
                copy.write_row(row)

    def stored(self, table: str, column: str, values: Sequence[Any]) -> set[Any]:
        if not values:
            return set()
        sql = f"SELECT {column} FROM {table} WHERE {column} = ANY(%s)".encode()
        return {r[0] for r in self.cur.execute(sql, (list(values),))}

    def tables(self, rows: Sequence[Sequence[Any]], types: Sequence[str]) -> Iterator[tuple[str, list[Any]]]:
        """The rows as one JSON array of arrays, taken apart by `jsonb_array_elements`. psycopg
        adapts a Python list for an array parameter element by element in Python (about 3 µs a
        value, 16 values a checkpoint row: most of a worker's adaptation time), where orjson
        encodes all of them in C; the server parses one jsonb value instead of one array per
        column. Over `_JSON_CHUNK` bytes of rows, a further query: jsonb values have a size limit."""
        select = _rows_select(tuple(types))
        chunk: list[bytes] = []
        size = 0
        for row in rows:
            encoded = orjson.dumps(row)
            if chunk and size + len(encoded) > _JSON_CHUNK:
                yield select, [_json_array(chunk), len(chunk)]
                chunk, size = [], 0
            chunk.append(encoded)
            size += len(encoded) + 1
        if chunk:
            yield select, [_json_array(chunk), len(chunk)]

    def script(self, statements: bytes) -> None:
        """Constant statements without parameters, several in one round trip (counted as writes)."""
        self.wrote = True
        self.control(statements)

    def control(self, statements: bytes) -> None:
        """Transaction control (BEGIN, SAVEPOINT, COMMIT, ...): writes nothing by itself."""
        self.cur.execute(statements)


@functools.lru_cache(maxsize=4096)
def _writes_with(sql: str) -> bool:
    """Whether a statement has a data-modifying `WITH` (its server answer is its SELECT's)."""
    return sql.lstrip()[:4].upper() == "WITH" and _DML.search(sql) is not None


_DML = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE)\b", re.IGNORECASE)

#: the most bytes of rows in one jsonb parameter of `PgTx.tables` (PostgreSQL's limit is 256 MB)
_JSON_CHUNK = 32 << 20


@functools.lru_cache(maxsize=64)
def _rows_select(types: tuple[str, ...]) -> str:
    """`SELECT` of the columns of a jsonb array of rows (each row an array), each cast to its type.

    The `LIMIT` (the number of rows, so it cuts none) is for the planner: it guesses 100 rows from
    a set-returning function, and with that guess it joins a batch to `queue`, `runs` or `steps`
    by reading the whole table (a hash join) rather than looking each row up by its key. With
    the `LIMIT` it counts the rows exactly when it plans for the values, and guesses 10 in a
    prepared statement's generic plan: index lookups, whatever the table's size."""
    columns = ", ".join(f"(r->>{i})" + ("" if t == "text" else f"::{t}") for i, t in enumerate(types))
    return f"SELECT {columns} FROM jsonb_array_elements(?::jsonb) AS r LIMIT ?"


def _json_array(rows: list[bytes]) -> str:
    return (b"[" + b",".join(rows) + b"]").decode()


class PgSession:
    """One connection's transactions, for `group_commit.run_group`. Control statements travel
    together (simple query protocol), so a savepoint costs one round trip per request."""

    tx: PgTx  # made by `begin`

    def __init__(self, conn: Conn, where: str) -> None:
        self.conn, self.where = conn, where

    def begin(self, *, savepoint: bool) -> PgTx:
        self.tx = PgTx(self.conn)  # a PgTx (its memo) lives for one transaction
        self.tx.control(_BEGIN_WITH_SAVEPOINT if savepoint else _BEGIN)
        return self.tx

    def control(self, *statements: str) -> None:
        self.tx.control("; ".join(statements).encode())

    def own_failure(self, exc: Exception) -> Exception:
        conn = self.conn
        if conn.broken or conn.closed or isinstance(exc, psycopg.OperationalError) or _retryable(exc):
            raise exc  # the connection or the whole transaction failed, not this request
        return _store_error(exc, self.where)

    def rollback(self) -> None:
        if not (self.conn.broken or self.conn.closed):
            self.tx.control(b"ROLLBACK")

    def commit(self, *, notify: bool, outcomes: Outcomes) -> None:
        """COMMIT, after asking the transaction's id (and notifying, in it): when the COMMIT gets
        no answer, `_CommitError` carries the id, so `txid_status` can tell whether it happened.

        A group that wrote nothing and notifies nobody (an empty claim, reads) skips that round
        trip: whether its COMMIT happened changes no data, and one that gets no answer is run
        again on a fresh connection like any group whose connection broke. So does one whose
        statements read the id already (`run_states.XID`: a claim's, after its lease wrote; a
        transaction's id, once assigned by its first write, never changes)."""
        xid = self.tx.memo.get(XID)
        if notify or (self.tx.wrote and xid is None):
            try:
                xid = (self.tx.one(_XID_NOTIFY if notify else _XID) or (None,))[0]
            except BaseException:
                self.rollback()
                raise
        try:
            self.tx.control(b"COMMIT")
        except psycopg.Error as exc:
            if exc.sqlstate is None and xid is not None:  # no answer: the commit may have happened
                raise _CommitError(xid, outcomes) from exc
            raise  # an error answering COMMIT means it was not applied


class _CommitError(Exception):
    """COMMIT got no answer (`__cause__` says why): whether transaction `xid` committed is unknown."""

    def __init__(self, xid: int, outcomes: Outcomes) -> None:
        super().__init__(f"no answer to the COMMIT of transaction {xid}")
        self.xid, self.outcomes = xid, outcomes


class PostgresStore(GroupCommitStore):
    def __init__(self, url: str, *, pool_size: int = 4) -> None:
        super().__init__("PostgreSQL")
        self.url = url
        self.pool_size = pool_size
        self.where = _describe(url)
        self._pool: ConnectionPool[Conn] | None = None
        self._writers: list[threading.Thread] = []
        self._listener: threading.Thread | None = None
        self._callbacks: list[Callable[[], None]] = []
        self._message_callbacks: list[Callable[[], None]] = []
        self._stopping = threading.Event()
        #: each writer thread's connection's backend pid: NOTIFYs of our own commits, which the
        #: engine announced in-process already, are not announced again (`_listen`)
        self._own_pids: dict[str, int] = {}
        self._upkeep: Conn | None = None
        self._upkeep_lock = threading.Lock()
        #: the read models' own thread and connection (see `_read`), made on first use
        self._reader: ThreadPoolExecutor | None = None
        self._reader_conn: Conn | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def open(self) -> None:
        if not self._writers:
            await asyncio.to_thread(self._start)

    async def close(self) -> None:
        if self._writers:
            await asyncio.to_thread(self._stop)

    def add_listener(self, callback: Callable[[], None]) -> bool:
        """Call `callback()` (from a thread) whenever another process (or another store in this
        one) commits new or newly due work. True: it will (the listener reconnects after a
        failure). This store's own commits are not announced: they come from its writers'
        connections (the notification's pid), and the engine wakes its process itself once
        they are done, as on SQLite, whose doorbell does not ring its own process."""
        self._callbacks.append(callback)
        if self._writers and self._listener is None:
            self._start_listener()
        return True

    def add_message_listener(self, callback: Callable[[], None]) -> bool:
        """Messages are announced by NOTIFY on `outlast_messages` (the realtime migration's trigger)."""
        self._message_callbacks.append(callback)
        if self._writers and self._listener is None:
            self._start_listener()
        return True

    def _start(self) -> None:
        self._stopping.clear()
        pool: ConnectionPool[Conn] = ConnectionPool(
            self.url,
            min_size=self.pool_size,
            max_size=self.pool_size,
            open=False,
            name="outlast",
            kwargs={"autocommit": True},
            check=ConnectionPool.check_connection,
        )
        failures = _ConnectFailures()  # said once, in the error below, not as a warning per retry
        logging.getLogger("psycopg.pool").addFilter(failures)
        try:
            pool.open(wait=True, timeout=_CONNECT_TIMEOUT_S)
            with pool.connection() as conn:
                migrate(conn)
        except (psycopg.Error, PoolTimeout) as exc:
            pool.close()
            why = f"{failures.last} (gave up after {_CONNECT_TIMEOUT_S:g} s)" if failures.last else _oneline(exc)
            raise StoreError(f"cannot open PostgreSQL database {self.where}: {why}") from exc
        finally:
            logging.getLogger("psycopg.pool").removeFilter(failures)
        self._pool = pool
        self._writers = [
            threading.Thread(target=self._serve, name=f"outlast-pg-{i}", daemon=True) for i in range(self.pool_size)
        ]
        for thread in self._writers:
            thread.start()
        self._requests.open()
        if self._callbacks or self._message_callbacks:
            self._start_listener()

    def _stop(self) -> None:
        self._stopping.set()
        if self._listener is not None and self._writers:
            self._stop_listener()
        writers, self._writers = self._writers, []
        self._requests.stop(threads=len(writers))
        for thread in [*writers, *([self._listener] if self._listener else [])]:
            thread.join()
        self._listener = None
        refuse(self._requests.leftovers(), StoreError("the PostgreSQL store was closed"))  # behind a writer that failed
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        with self._upkeep_lock:
            if self._upkeep is not None:
                self._upkeep.close()
                self._upkeep = None
        if self._reader is not None:
            reader, self._reader = self._reader, None
            reader.submit(self._close_reader).result()
            reader.shutdown()

    # -- requests ------------------------------------------------------------------------------

    async def _run_claim(self, fn: Callable[[PgTx], Claims]) -> Claims:
        """Claims run first in their group (`_take`): the claim lock before any row lock."""
        claimed: Claims = await self._submit(fn, Reply.for_running_loop(), claim=True)
        return claimed

    # -- the reader thread ------------------------------------------------------------------------

    async def _read(self, fn: Callable[[PgTx], T]) -> T:
        """Read models run on a connection and thread of their own, a statement at a time
        (autocommit). Under READ COMMITTED each statement of a transaction takes its own snapshot
        anyway, so BEGIN and COMMIT would add two round trips and no consistency; and a read never
        waits in a write group for its COMMIT, nor delays the group's."""
        if not self._writers:
            return await self._run(fn)  # closed: refused there
        if self._reader is None:
            self._reader = ThreadPoolExecutor(1, thread_name_prefix="outlast-pg-read")
        return await asyncio.wrap_future(self._reader.submit(self._read_now, fn))

    def _read_now(self, fn: Callable[[PgTx], T]) -> T:
        """`fn` on the reader's connection; after a lost connection or a retryable failure, again
        on a fresh one (after a backoff), as the writers do."""
        cause: BaseException | None = None
        for attempt in range(_ATTEMPTS):
            if attempt and self._stopping.wait(_backoff(attempt)):
                break
            try:
                if self._reader_conn is None or not _usable(self._reader_conn):
                    self._close_reader()
                    self._reader_conn = psycopg.connect(
                        self.url, autocommit=True, connect_timeout=int(_CONNECT_TIMEOUT_S)
                    )
                return fn(PgTx(self._reader_conn))
            except psycopg.Error as exc:
                cause = exc
                if self._reader_conn is not None and _usable(self._reader_conn) and not _retryable(exc):
                    raise _store_error(exc, self.where)  # noqa: B904 (it carries its cause)
        raise StoreError(f"PostgreSQL read failed ({self.where}): {_oneline(cause)}") from cause

    def _close_reader(self) -> None:
        if self._reader_conn is not None:
            self._reader_conn.close()
            self._reader_conn = None

    # -- writer threads ------------------------------------------------------------------------

    def _serve(self) -> None:
        assert self._pool is not None
        pool, conn = self._pool, None
        try:
            while (group := self._take()) is not None:
                if group:
                    conn = self._execute(pool, conn, group)
        finally:
            if conn is not None:
                pool.putconn(conn)

    def _take(self) -> list[Request] | None:
        """Block for one request, then take those already waiting; None means stop."""
        group = self._requests.take_group(_MAX_GROUP)
        if group is None:
            return None
        group.sort(key=lambda r: not r[3])  # claims first: see `Request`
        return group

    def _execute(self, pool: ConnectionPool[Conn], conn: Conn | None, group: list[Request]) -> Conn | None:
        """Run a group until it commits or fails for good; return the connection to keep."""
        started = time.perf_counter()
        cause: BaseException | None = None
        for attempt in range(_ATTEMPTS):
            if attempt and self._stopping.wait(_backoff(attempt)):
                break
            try:
                conn = conn or pool.getconn(timeout=_CONNECT_TIMEOUT_S)
                self._note_own_pid(conn)
                outcomes = run_group(PgSession(conn, self.where), group)
            except Exception as exc:
                cause, lost = exc, conn is not None and not _usable(conn)
                if conn is not None and lost:
                    log.warning("connection to %s lost (%s); replacing it", self.where, _oneline(exc))
                    conn.close()
                    pool.putconn(conn)
                    conn = None
                if isinstance(exc, _CommitError):
                    if (committed := self._committed(pool, exc.xid)) is None:
                        break
                    if committed:
                        deliver(group, exc.outcomes)
                        return conn
                elif not (lost or _retryable(exc)):
                    break
                continue
            deliver(group, outcomes)
            if self.group_observer is not None:
                self.group_observer(len(group), time.perf_counter() - started)
            return conn
        failure = StoreError(f"PostgreSQL transaction failed ({self.where}): {_oneline(cause)}")
        deliver(group, [(False, failure)] * len(group))
        return conn

    def _note_own_pid(self, conn: Conn) -> None:
        """Remember this writer's connection (copied on change: the listener reads it meanwhile)."""
        name, pid = threading.current_thread().name, conn.info.backend_pid
        if self._own_pids.get(name) != pid:
            self._own_pids = {**self._own_pids, name: pid}

    def _committed(self, pool: ConnectionPool[Conn], xid: int) -> bool | None:
        """Whether transaction `xid`, whose COMMIT got no answer, committed (None: unknown)."""
        for attempt in range(_ATTEMPTS):
            try:
                with pool.connection(timeout=_CONNECT_TIMEOUT_S) as conn:
                    row = conn.execute("SELECT txid_status(%s)", (xid,)).fetchone()
            except (psycopg.Error, PoolTimeout):
                row = None
            if row and row[0] in ("committed", "aborted"):
                log.warning("the COMMIT of transaction %s got no answer; it was %s", xid, row[0])
                return bool(row[0] == "committed")
            if self._stopping.wait(_backoff(attempt + 1)):
                break
        return None

    # -- upkeep (retention, queue statistics) ----------------------------------------------------
    # On a connection of its own, one short transaction at a time, never grouped with the
    # workload's requests: a prune batch neither lengthens their transactions nor waits in them.

    _wait_fields_lock = ("SET LOCAL lock_timeout = '200ms'", "LOCK TABLE wait_fields IN SHARE ROW EXCLUSIVE MODE")

    async def _maintain(self, fn: Callable[[PgTx], T]) -> T:
        if not self._writers:
            raise StoreError("the PostgreSQL store is not open")
        return await asyncio.to_thread(self._maintain_now, fn)

    def _maintain_now(self, fn: Callable[[PgTx], T], *, transaction: bool = True) -> T:
        with self._upkeep_lock:
            try:
                if self._upkeep is None or self._upkeep.closed or self._upkeep.broken:
                    self._upkeep = psycopg.connect(self.url, autocommit=True, connect_timeout=int(_CONNECT_TIMEOUT_S))
                if not transaction:
                    return fn(PgTx(self._upkeep))
                with self._upkeep.transaction():
                    return fn(PgTx(self._upkeep))
            except psycopg.Error as exc:
                raise StoreError(f"PostgreSQL upkeep failed ({self.where}): {_oneline(exc)}") from exc

    async def vacuum(self, tables: tuple[str, ...]) -> bool:
        """VACUUM the tables, and ANALYZE those of Outlast's tables whose statistics are stale,
        unless the server's autovacuum does both (then it has the per-table settings of
        migration 9). Without statistics, the planner guesses that a lookup of a hundred run ids
        reads half of `steps` and scans it whole: a claim then reads every step stored."""
        if not self._writers:
            raise StoreError("the PostgreSQL store is not open")

        def vacuum(tx: PgTx) -> bool:
            if (tx.one("SHOW autovacuum") or ("on",))[0] == "on":
                return False
            for table in tables:
                tx.script(f"VACUUM {table}".encode())  # names from the caller's constant list
            for (table,) in tx.all(_STALE_STATISTICS_SQL, (list(migrated_tables()),)):
                tx.script(f"ANALYZE {table}".encode())  # names of our own tables, from the catalog
            return True

        return await asyncio.to_thread(lambda: self._maintain_now(vacuum, transaction=False))

    # -- the listener thread -------------------------------------------------------------------

    def _start_listener(self) -> None:
        self._listener = threading.Thread(target=self._listen, name="outlast-pg-listen", daemon=True)
        self._listener.start()

    def _listen(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=int(_CONNECT_TIMEOUT_S)) as conn:
                    conn.execute("LISTEN outlast_work")
                    conn.execute(f"LISTEN {MESSAGES_NOTIFY_CHANNEL}")
                    conn.execute(f"LISTEN {self._stop_channel}")
                    failures = 0
                    self._wake()  # whatever was committed while we were not listening
                    self._wake(messages=True)
                    while not self._stopping.is_set():
                        for note in conn.notifies(timeout=0.25):
                            if note.channel == self._stop_channel:
                                break
                            if note.channel == CHANNEL and note.pid in self._own_pids.values():
                                continue  # our own commit: the engine woke this process already
                            self._wake(messages=note.channel == MESSAGES_NOTIFY_CHANNEL)
            except psycopg.Error as exc:
                failures += 1
                log.warning("LISTEN connection to %s failed (%s); reconnecting", self.where, _oneline(exc))
                self._stopping.wait(_backoff(failures, cap=5.0))

    @property
    def _stop_channel(self) -> str:
        """This store's own channel: a notification on it ends the listener's wait at once on close."""
        return f"outlast_stop_{os.getpid()}_{id(self)}"

    def _stop_listener(self) -> None:
        channel = self._stop_channel
        with contextlib.suppress(Exception):  # at worst the listener notices within its 0.25 s poll
            self._submit(lambda tx: tx.one("SELECT pg_notify(?, '')", (channel,)), Reply.blocking()).result(5)

    def _wake(self, *, messages: bool = False) -> None:
        for callback in list(self._message_callbacks if messages else self._callbacks):
            try:
                callback()
            except Exception:
                log.exception("work listener failed")


class _ConnectFailures(logging.Filter):
    """Holds back the pool's "error connecting" warnings while the store opens, keeping the last."""

    last: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("error connecting"):
            reason = record.args[1] if isinstance(record.args, tuple) and len(record.args) > 1 else None
            self.last = " ".join(str(reason or record.getMessage()).split())
            return False
        return True


#: what the driver raises for a value the database will not store (a NUL in text, a number out
#: of range, a string that is not UTF-8) or a constraint it breaks
_REFUSED_VALUES = (psycopg.DataError, psycopg.IntegrityError, UnicodeEncodeError)


def _store_error(exc: Exception, where: str) -> Exception:
    """A request's own failure as its caller gets it: driver errors become `StoreError`
    (`StoreDataError` for a refused value); any other exception is Outlast's or the caller's own
    (a bug, or input our code rejected) and passes unchanged."""
    mapped: Exception
    if isinstance(exc, _REFUSED_VALUES):
        mapped = StoreDataError(f"PostgreSQL ({where}) refused a value: {_oneline(exc)}")
    elif isinstance(exc, psycopg.Error):
        mapped = StoreError(f"PostgreSQL ({where}): {_oneline(exc)}")
    else:
        return exc
    mapped.__cause__ = exc
    return mapped


def _usable(conn: Conn) -> bool:
    return not (conn.broken or conn.closed) and conn.info.transaction_status == TransactionStatus.IDLE


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, psycopg.Error) and (exc.sqlstate or "").startswith(_RETRYABLE)


def _oneline(exc: BaseException | None) -> str:
    return " ".join(str(exc).split())


def _backoff(attempt: int, cap: float = 1.0) -> float:
    return min(cap, 0.01 * 2.0**attempt) * random.uniform(0.5, 1.0)


def _describe(url: str) -> str:
    """user@host:port/dbname: the URL without its password, for messages and logs."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.Error:
        return "(unparsable PostgreSQL URL)"
    return f"{info.get('user', '')}@{info.get('host', '')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


def migrate(conn: Conn) -> None:
    """Apply pending migrations in one transaction, serialised across processes by a lock."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
        done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
        for version, script in migrations_for("postgresql"):
            if version in done:
                continue
            for statement in statements(script):
                conn.execute(statement.encode())
            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
