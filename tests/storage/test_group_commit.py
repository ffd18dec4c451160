"""Requests that share a transaction (SQLite and PostgreSQL group commit) or run inline
(`memory://`) succeed or fail alone, and reach their callers as Outlast errors."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from outlast.errors import StoreDataError, StoreError
from outlast.storage.sql.store import SqlStore
from tests.conftest import PG_URL


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "postgres":
        if not PG_URL:
            pytest.skip("OUTLAST_TEST_POSTGRES_URL is not set")
        from outlast.storage.postgres import PostgresStore
        from tests.conftest import pg_database

        store: SqlStore = PostgresStore(pg_database())
    elif request.param == "memory":
        from outlast.storage.memory import MemoryStore

        store = MemoryStore()
    else:
        from outlast.storage.sqlite import SqliteStore

        store = SqliteStore(str(tmp_path / "group.db"))
    await store.open()
    yield store
    await store.close()


def write(name: str, fail: bool = False, value: Any = 1) -> Any:
    def fn(tx: Any) -> str:
        tx.run("INSERT INTO meta (name, value) VALUES (?, ?)", (name, value))
        if fail:
            raise ValueError(f"{name} refused")
        return name

    return fn


async def stored(store: SqlStore) -> set[str]:
    return await store._run(lambda tx: {r[0] for r in tx.all("SELECT name FROM meta")})


async def test_a_failing_request_is_undone_alone(sql_store: SqlStore) -> None:
    names = [f"k{i}" for i in range(50)]
    results = await asyncio.gather(*(sql_store._run(write(n, fail=n == "k7")) for n in names), return_exceptions=True)
    assert isinstance(results[7], ValueError)  # Outlast's own errors pass unchanged
    assert [r for i, r in enumerate(results) if i != 7] == [n for n in names if n != "k7"]
    assert await stored(sql_store) == {"functions_version", *(n for n in names if n != "k7")}


async def test_database_errors_reach_the_caller_as_store_errors_and_undo_only_that_request(sql_store: SqlStore) -> None:
    requests = [
        write("a"),
        lambda tx: tx.run("INSERT INTO no_such_table VALUES (1)"),
        write("b"),
        write("big", value=2**70),
        write("c"),
    ]
    results = await asyncio.gather(*(sql_store._run(r) for r in requests), return_exceptions=True)
    assert (results[0], results[2], results[4]) == ("a", "b", "c")
    assert type(results[1]) is StoreError and "no_such_table" in str(results[1])
    assert isinstance(results[3], StoreDataError) and "refused a value" in str(results[3])
    assert await stored(sql_store) == {"functions_version", "a", "b", "c"}


async def test_text_the_database_cannot_hold_is_refused_with_store_data_error(sql_store: SqlStore) -> None:
    with pytest.raises(StoreDataError):
        await sql_store._run(write("\ud800"))  # not encodable as UTF-8, on every backend
    nul = "nul\x00inside"
    if isinstance(sql_store, _postgres_store()):
        with pytest.raises(StoreDataError, match="NUL"):
            await sql_store._run(write(nul))
    else:
        await sql_store._run(write(nul))  # SQLite keeps it as it is
        assert nul in await stored(sql_store)


async def test_a_closed_store_raises_store_error(sql_store: SqlStore) -> None:
    await sql_store.close()
    with pytest.raises(StoreError):
        await sql_store._run(write("late"))


def _postgres_store() -> type:
    try:
        from outlast.storage.postgres import PostgresStore
    except ImportError:
        return type(None)
    return PostgresStore


async def test_requests_made_while_the_store_closes_are_answered(sql_store: SqlStore) -> None:
    pending = [asyncio.ensure_future(sql_store._run(write(f"k{i}"))) for i in range(20)]
    await asyncio.sleep(0)  # some are submitted, ...
    closing = asyncio.ensure_future(sql_store.close())
    pending += [asyncio.ensure_future(sql_store._run(write(f"late{i}"))) for i in range(20)]  # ... some after
    await closing
    results = await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), 10)
    assert all(isinstance(r, (str, StoreError)) for r in results)


async def test_a_group_whose_postgres_connection_breaks_runs_again_on_a_new_one_and_commits_once(
    sql_store: SqlStore,
) -> None:
    if not isinstance(sql_store, _postgres_store()):
        pytest.skip("a PostgreSQL connection")
    broken: list[int] = []

    def break_once(tx: Any) -> str:
        if not broken:
            broken.append(tx.one("SELECT pg_backend_pid()")[0])
            tx.one("SELECT pg_terminate_backend(pg_backend_pid())")  # the server drops this connection
        return write("after")(tx)

    requests = [write("before"), break_once, write("beside")]
    results = await asyncio.wait_for(asyncio.gather(*(sql_store._run(r) for r in requests)), 30)
    assert results == ["before", "after", "beside"]
    assert await stored(sql_store) == {"functions_version", "before", "after", "beside"}
    assert await sql_store._run(lambda tx: tx.one("SELECT pg_backend_pid()")[0]) not in broken


async def test_a_read_whose_postgres_connection_breaks_runs_again_on_a_new_one(sql_store: SqlStore) -> None:
    if not isinstance(sql_store, _postgres_store()):
        pytest.skip("a PostgreSQL connection")
    await sql_store._run(write("kept"))
    dropped: list[int] = []

    def read_once_dropped(tx: Any) -> set[str]:
        if not dropped:
            dropped.append(tx.one("SELECT pg_backend_pid()")[0])
            tx.one("SELECT pg_terminate_backend(pg_backend_pid())")
        return {r[0] for r in tx.all("SELECT name FROM meta")}

    assert "kept" in await asyncio.wait_for(sql_store._read(read_once_dropped), 30)
    assert await sql_store._read(lambda tx: tx.one("SELECT pg_backend_pid()")[0]) not in dropped


async def test_a_failed_read_is_a_store_error_and_the_next_read_works(sql_store: SqlStore) -> None:
    def bad(tx: Any) -> Any:
        return tx.all("SELECT no_such_column FROM meta")

    with pytest.raises(StoreError, match="no_such_column"):
        await sql_store._read(bad)
    assert "functions_version" in await sql_store._read(lambda tx: {r[0] for r in tx.all("SELECT name FROM meta")})


async def test_a_postgres_read_does_not_wait_for_a_write_group() -> None:
    """A read model (a dashboard page, a waiting `RunHandle`) is answered while the only writer
    holds a group's transaction open: it runs on the reader's own connection, and sees what is
    committed, not what the open transaction wrote."""
    if not PG_URL:
        pytest.skip("OUTLAST_TEST_POSTGRES_URL is not set")
    from outlast.storage.postgres import PostgresStore
    from tests.conftest import pg_database

    store = PostgresStore(pg_database(), pool_size=1)
    await store.open()
    holding, release = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow_write(tx: Any) -> str:
        write("uncommitted")(tx)
        loop.call_soon_threadsafe(holding.set)
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result(30)
        return "done"

    try:
        writing = asyncio.ensure_future(store._run(slow_write))
        await asyncio.wait_for(holding.wait(), 30)
        names = await asyncio.wait_for(store._read(lambda tx: {r[0] for r in tx.all("SELECT name FROM meta")}), 30)
        release.set()
        assert await writing == "done"
        assert "uncommitted" not in names
        assert "uncommitted" in await stored(store)
    finally:
        release.set()
        await store.close()
