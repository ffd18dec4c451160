"""Pausing a function: its events and cron ticks start no run (each recorded `skipped`, reason
"paused"), its runs in flight run no step body until it is resumed; kept in the database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

import outlast
from outlast import Context, Event
from outlast.storage.base import Store
from outlast.testing import TestEngine


async def test_a_paused_function_records_skipped_runs_and_resumes(app: outlast.Outlast, engine: TestEngine) -> None:
    @app.function(id="work", trigger="t/work")
    async def work(ctx: Context) -> str:
        return "done"

    async with engine as t:
        assert await t.pause_function(work)
        assert not await t.pause_function("work")  # already paused
        await t.send(Event(name="t/work"))
        await t.run_until_idle()
        [skipped] = t.runs()
        assert (skipped.status, skipped.skip_reason) == ("skipped", "paused")
        assert await t.resume_function(work)
        await t.send(Event(name="t/work"))
        await t.run_until_idle()
        statuses = [r.status for r in t.runs()]
    assert statuses == ["skipped", "completed"]


async def test_cron_ticks_of_a_paused_function_are_skipped(app: outlast.Outlast, engine: TestEngine) -> None:
    @app.function(id="tick", trigger=outlast.TriggerCron("*/5 * * * *"))
    async def tick(ctx: Context) -> None:
        return None

    async with engine as t:
        await t.pause_function("tick")
        t.advance("5m")
        await t.run_until_idle()
        runs = t.runs()
    assert [(r.status, r.skip_reason) for r in runs] == [("skipped", "paused")]


async def test_a_run_in_flight_runs_no_step_until_resumed(app: outlast.Outlast, engine: TestEngine) -> None:
    ran: list[str] = []

    @app.function(id="steps", trigger="t/steps")
    async def steps(ctx: Context) -> list[str]:
        await ctx.step.run("one", lambda: ran.append("one"))
        await ctx.step.sleep("nap", "1m")
        await ctx.step.run("two", lambda: ran.append("two"))
        return ran

    async with engine as t:
        await t.send(Event(name="t/steps"))
        await t.run_until_idle()
        await t.pause_function(steps)
        t.advance("1m")
        await t.run_until_idle()
        assert ran == ["one"] and t.runs()[0].status == "running"
        await t.resume_function(steps)
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "completed" and ran == ["one", "two"]


async def test_a_pause_arriving_mid_step_stops_the_run_before_its_next_step(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    ran: list[str] = []

    @app.function(id="mid", trigger="t/mid")
    async def mid(ctx: Context) -> None:
        async def first() -> None:
            entered.set()
            await release.wait()
            ran.append("first")

        await ctx.step.run("first", first)
        await ctx.step.run("second", lambda: ran.append("second"))

    async with engine as t:
        await t.send(Event(name="t/mid"))
        drain = asyncio.create_task(t.run_until_idle())
        await entered.wait()
        await t.pause_function(mid)
        release.set()
        await drain
        assert ran == ["first"] and t.runs()[0].status == "running"
        await t.resume_function(mid)
        await t.run_until_idle()
    assert ran == ["first", "second"]


async def test_the_pause_is_kept_in_the_database(
    app: outlast.Outlast, make_store: Callable[[], Store], backend: str
) -> None:
    if backend == "memory":
        pytest.skip("each memory:// store is a database of its own")

    @app.function(id="kept", trigger="t/kept")
    async def kept(ctx: Context) -> None:
        return None

    store = make_store()
    async with TestEngine(app, store=store) as t:
        await t.pause_function(kept)
    async with TestEngine(app, store=make_store()) as t:  # another engine on the same database
        await t.send(Event(name="t/kept"))
        await t.run_until_idle()
        assert [r.skip_reason for r in t.runs()] == ["paused"]


async def test_pausing_a_function_nobody_serves_is_an_error(app: outlast.Outlast) -> None:
    async with TestEngine(app) as t:
        with pytest.raises(outlast.OutlastError, match="function 'ghost' of app 'test-app': no live worker"):
            await t.pause_function("ghost")


async def test_replay_reruns_the_runs_skipped_while_paused(app: outlast.Outlast, engine: TestEngine) -> None:
    @app.function(id="replayed", trigger="t/r")
    async def replayed(ctx: Context) -> int:
        return int(ctx.event.data["n"])

    async with engine as t:
        await t.pause_function(replayed)
        await t.send([Event(name="t/r", data={"n": n}) for n in (1, 2)])
        await t.run_until_idle()
        await t.resume_function(replayed)
        assert await t.replay(function_id="replayed", status="skipped") == 2
        assert await t.replay(function_id="replayed") == 0  # none failed
        await t.run_until_idle()
        done = sorted(r.output for r in t.runs(status="completed"))
        with pytest.raises(outlast.OutlastError, match="status: expected one of"):
            await t.replay(function_id="replayed", status="running")
    assert done == [1, 2]


async def test_replay_reruns_failed_runs_in_a_time_range(app: outlast.Outlast, engine: TestEngine) -> None:
    outcomes = iter([ValueError("first"), ValueError("second"), None])

    @app.function(id="flaky", trigger="t/f", retries=0)
    async def flaky(ctx: Context) -> str:
        failure = next(outcomes)
        if failure is not None:
            raise failure
        return "ok"

    async with engine as t:
        await t.send(Event(name="t/f"))
        await t.run_until_idle()
        t.advance("1h")
        since = t.now_ms()
        await t.send(Event(name="t/f"))
        await t.run_until_idle()
        assert await t.replay(function_id="flaky", since=since) == 1  # only the second
        await t.run_until_idle()
        statuses = [r.status for r in t.runs()]
    assert statuses == ["failed", "failed", "completed"]
