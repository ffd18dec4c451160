"""A request made while a store closes is served or refused, never left without an answer."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from outlast.errors import StoreError
from outlast.storage.sql.intake import Intake
from outlast.storage.sql.replies import Reply
from outlast.storage.sqlite import SqliteStore


def test_a_store_not_yet_open_refuses_requests_naming_itself() -> None:
    intake: Intake[str] = Intake("SQLite")
    with pytest.raises(StoreError, match="the SQLite store is not open"):
        intake.put("early")


def test_each_thread_serves_what_was_queued_before_stop_then_stops() -> None:
    intake: Intake[str] = Intake("PostgreSQL")
    intake.open()
    for name in ("a", "b", "c"):
        intake.put(name)
    intake.stop(threads=2)
    with pytest.raises(StoreError, match="not open"):
        intake.put("late")
    assert intake.take_group(2) == ["a", "b"]
    assert intake.take_group(10) == ["c"]  # the stop marker behind it stays for the next take
    assert intake.take_group(10) is None
    assert intake.take_group(10) is None
    assert intake.leftovers() == []


def test_reopening_forgets_stop_markers_no_thread_took() -> None:
    intake: Intake[str] = Intake("SQLite")
    intake.open()
    intake.put("a")
    assert intake.leftovers() == ["a"]  # its thread failed: the caller refuses "a"
    intake.stop(threads=1)  # then the store is closed; nobody takes this marker
    intake.open()
    intake.put("b")
    assert intake.take_group(10) == ["b"]


def test_requests_racing_a_stop_are_each_served_or_refused() -> None:
    intake: Intake[int] = Intake("SQLite")
    intake.open()
    refused: list[int] = []
    start = threading.Barrier(5)

    def submit(first: int) -> None:
        start.wait()
        for n in range(first, first + 2_000):
            try:
                intake.put(n)
            except StoreError:
                refused.append(n)

    submitters = [threading.Thread(target=submit, args=(i * 2_000,)) for i in range(4)]
    for thread in submitters:
        thread.start()
    start.wait()
    intake.stop(threads=1)
    for thread in submitters:
        thread.join()
    served: list[int] = []
    while (group := intake.take_group(100)) is not None:
        served += group
    assert sorted(served + refused + intake.leftovers()) == list(range(8_000))
    assert intake.leftovers() == []  # nothing was queued behind the stop marker


async def test_a_request_made_after_the_sqlite_thread_stopped_gets_an_answer(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "closing.db"))
    await store.open()
    thread = store._thread
    assert thread is not None
    closing = asyncio.ensure_future(store.close())
    await asyncio.sleep(0)  # close has asked the connection thread to stop and waits for it
    thread.join()  # it has stopped; the loop is held here, so close cannot finish before we ask
    with pytest.raises(StoreError, match="not open"):
        store._submit(lambda tx: tx.one("SELECT 1"), Reply.blocking()).result(timeout=2)
    await closing
