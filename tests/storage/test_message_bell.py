"""SQLite: subscribers to realtime messages, in this process and in others on the same file, are
told when a group published. While nobody listens the writer does not look (no read after each
group); a listener that starts later still hears the next publishing group, and groups that
publish nothing tell nobody."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from outlast.core.realtime import MessageRecord
from outlast.storage.sqlite import SqliteStore
from tests.storage.contract import T0, event
from tests.storage.listening import Heard
from tests.storage.test_wakeup import open_store

HEARD_S = 10


def message(text: str) -> list[MessageRecord]:
    return [MessageRecord(channel="c", topic="t", data=text, ts=T0)]


async def publish_unheard(store: SqliteStore) -> None:
    """Groups that publish while nobody listens anywhere: the writer reads no counter for them."""
    statements: list[str] = []
    assert store._thread is not None
    await store._run(lambda tx: tx.conn.set_trace_callback(statements.append))
    await store.publish(message("before anyone listened"))
    await store.ingest([event()], T0)
    await store._run(lambda tx: tx.conn.set_trace_callback(None))
    assert not [s for s in statements if "sqlite_sequence" in s]


async def writer_done(store: SqliteStore) -> None:
    """Return once the writer thread has finished with every group before this one (it tells
    listeners after answering a group, before it takes the next)."""
    await store._run(lambda tx: None)


async def test_a_listener_of_this_process_that_starts_late_hears_the_next_publish(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "a.db")
    heard = threading.Event()
    try:
        await publish_unheard(store)
        store.add_message_listener(heard.set)
        await store.ingest([event()], T0)  # publishes nothing; the first look may tell, once
        await writer_done(store)
        heard.clear()
        await store.ingest([event()], T0)
        await writer_done(store)
        assert not heard.is_set()  # nothing published: nobody told
        await store.publish(message("now"))
        assert await asyncio.to_thread(heard.wait, HEARD_S)
    finally:
        await store.close()


async def test_a_listener_in_another_process_that_starts_late_hears_the_next_publish(tmp_path: Path) -> None:
    publishing, listening = await open_store(tmp_path / "a.db"), await open_store(tmp_path / "a.db")
    calls = Heard()
    try:
        await publish_unheard(publishing)
        assert listening.add_message_listener(calls)
        await calls.reach(1)  # a listener starts with one call, for what came before it
        await publishing.ingest([event()], T0)  # the first look after nobody listened rings, once
        await calls.reach(2)
        await publishing.publish(message("now"))
        await calls.reach(3)
    finally:
        await publishing.close()
        await listening.close()
