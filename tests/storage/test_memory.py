"""`memory://` specifics: every store is its own database, and one store may be used from several
threads and event loops at once (a client's private loop thread beside a test's own loop)."""

from __future__ import annotations

import asyncio
import threading

from outlast.core.models import AppScope, RunFilter
from outlast.core.planner import Planner
from outlast.storage import open_store
from outlast.storage.base import Store
from outlast.storage.memory import MemoryStore
from tests.storage.contract import APP, FN, LEASE, T0, define, event


async def new_store() -> Store:
    store = open_store("memory://")
    assert isinstance(store, MemoryStore)
    store.bind(Planner())
    await store.open()
    await define(store, FN)
    return store


async def test_each_memory_store_is_a_new_empty_database() -> None:
    first, second = await new_store(), await new_store()
    await first.ingest([event()], T0)
    assert len(await first.list_runs(RunFilter())) == 1
    assert await second.list_runs(RunFilter()) == []
    await first.close()
    await first.open()  # reopened: a new database again
    assert await first.list_runs(RunFilter()) == []
    assert open_store("sqlite:///:memory:").__class__ is MemoryStore
    await first.close()
    await second.close()


def test_one_store_serves_several_threads_and_event_loops_at_once() -> None:
    store = asyncio.run(new_store())
    per_thread, claimed, errors = 200, [], []

    def producer(tag: int) -> None:
        async def go() -> None:
            for i in range(per_thread):
                await store.ingest([event(tag=tag, i=i)], T0)

        try:
            asyncio.run(go())
        except Exception as exc:
            errors.append(exc)

    def consumer() -> None:
        async def go() -> None:
            while len(claimed) < 2 * per_thread:
                claimed.extend(await store.claim(APP, "w", 7, T0, 60 * LEASE))
                await store.list_runs(RunFilter(limit=5))  # a read in between

        try:
            asyncio.run(asyncio.wait_for(go(), 60))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=producer, args=(n,)) for n in (1, 2)] + [threading.Thread(target=consumer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert errors == []
    assert len({c.run.run_id for c in claimed}) == len(claimed) == 2 * per_thread  # each claimed once
    assert asyncio.run(store.next_due_at(AppScope(app_id="contract"))) == T0 + 60 * LEASE
    asyncio.run(store.close())
