"""Fixtures shared by every test: a store of each backend, and a virtual-clock engine factory.

`backend` is parametrised over memory, SQLite and (when OUTLAST_TEST_POSTGRES_URL is set)
PostgreSQL, so every test that uses it runs on every backend.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

import outlast
from outlast.storage import open_store
from outlast.storage.base import Store
from outlast.testing import TestEngine

PG_URL = os.environ.get("OUTLAST_TEST_POSTGRES_URL")
# `outlast dev`/`start` in tests (in this process or a child) must not listen on Inngest's gateway
# port 8289, which every test on the machine would share; a test that wants the port gives a free one
os.environ.setdefault("OUTLAST_CONNECT_PORT", "off")
BACKENDS = ["memory", "sqlite", "postgres"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "backend" in getattr(item, "fixturenames", ()) and "[postgres" in item.nodeid and not PG_URL:
            item.add_marker(pytest.mark.skip(reason="OUTLAST_TEST_POSTGRES_URL is not set"))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(backend: str, tmp_path: Any) -> Iterator[str]:
    yield from new_store_url(backend, tmp_path, "outlast")


def new_store_url(backend: str, tmp_path: Any, name: str) -> Iterator[str]:
    """An empty store of `backend` for a fixture to yield (SQLite: the file `name`.db in
    `tmp_path`); a PostgreSQL database is given back when the fixture ends."""
    if backend == "memory":
        yield "memory://"
    elif backend == "sqlite":
        yield f"sqlite:///{tmp_path}/{name}.db"
    else:
        url = pg_database()
        yield url
        from tests.pg import test_databases

        test_databases(PG_URL or "").release(url)  # dropped in the background while the next tests run


def pg_database(*, migrated: bool = True) -> str:
    """A new database of this test run on the test server (dropped when the run ends)."""
    assert PG_URL is not None
    from tests.pg import test_databases

    databases = test_databases(PG_URL)
    return databases.migrated() if migrated else databases.empty()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if PG_URL:
        from tests.pg import drop_test_databases

        drop_test_databases()


@pytest.fixture
def make_store(store_url: str) -> Callable[[], Store]:
    return lambda: open_store(store_url)


@pytest.fixture
def app() -> outlast.Outlast:
    return outlast.Outlast("test-app", database_url="memory://")


@pytest.fixture
async def engine(app: outlast.Outlast, make_store: Callable[[], Store]) -> AsyncIterator[TestEngine]:
    """A TestEngine on the parametrised backend; define functions on `app` before using it."""
    t = TestEngine(app, store=make_store())
    yield t
    if t.engine.opened:
        await t.engine.close()
