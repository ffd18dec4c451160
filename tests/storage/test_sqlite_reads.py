"""SQLite serves read models on a connection and thread of their own (`SqliteStore._read`), so a
heavy dashboard page or GraphQL query never holds up ingest, claims or commits (issue 27.7)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from outlast.core.models import EventFilter
from outlast.storage.sqlite import SqliteStore


async def test_a_read_in_progress_does_not_hold_up_the_writer(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "reads.db"))
    await store.open()
    started, release = threading.Event(), threading.Event()

    def slow_read(tx: Any) -> int:
        tx.one("SELECT count(*) FROM events")  # the read's snapshot begins here
        started.set()
        release.wait(30)  # held until the write below has gone through
        return int(tx.one("SELECT count(*) FROM events")[0])

    try:
        reading = asyncio.ensure_future(store._read(slow_read))
        assert await asyncio.to_thread(started.wait, 30)
        await store._run(
            lambda tx: tx.run(
                "INSERT INTO events (id, name, data, user_data, ts, received_at) VALUES ('e1', 'n', '{}', '{}', 0, 0)"
            )
        )
        assert not reading.done()  # the write committed while the read still held its snapshot
        release.set()
        assert await reading == 0  # the read saw the database as it was when it began
        assert [e.id for e in await store.list_events(EventFilter(limit=10))] == ["e1"]
    finally:
        release.set()
        await store.close()


async def test_reads_after_close_are_refused_and_the_reader_is_closed(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "closed.db"))
    await store.open()
    assert await store.list_events(EventFilter(limit=1)) == []
    await store.close()
    assert store._reader is None and store._reader_conn is None
    try:
        await store.list_events(EventFilter(limit=1))
    except Exception as exc:
        assert "not open" in str(exc)
    else:
        raise AssertionError("a read on a closed store was answered")
