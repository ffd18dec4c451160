"""PostgreSQL databases for tests: one migrated template per test run, cloned per test.

Every database this run creates is named `outlast_t_<pid>_<tag>_<n>`, so concurrent runs (two
checkouts, two CI jobs on one server) never touch each other's databases. All of them are dropped
when the run ends; databases left by a run whose process is gone (killed) are dropped by the next
run that starts.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import queue
import secrets
import threading
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

PREFIX = "outlast_t_"
#: clones kept ready ahead of the tests that will ask for them
AHEAD = 2


class TestDatabases:
    """Creates and drops the databases of one test run."""

    __test__ = False

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.prefix = f"{PREFIX}{os.getpid()}_{secrets.token_hex(3)}_"
        self._numbers = itertools.count()
        self._lock = threading.Lock()
        self._template: str | None = None
        self._released: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._ready: queue.SimpleQueue[str | Exception] = queue.SimpleQueue()
        self._wanted = threading.Semaphore(0)
        self._cloner: threading.Thread | None = None
        self._closing = False
        self._dropper: threading.Thread | None = None

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.base_url, autocommit=True)

    def url(self, name: str) -> str:
        return urlsplit(self.base_url)._replace(path="/" + name).geturl()

    def empty(self) -> str:
        """A new empty database (no schema): for tests of migrations themselves."""
        name = f"{self.prefix}{next(self._numbers)}"
        with self._admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def migrated(self) -> str:
        """A new database with the current schema, cloned from this run's template.

        Clones are made ahead by a background thread (`AHEAD` ready at any time), so a test
        rarely waits for one. A clone that failed raises here, saying what failed."""
        with self._lock:
            if self._cloner is None:
                self._cloner = threading.Thread(target=self._clone_ahead, name="clone-test-databases", daemon=True)
                self._cloner.start()
        self._wanted.release()
        made = self._ready.get()
        if isinstance(made, Exception):
            where = urlsplit(self.base_url)
            raise RuntimeError(
                f"could not make a test database on PostgreSQL at {where.hostname}:{where.port or 5432}"
                f" (OUTLAST_TEST_POSTGRES_URL; creating this run's migrated template, then cloning it):"
                f" {type(made).__name__}: {made}"
            ) from made
        return made

    def _clone_ahead(self) -> None:
        for _ in range(AHEAD):
            self._wanted.release()
        while True:
            self._wanted.acquire()
            if self._closing:
                return
            try:
                self._ready.put(self._clone())
            except Exception as exc:  # the test that takes it reports it (`migrated`)
                self._ready.put(exc)

    def _clone(self) -> str:
        template = self._ensure_template()
        name = f"{self.prefix}{next(self._numbers)}"
        with self._admin() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
            )
        return self.url(name)

    def _ensure_template(self) -> str:
        with self._lock:
            if self._template is None:
                url = self.empty()
                _apply_migrations(url)
                self._template = urlsplit(url).path.strip("/")
            return self._template

    def release(self, url: str) -> None:
        """The test using `url` is over: drop its database in the background, while the next tests
        run (the end of the run then has little left to drop)."""
        with self._lock:
            if self._dropper is None:
                self._dropper = threading.Thread(target=self._drop_released, name="drop-test-databases", daemon=True)
                self._dropper.start()
        self._released.put(urlsplit(url).path.strip("/"))

    def _drop_released(self) -> None:
        while (name := self._released.get()) is not None:
            with contextlib.suppress(psycopg.Error), self._admin() as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def drop_all(self) -> None:
        """Drop every database of this run, and those of runs whose process is gone."""
        if self._cloner is not None:
            self._closing = True
            self._wanted.release()
            self._cloner.join()
        if self._dropper is not None:
            self._released.put(None)
            self._dropper.join()
        with self._admin() as conn:
            for name in _databases_named(conn, PREFIX):
                if name.startswith(self.prefix) or not _owner_alive(name):
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _databases_named(conn: psycopg.Connection[Any], prefix: str) -> list[str]:
    """The databases whose names start with `prefix` (no LIKE wildcards in it but `_`)."""
    rows = conn.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (prefix,))
    return [str(r[0]) for r in rows]


def _owner_alive(name: str, prefix: str = PREFIX) -> bool:
    """Whether the process whose pid follows `prefix` in `name` still runs (on this host)."""
    pid = name.removeprefix(prefix).split("_", 1)[0]
    if not pid.isdigit():
        return True  # not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _apply_migrations(url: str) -> None:
    from outlast.storage.postgres import migrate

    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)


_databases: TestDatabases | None = None


def test_databases(base_url: str) -> TestDatabases:
    """This run's databases (created on first use)."""
    global _databases
    if _databases is None:
        _databases = TestDatabases(base_url)
    return _databases


def drop_test_databases() -> None:
    if _databases is not None:
        with contextlib.suppress(psycopg.Error):
            _databases.drop_all()


def fresh_database_url(base_url: str, name: str) -> str:
    """Create an empty database for this process and return its URL (benchmarks).

    It is named `<name>_<pid>`, so two benchmarks on one server never drop each other's
    database; it is dropped when the process exits, and one left by a killed process is
    dropped by the next benchmark that asks for the same name."""
    parts = urlsplit(base_url)
    own = f"{name}_{os.getpid()}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        for stale in _databases_named(conn, f"{name}_"):
            if stale == own or not _owner_alive(stale, f"{name}_"):
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(stale)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(own)))
    if not _bench_databases:
        atexit.register(_drop_bench_databases, base_url)
    _bench_databases.add(own)
    return parts._replace(path="/" + own).geturl()


_bench_databases: set[str] = set()


def _drop_bench_databases(base_url: str) -> None:
    with contextlib.suppress(psycopg.Error), psycopg.connect(base_url, autocommit=True) as conn:
        for name in sorted(_bench_databases):
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
