"""A PostgreSQL store's listener announces other stores' (processes') commits of work, not its
own: the engine of its own process announced those already, once they were done. Its realtime
messages are announced whoever published them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from outlast.core.planner import Planner
from outlast.core.realtime import MessageRecord
from tests.conftest import PG_URL
from tests.storage.contract import FN, T0, define, event
from tests.storage.listening import Heard

pytestmark = pytest.mark.skipif(not PG_URL, reason="OUTLAST_TEST_POSTGRES_URL is not set")


@pytest.fixture
async def two_stores() -> AsyncIterator[tuple[Any, Any]]:
    """Two stores on one database, as two processes would have."""
    from outlast.storage.postgres import PostgresStore
    from tests.conftest import pg_database

    url = pg_database()
    stores = (PostgresStore(url, pool_size=2), PostgresStore(url, pool_size=2))
    for store in stores:
        store.bind(Planner())
        await store.open()
    await define(stores[0], FN)
    yield stores
    for store in stores:
        await store.close()


async def test_a_store_does_not_announce_its_own_commits_of_work_but_announces_another_stores(
    two_stores: tuple[Any, Any],
) -> None:
    mine, other = two_stores
    heard = Heard()
    mine.add_listener(heard)
    await heard.reach(1)  # the listener's first call: whatever was committed before it listened
    for i in range(3):
        await mine.ingest([event(n=i)], T0)
    await other.ingest([event(n=9)], T0)  # notifications arrive in commit order: ours came first
    await heard.reach(2)
    await other.ingest([event(n=10)], T0)
    await heard.reach(3)
    assert heard.count == 3


async def test_a_store_announces_the_messages_its_own_commits_publish(two_stores: tuple[Any, Any]) -> None:
    mine, _ = two_stores
    heard = Heard()
    mine.add_message_listener(heard)
    await heard.reach(1)
    await mine.publish([MessageRecord(channel="c", topic="t", data=1, ts=T0)])
    await heard.reach(2)
