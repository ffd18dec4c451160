"""Realtime: a run publishes once per run and in order; subscribers see messages live, resume
with `since`, and get clear errors for bad input — on every backend."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

import outlast
from outlast import Context, Event, StepUsageError, SubscriptionError
from outlast.core.realtime import Message
from outlast.runtime.realtime import Subscription
from outlast.storage import open_store
from outlast.storage.base import Store
from outlast.testing import TestEngine

#: a generous bound for a message to arrive on a busy machine; a working subscriber gets it in ms
ARRIVAL_S = 10


async def take(subscription: Subscription, n: int) -> list[Message]:
    got = [await asyncio.wait_for(subscription.next_message(), ARRIVAL_S) for _ in range(n)]
    assert None not in got, "the subscription closed"
    return [m for m in got if m is not None]


def published(messages: list[Message]) -> list[tuple[str, str, Any]]:
    return [(m.channel, m.topic, m.data) for m in messages]


async def test_a_publish_is_sent_once_per_run_in_order_across_replays(app: outlast.Outlast, engine: TestEngine) -> None:
    @app.function(id="progress", trigger="t/go")
    async def progress(ctx: Context) -> str:
        await ctx.step.publish("start", channel="order:1", topic="status", data={"stage": "start"})
        await ctx.step.sleep("nap", "1h")
        await ctx.step.publish("paid", channel="order:1", topic="status", data={"stage": "paid"})
        if ctx.attempt == 0:
            raise RuntimeError("fail once outside any step: the handler replays its publishes")
        return "done"

    async with engine as t:
        async with t.subscribe("order:1") as messages:
            await t.send(Event(name="t/go"))
            await t.run_until_idle()
            t.advance("1h")
            await t.run_until_idle()
            t.advance("1m")
            await t.run_until_idle()
            [run] = t.runs()
            assert run.status == "completed"
            got = await take(messages, 2)
        kept = await t.store.read_messages(channels=["order:1"], after_id=0)
    assert published(got) == [("order:1", "status", {"stage": "start"}), ("order:1", "status", {"stage": "paid"})]
    assert [m.id for m in kept] == [m.id for m in got] and got[0].id < got[1].id
    assert {m.run_id for m in got} == {run.id}


async def test_a_plain_def_handler_publishes(app: outlast.Outlast, engine: TestEngine) -> None:
    @app.function(id="sync", trigger="t/sync")
    def sync(ctx: outlast.SyncContext) -> None:
        ctx.step.publish("one", channel="jobs", topic="log", data="first")
        ctx.step.publish("two", channel="jobs", topic="log", data="second")

    async with engine as t:
        await t.send(Event(name="t/sync"))
        await t.run_until_idle()
        async with t.subscribe("jobs", since=0) as messages:
            got = await take(messages, 2)
    assert [m.data for m in got] == ["first", "second"]


async def test_a_runs_own_channel_carries_its_status_changes_and_step_ends(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    @app.function(id="steps", trigger="t/steps")
    async def steps(ctx: Context) -> int:
        return int(await ctx.step.run("add", lambda: 1 + 1))

    async with engine as t:
        await t.send(Event(name="t/steps"))
        await t.run_until_idle()
        [run] = t.runs()
        async with t.subscribe(f"run:{run.id}", since=0) as messages:
            got = await take(messages, 3)
        async with t.subscribe(f"run:{run.id}", topics=["status"], since=0) as statuses:
            only_status = await take(statuses, 2)
    assert published(got) == [
        (f"run:{run.id}", "status", {"status": "running"}),
        (f"run:{run.id}", "step", {"id": "add", "status": "completed"}),
        (f"run:{run.id}", "status", {"status": "completed"}),
    ]
    assert [m.data["status"] for m in only_status] == ["running", "completed"]


async def test_since_resumes_without_loss_and_a_new_subscriber_starts_at_the_newest(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    @app.function(id="count", trigger="t/count")
    async def count(ctx: Context) -> None:
        for i in range(5):
            await ctx.step.publish(f"n{i}", channel="count", topic="n", data=i)

    async with engine as t:
        await t.send(Event(name="t/count"))
        await t.run_until_idle()
        async with t.subscribe("count", since=0) as first:
            two = await take(first, 2)
        async with t.subscribe("count", since=two[-1].id) as resumed:
            rest = await take(resumed, 3)
        async with t.subscribe("count") as late:
            await t.send(Event(name="t/count"))
            await t.run_until_idle()
            again = await take(late, 5)
    assert [m.data for m in two + rest] == [0, 1, 2, 3, 4]
    assert [m.data for m in again] == [0, 1, 2, 3, 4] and again[0].id > rest[-1].id


async def test_a_slow_subscriber_overflows_its_buffer_and_reads_on_without_loss(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    @app.function(id="flood", trigger="t/flood")
    async def flood(ctx: Context) -> None:
        for i in range(30):
            await ctx.step.publish(f"n{i}", channel="flood", topic="n", data=i)

    async with engine as t:
        hub = await t.engine.realtime()
        hub.buffer_limit = 4
        async with t.subscribe("flood") as slow, t.subscribe("flood") as fast:
            await t.send(Event(name="t/flood"))
            reading = asyncio.ensure_future(take(fast, 30))
            await t.run_until_idle()
            fast_got = await reading
            slow_got = await take(slow, 30)
    assert [m.data for m in fast_got] == list(range(30))
    assert [m.data for m in slow_got] == list(range(30))
    assert slow.overflows >= 1


async def test_bad_publishes_fail_the_step_with_a_clear_error(app: outlast.Outlast, engine: TestEngine) -> None:
    caught: dict[str, str] = {}

    @app.function(id="bad", trigger="t/bad", retries=0)
    async def bad(ctx: Context) -> None:
        for name, channel, data in [
            ("long", "c" * 257, None),
            ("control", "a\nb", None),
            ("big", "ok", "x" * 2000),
        ]:
            try:
                await ctx.step.publish(name, channel=channel, topic="t", data=data)
            except (StepUsageError, outlast.StepError) as exc:
                caught[name] = str(exc)

    async with engine as t:
        t.engine.settings = t.engine.settings.__class__(max_step_output_bytes=1000)
        await t.send(Event(name="t/bad"))
        await t.run_until_idle()
        assert await t.store.read_messages(channels=["ok"], after_id=0) == []
    assert "channel is 257 characters long, the limit is 256" in caught["long"]
    assert "control characters" in caught["control"]
    assert "2002 bytes, the limit is 1000 bytes" in caught["big"]


async def test_bad_subscriptions_are_refused_with_a_clear_error(app: outlast.Outlast, engine: TestEngine) -> None:
    async with engine as t:
        newest = await t.store.last_message_id()
        for channel, options, expected in [
            ("x" * 300, {}, "channel is 300 characters long"),
            ("a\x07b", {}, "control characters"),
            ("ok", {"since": newest + 10}, f"since {newest + 10} is in the future"),
            ("ok", {"since": -1}, "since must be a message id"),
            ("ok", {"topics": "status"}, "topics must be a list of strings"),
        ]:
            with pytest.raises(SubscriptionError, match=expected):
                async with t.subscribe(channel, **options):
                    pass


async def test_messages_reach_a_subscriber_of_another_store_on_the_same_database(
    backend: str, app: outlast.Outlast, make_store: Callable[[], Store], store_url: str
) -> None:
    if backend == "memory":
        pytest.skip("memory:// is private to its store")

    @app.function(id="far", trigger="t/far")
    async def far(ctx: Context) -> None:
        await ctx.step.publish("hello", channel="far", topic="greeting", data="hello")

    async with TestEngine(app, store=make_store()) as publisher:
        other = open_store(store_url)  # as another process would: its own connection and listener
        async with (
            TestEngine(outlast.Outlast("listener"), store=other) as listener,
            listener.subscribe("far") as messages,
        ):
            await publisher.send(Event(name="t/far"))
            await publisher.run_until_idle()
            [got] = await take(messages, 1)
    assert (got.channel, got.data) == ("far", "hello")


async def test_messages_older_than_the_realtime_retention_are_pruned(app: outlast.Outlast, engine: TestEngine) -> None:
    from outlast.runtime.pruner import Pruner
    from outlast.settings import Settings

    @app.function(id="tick", trigger="t/tick")
    async def tick(ctx: Context) -> None:
        await ctx.step.publish("tick", channel="ticks", topic="t", data=ctx.event.data["n"])

    retention = Settings.from_env({"OUTLAST_REALTIME_RETENTION": "10m"}).realtime_retention
    assert retention == 600_000 and Settings().realtime_retention == 3_600_000
    async with engine as t:
        await t.send(Event(name="t/tick", data={"n": 1}))
        await t.run_until_idle()
        t.advance("11m")
        await t.send(Event(name="t/tick", data={"n": 2}))
        await t.run_until_idle()
        removed = await Pruner(t.engine, "test").prune_messages(t.now_ms() - retention)
        kept = await t.store.read_messages(channels=["ticks"], after_id=0)
    assert removed >= 1
    assert [m.data for m in kept] == [2]


async def test_closing_the_engine_ends_a_subscribers_loop(app: outlast.Outlast, engine: TestEngine) -> None:
    async def drain(messages: Subscription) -> list[Message]:
        return [m async for m in messages]

    async with engine as t, t.subscribe("quiet") as messages:
        reading = asyncio.ensure_future(drain(messages))
        await asyncio.sleep(0)  # the loop is waiting for a message
        await t.engine.close()
        assert await asyncio.wait_for(reading, ARRIVAL_S) == []
