"""Lookback: a wait resolved at once by a matching event that came before it began (inngest#1433)."""

from __future__ import annotations

from typing import Any

import pytest

import outlast
from outlast import Context, Event
from outlast.testing import TestEngine


async def test_an_event_sent_before_the_wait_resolves_it_with_lookback(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    @app.function(id="late-waiter", trigger="t/start")
    async def late_waiter(ctx: Context) -> Any:
        await ctx.step.sleep("first", "1m")
        got = await ctx.step.wait_for_event("w", event="t/paid", match="data.order", timeout="1h", lookback="10m")
        return None if got is None else got.data

    async with engine as t:
        await t.send([Event(name="t/start", data={"order": "o1"}), Event(name="t/start", data={"order": "o2"})])
        await t.run_until_idle()
        await t.send(Event(name="t/paid", data={"order": "o2", "n": 0}))  # another order
        t.advance("10s")
        await t.send(Event(name="t/paid", data={"order": "o1", "n": 1}))  # before o1's wait begins
        t.advance("10s")
        await t.send(Event(name="t/paid", data={"order": "o1", "n": 2}))
        t.advance("1m")
        await t.run_until_idle()
        o1, o2 = t.runs()
    assert o1.status == "completed" and o1.output == {"order": "o1", "n": 1}  # the earliest
    assert o2.status == "completed" and o2.output == {"order": "o2", "n": 0}
    assert o1.steps[1].ended_at == o1.steps[1].started_at  # at once, not at the timeout


async def test_lookback_sees_only_its_window_and_never_returns_an_event_twice(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    @app.function(id="twice", trigger="t/start")
    async def twice(ctx: Context) -> list[Any]:
        await ctx.step.sleep("first", "10m")
        got = []
        for i in range(3):
            e = await ctx.step.wait_for_event(
                f"w{i}", event="t/tick", if_="async.data.n > 0", timeout="1m", lookback="5m"
            )
            got.append(None if e is None else e.data["n"])
        return got

    async with engine as t:
        await t.send(Event(name="t/start"))
        await t.run_until_idle()
        await t.send(Event(name="t/tick", data={"n": 1}))  # 10 minutes before the waits: outside the window
        t.advance("6m")
        await t.send([Event(name="t/tick", data={"n": 0}), Event(name="t/tick", data={"n": 2})])
        t.advance("1m")
        await t.send(Event(name="t/tick", data={"n": 3}))
        t.advance("3m")
        await t.run_until_idle()
        t.advance("1m")
        await t.run_until_idle()
        [run] = t.runs()
    assert run.output == [2, 3, None]


async def test_without_lookback_an_earlier_event_is_not_seen(app: outlast.Outlast, engine: TestEngine) -> None:
    @app.function(id="plain", trigger="t/start")
    async def plain(ctx: Context) -> bool:
        await ctx.step.sleep("first", "1m")
        return await ctx.step.wait_for_event("w", event="t/paid", timeout="1h") is not None

    async with engine as t:
        await t.send(Event(name="t/start"))
        await t.run_until_idle()
        await t.send(Event(name="t/paid"))
        t.advance("1m")
        await t.run_until_idle()
        assert t.runs()[0].status == "running"


@pytest.mark.parametrize(("lookback", "fragment"), [("8d", "lookback: must be at most 7 days"), ("x", "lookback")])
async def test_a_lookback_over_7_days_fails_the_step_naming_it(
    app: outlast.Outlast, lookback: str, fragment: str
) -> None:
    @app.function(id="bad-lookback", trigger="t/bl")
    async def bad(ctx: Context) -> None:
        await ctx.step.wait_for_event("the-wait", event="t/x", timeout="1h", lookback=lookback)

    async with TestEngine(app) as t:
        await t.send(Event(name="t/bl"))
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "failed" and run.error is not None
    assert "'the-wait'" in run.error["message"] and fragment in run.error["message"]


async def test_events_after_the_first_lookback_wait_are_found_by_index(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    @app.function(id="indexed", trigger="t/start")
    async def indexed(ctx: Context) -> Any:
        await ctx.step.sleep("first", ctx.event.data["delay"])
        got = await ctx.step.wait_for_event("w", event="t/paid", match="data.order", timeout="1h", lookback="1h")
        return None if got is None else got.data["n"]

    async with engine as t:
        await t.send(Event(name="t/start", data={"order": "a", "delay": "1m"}))
        await t.send(Event(name="t/start", data={"order": "b", "delay": "10m"}))
        await t.run_until_idle()
        t.advance("1m")
        await t.run_until_idle()  # a's wait registers the field: from now on ingest indexes it
        await t.send([Event(name="t/paid", data={"order": "b", "n": i}) for i in range(3)])
        await t.send(Event(name="t/paid", data={"order": "a", "n": 9}))
        t.advance("9m")
        await t.run_until_idle()
        a, b = t.runs()
    assert (a.output, b.output) == (9, 0)
