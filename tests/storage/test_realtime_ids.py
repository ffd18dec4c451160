"""PostgreSQL: message ids come from a sequence without a global lock, so publishers in separate
transactions commit out of id order; a reader resuming after the last id it saw never misses a
message committed later with a smaller id."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from outlast.runtime.realtime import Hub
from outlast.storage.postgres import PostgresStore
from tests.conftest import PG_URL, pg_database

pytestmark = pytest.mark.skipif(not PG_URL, reason="OUTLAST_TEST_POSTGRES_URL is not set")
INSERT = "INSERT INTO messages (channel, topic, data, run_id, ts) VALUES ('c', 't', %s, NULL, 0) RETURNING id"
ARRIVAL_S = 10


@pytest.fixture
async def url_and_store() -> AsyncIterator[tuple[str, PostgresStore]]:
    url = pg_database()
    store = PostgresStore(url)
    await store.open()
    yield url, store
    await store.close()


@contextmanager
def publisher(url: str) -> Iterator[Any]:
    """A connection of its own, as another process's publishing transaction would be."""
    import psycopg

    with psycopg.connect(url) as conn:
        yield conn


async def test_a_later_id_committed_first_waits_for_the_earlier_one(
    url_and_store: tuple[str, PostgresStore],
) -> None:
    url, store = url_and_store
    hub = Hub(store, retention_ms=3_600_000, now_ms=lambda: 0)
    try:
        with publisher(url) as slow, publisher(url) as fast:
            [(first,)] = slow.execute(INSERT, ('"first"',)).fetchall()  # in flight
            [(second,)] = fast.execute(INSERT, ('"second"',)).fetchall()
            fast.commit()
            assert second > first
            subscription = await hub.subscribe("c", since=0)
            assert await store.read_messages(channels=["c"], after_id=0) == []  # not past `first`
            assert await store.last_message_id() < first
            slow.commit()
            got = [await asyncio.wait_for(subscription.next_message(), ARRIVAL_S) for _ in range(2)]
    finally:
        await hub.close()
    assert [(m.id, m.data) for m in got if m is not None] == [(first, "first"), (second, "second")]


def _publish_shuffled(url: str, count: int, seed: int, ids: list[int]) -> None:
    """`count` transactions of one message each, held open for a random moment so that commits
    land out of id order with the other publishers'."""
    chance = random.Random(seed)
    with publisher(url) as conn:
        for i in range(count):
            [(message_id,)] = conn.execute(INSERT, (f'"{seed}-{i}"',)).fetchall()
            threading.Event().wait(chance.random() / 500)  # a commit that comes late, not a timing
            conn.commit()
            ids.append(message_id)


async def test_a_reader_resuming_after_its_last_id_misses_nothing_with_publishers_racing(
    url_and_store: tuple[str, PostgresStore],
) -> None:
    url, store = url_and_store
    committed: list[int] = []
    writers = [threading.Thread(target=_publish_shuffled, args=(url, 60, seed, committed)) for seed in range(6)]
    for w in writers:
        w.start()
    seen: list[int] = []
    cursor = 0
    while (writing := any(w.is_alive() for w in writers)) or len(seen) < len(committed):
        page = await store.read_messages(channels=["c"], after_id=cursor, limit=50)
        seen += [m.id for m in page]
        cursor = page[-1].id if page else cursor
        if not page and not writing:
            break  # everything committed is read: what is missing was skipped
        if not page:
            await asyncio.sleep(0.001)
    for w in writers:
        w.join()
    assert seen == sorted(committed)  # every message once, in id order: none skipped by the cursor


async def test_one_transaction_publishes_thousands_of_messages_in_order(
    url_and_store: tuple[str, PostgresStore],
) -> None:
    from outlast.core.realtime import MessageRecord

    _, store = url_and_store
    await store.publish([MessageRecord(channel="bulk", topic="t", data=i, ts=0) for i in range(5000)])
    kept = await store.read_messages(channels=["bulk"], after_id=0, limit=10_000)
    assert [m.data for m in kept] == list(range(5000))
    assert await store.last_message_id() == kept[-1].id


async def test_watching_a_run_waits_for_a_step_end_that_did_not_see_the_watch(
    url_and_store: tuple[str, PostgresStore],
) -> None:
    from outlast.core.planner import Planner
    from tests.storage.contract import FN, T0, claim_one, define, event

    url, store = url_and_store
    store.bind(Planner())
    await define(store, FN)
    await store.ingest([event()], T0)
    run_id = (await claim_one(store, "w", T0)).run.run_id
    with publisher(url) as ending:
        ending.execute(  # a step ends in a transaction still open: no one watched the run then
            "INSERT INTO steps (run_id, key, step_id, kind, status, attempts, output, started_at, ended_at, seq)"
            " VALUES (%s, 'k', 'late', 'run', 'completed', 1, 'null', %s, %s, 1)",
            (run_id, T0, T0),
        )
        watching = asyncio.ensure_future(store.watch_run(run_id, until_ms=T0 + 3_600_000))
        await asyncio.sleep(0.2)  # not a timing: the watch may not finish before the step's commit
        assert not watching.done(), "the watch did not wait for the step end in flight"
        ending.commit()
        assert await asyncio.wait_for(watching, ARRIVAL_S)
    kept = await store.read_messages(channels=[f"run:{run_id}"], after_id=0)
    assert [(m.topic, m.data) for m in kept] == [
        ("status", {"status": "running"}),
        ("step", {"id": "late", "status": "completed"}),
    ]
