"""A run's own channel costs nothing until someone watches the run: then its story so far is
told at once and its changes follow, the same messages a subscriber from the start would get;
the watch outlives the subscriber for the retention, so a dropped one resumes with its last id.
A watch is dropped a retention after it ended, with the messages it wrote."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import outlast
from outlast import Context, Event
from outlast.storage import open_store
from outlast.storage.base import Store
from outlast.testing import TestEngine
from tests.acceptance.test_realtime import published, take


def define_napper(app: outlast.Outlast) -> None:
    @app.function(id="napper", trigger="t/nap")
    async def napper(ctx: Context) -> int:
        first = await ctx.step.run("first", lambda: 1)
        await ctx.step.sleep("nap", "1h")
        await ctx.step.publish("told", channel="elsewhere", topic="t", data="told")
        return int(first) + int(await ctx.step.run("second", lambda: 2))


async def test_a_run_nobody_watches_writes_no_messages_on_its_own_channel(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    define_napper(app)
    async with engine as t:
        await t.send(Event(name="t/nap"))
        await t.run_until_idle()
        t.advance("1h")
        await t.run_until_idle()
        [run] = t.runs()
        assert run.status == "completed"
        kept = await t.store.read_messages(channels=None, after_id=0)
    assert published(kept) == [("elsewhere", "t", "told")]


async def test_a_run_watched_late_tells_the_same_story_as_one_watched_from_the_start(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    define_napper(app)
    async with engine as t:
        await t.send(Event(name="t/nap"))
        [early] = t.runs()
        async with t.subscribe(f"run:{early.id}", since=0) as from_start:
            await t.run_until_idle()
            t.advance("1h")
            await t.run_until_idle()
            seen_from_start = await take(from_start, 6)
        await t.send(Event(name="t/nap"))
        await t.run_until_idle()
        [late] = [r for r in t.runs() if r.id != early.id]
        async with t.subscribe(f"run:{late.id}", since=0) as halfway:  # the late run sleeps
            told_halfway = await take(halfway, 2)
            t.advance("1h")
            await t.run_until_idle()
            carried_on = await take(halfway, 4)

    def story(messages: list[outlast.core.realtime.Message]) -> list[tuple[str, object]]:
        return [(m.topic, m.data) for m in messages]

    assert story(seen_from_start) == [
        ("status", {"status": "running"}),
        ("step", {"id": "first", "status": "completed"}),
        ("step", {"id": "nap", "status": "completed"}),
        ("step", {"id": "told", "status": "completed"}),
        ("step", {"id": "second", "status": "completed"}),
        ("status", {"status": "completed"}),
    ]
    assert story(told_halfway + carried_on) == story(seen_from_start)
    assert [m.id for m in told_halfway + carried_on] == sorted(m.id for m in told_halfway + carried_on)


async def test_a_dropped_subscriber_resumes_with_its_last_id_while_the_run_goes_on(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    define_napper(app)
    async with engine as t:
        await t.send(Event(name="t/nap"))
        [run] = t.runs()
        async with t.subscribe(f"run:{run.id}", topics=["step"]) as first:
            await t.run_until_idle()
            [last] = await take(first, 1)
        t.advance("1h")
        await t.run_until_idle()  # nobody subscribed: the watch lasts for the retention
        async with t.subscribe(f"run:{run.id}", topics=["step"], since=last.id) as resumed:
            rest = await take(resumed, 3)
    assert last.data == {"id": "first", "status": "completed"}
    assert [m.data["id"] for m in rest] == ["nap", "told", "second"]


async def test_watching_again_after_the_watch_lapsed_repeats_nothing_still_kept(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    define_napper(app)
    async with engine as t:
        await t.send(Event(name="t/nap"))
        [run] = t.runs()
        async with t.subscribe(f"run:{run.id}") as watching:
            await t.run_until_idle()
            await take(watching, 2)
        t.advance("1h")
        await t.run_until_idle()  # still watched: the rest of the story is written
        t.advance("62m")  # the watch ended (retention and a renewal) a retention ago
        # a pruner that got to the watch but not yet to the messages it wrote (a batch limit)
        await t.store.prune_messages(before_ms=t.now_ms() - t.engine.settings.realtime_retention, limit=0)
        async with t.subscribe(f"run:{run.id}", since=0) as again:
            story = await take(again, 6)
        kept = await t.store.read_messages(channels=[f"run:{run.id}"], after_id=0)
    assert [m.id for m in kept] == [m.id for m in story]
    assert [m.data.get("id", m.data.get("status")) for m in story] == [
        "running",
        "first",
        "nap",
        "told",
        "second",
        "completed",
    ]


async def test_a_subscriber_of_another_store_watches_a_run_a_worker_runs(
    backend: str, app: outlast.Outlast, make_store: Callable[[], Store], store_url: str
) -> None:
    if backend == "memory":
        pytest.skip("memory:// is private to its store")

    @app.function(id="one", trigger="t/one")
    async def one(ctx: Context) -> int:
        return int(await ctx.step.run("only", lambda: 1))

    async with TestEngine(app, store=make_store()) as worker:
        await worker.send(Event(name="t/one"))
        [run] = worker.runs()
        other = open_store(store_url)  # as another process would: its own connection and listener
        async with (
            TestEngine(outlast.Outlast("listener"), store=other) as listener,
            listener.subscribe(f"run:{run.id}") as messages,
        ):
            await worker.run_until_idle()
            got = await take(messages, 3)
    assert [m.data for m in got] == [
        {"status": "running"},
        {"id": "only", "status": "completed"},
        {"status": "completed"},
    ]
