"""How a PostgreSQL group ends: the transaction id is read before COMMIT only when the group
wrote (or notifies), and a COMMIT that gets no answer is still resolved either way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from outlast.storage.sql.replies import Reply
from tests.conftest import PG_URL
from tests.storage.test_group_commit import stored, write

pytestmark = pytest.mark.skipif(not PG_URL, reason="OUTLAST_TEST_POSTGRES_URL is not set")


@pytest.fixture
async def pg_store() -> AsyncIterator[Any]:
    from outlast.storage.postgres import PostgresStore
    from tests.conftest import pg_database

    store = PostgresStore(pg_database(), pool_size=1)
    await store.open()
    yield store
    await store.close()


def _statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement a request or the session sends through `PgTx.one` from now on."""
    from outlast.storage import postgres

    seen: list[str] = []
    one = postgres.PgTx.one

    def spy(self: Any, sql: str, params: Any = ()) -> Any:
        seen.append(sql)
        return one(self, sql, params)

    monkeypatch.setattr(postgres.PgTx, "one", spy)
    return seen


async def test_a_group_that_wrote_nothing_commits_without_reading_its_transaction_id(
    pg_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from outlast.storage.postgres import _XID

    seen = _statements(monkeypatch)
    assert await pg_store._run(lambda tx: tx.one("SELECT 41 + 1")[0]) == 42
    assert await pg_store._run(lambda tx: tx.all("SELECT id FROM queue WHERE due_at < 0 FOR UPDATE SKIP LOCKED")) == []
    assert _XID not in seen
    assert await pg_store._run(write("w")) == "w"
    assert await pg_store._run(lambda tx: tx.all("UPDATE queue SET due_at = 0 WHERE id = 'none' RETURNING id")) == []
    assert seen.count(_XID) == 1  # the INSERT; the UPDATE changed no row
    with_update = "WITH t AS (UPDATE queue SET due_at = 0 WHERE id = 'none' RETURNING id) SELECT id FROM t"
    assert await pg_store._run(lambda tx: tx.all(with_update)) == []
    assert seen.count(_XID) == 2  # its server answer is a SELECT's, but it is counted as a write


def _drop_commit_answer(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The next COMMIT reaches the server, but its answer is lost with the connection."""
    from outlast.storage import postgres

    dropped: list[int] = []
    control = postgres.PgTx.control

    def lossy(self: Any, statements: bytes) -> None:
        control(self, statements)
        if statements == b"COMMIT" and not dropped:
            dropped.append(1)
            self.cur.connection.close()
            raise psycopg.OperationalError("the server closed the connection unexpectedly")

    monkeypatch.setattr(postgres.PgTx, "control", lossy)
    return dropped


async def test_a_writing_group_whose_commit_got_no_answer_is_answered_once_from_its_transaction_status(
    pg_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    dropped = _drop_commit_answer(monkeypatch)
    ran: list[str] = []

    def counted(tx: Any) -> str:
        ran.append("x")
        return str(write("committed")(tx))

    assert await asyncio.wait_for(pg_store._run(counted), 30) == "committed"
    assert dropped and ran == ["x"]  # resolved by txid_status, not run again
    assert "committed" in await stored(pg_store)


async def test_a_group_that_wrote_through_a_with_whose_commit_got_no_answer_is_answered_once(
    pg_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a claim's lease: an UPDATE in a WITH, answered as the SELECT of what it returned."""
    await pg_store._run(write("x", value=1))
    dropped = _drop_commit_answer(monkeypatch)
    ran: list[str] = []

    def lease(tx: Any) -> list[Any]:
        ran.append("x")
        return tx.all(
            "WITH t AS (UPDATE meta SET value = value + 1 WHERE name = 'x' RETURNING value) SELECT value FROM t"
        )

    assert await asyncio.wait_for(pg_store._run(lease), 30) == [(2,)]
    assert dropped and ran == ["x"]  # resolved by txid_status, not run again (which would make it 3)
    assert await pg_store._run(lambda tx: tx.one("SELECT value FROM meta WHERE name = 'x'")) == (2,)


async def test_a_reading_group_whose_commit_got_no_answer_runs_again(
    pg_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    dropped = _drop_commit_answer(monkeypatch)
    ran: list[str] = []

    def read(tx: Any) -> int:
        ran.append("x")
        return int(tx.one("SELECT 7")[0])

    assert await asyncio.wait_for(pg_store._submit(read, Reply.for_running_loop()), 30) == 7
    assert dropped and ran == ["x", "x"]
