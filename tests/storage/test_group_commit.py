"""Group commit: requests that share a transaction succeed or fail alone."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from outlast.storage.sql.store import SqlStore
from tests.conftest import PG_URL


@pytest.fixture(params=["sqlite", "postgres"])
async def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "postgres":
        if not PG_URL:
            pytest.skip("OUTLAST_TEST_POSTGRES_URL is not set")
        from outlast.storage.postgres import PostgresStore
        from tests.conftest import pg_database

        store: SqlStore = PostgresStore(pg_database())
    else:
        from outlast.storage.sqlite import SqliteStore

        store = SqliteStore(str(tmp_path / "group.db"))
    await store.open()
    yield store
    await store.close()


def write(name: str, fail: bool = False) -> Any:
    def fn(tx: Any) -> str:
        tx.run("INSERT INTO meta (name, value) VALUES (?, 1)", (name,))
        if fail:
            raise ValueError(f"{name} refused")
        return name
    return fn


async def test_a_failing_request_is_undone_alone(sql_store: SqlStore) -> None:
    names = [f"k{i}" for i in range(50)]
    results = await asyncio.gather(*(sql_store._run(write(n, fail=n == "k7")) for n in names),
                                   return_exceptions=True)
    assert isinstance(results[7], ValueError)
    assert [r for i, r in enumerate(results) if i != 7] == [n for n in names if n != "k7"]
    stored = await sql_store._run(lambda tx: {r[0] for r in tx.all("SELECT name FROM meta")})
    assert stored == {"functions_version", *(n for n in names if n != "k7")}
