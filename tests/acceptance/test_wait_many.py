"""wait_for_any and wait_for_all: one step waiting for several events (inngest#1046)."""

from __future__ import annotations

from typing import Any

import pytest

import outlast
from outlast import Context, Event, WaitFor
from outlast.testing import TestEngine

PAID_OR_CANCELLED = [
    WaitFor("shop/paid", match="data.order"),
    WaitFor("shop/cancelled", if_="event.data.order == async.data.order"),
]


async def test_wait_for_any_returns_the_first_match_and_ends_the_other_waits(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    @app.function(id="any", trigger="shop/order")
    async def any_of(ctx: Context) -> Any:
        got = await ctx.step.wait_for_any("paid-or-cancelled", PAID_OR_CANCELLED, timeout="1d")
        return None if got is None else [got.name, got.data["n"]]

    async with engine as t:
        await t.send([Event(name="shop/order", data={"order": o}) for o in ("o1", "o2", "o3")])
        await t.run_until_idle()
        await t.send(Event(name="shop/cancelled", data={"order": "o2", "n": 1}))
        await t.send(Event(name="shop/paid", data={"order": "o1", "n": 2}))
        await t.send(Event(name="shop/paid", data={"order": "o2", "n": 3}))  # o2 ended: resumes nothing
        await t.run_until_idle()
        t.advance("1d")
        await t.run_until_idle()
        o1, o2, o3 = t.runs()
        [step] = o2.steps
    assert (o1.output, o2.output, o3.output) == (["shop/paid", 2], ["shop/cancelled", 1], None)
    assert (step.kind, step.status) == ("wait_for_any", "completed")


async def test_wait_for_all_returns_each_first_match_with_none_at_the_timeout(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    @app.function(id="all", trigger="t/start")
    async def all_of(ctx: Context) -> Any:
        got = await ctx.step.wait_for_all(
            "both", [WaitFor("t/a"), WaitFor("t/b", if_="async.data.ok == true")], timeout="1h"
        )
        return [None if e is None else e.data for e in got]

    async with engine as t:
        await t.send([Event(name="t/start"), Event(name="t/start")])
        await t.run_until_idle()
        await t.send(Event(name="t/a", data={"n": 1}))
        await t.send(Event(name="t/a", data={"n": 2}))  # not the first: ignored
        await t.run_until_idle()
        first, second = t.runs()
        assert first.status == "running"
        await t.send(Event(name="t/b", data={"ok": False}))
        t.advance("1h")
        await t.run_until_idle()
        first, second = t.runs()
    assert first.output == [{"n": 1}, None] and second.output == [{"n": 1}, None]


async def test_wait_for_all_completes_when_every_wait_matched(app: outlast.Outlast, engine: TestEngine) -> None:
    @app.function(id="all-done", trigger="t/start")
    async def all_done(ctx: Context) -> Any:
        got = await ctx.step.wait_for_all("both", [WaitFor("t/a"), WaitFor("t/b")], timeout="1h", lookback="10m")
        return [e.data if e else None for e in got]

    async with engine as t:
        await t.send(Event(name="t/b", data={"early": True}))  # before the wait: seen by lookback
        t.advance("1m")
        await t.send(Event(name="t/start"))
        await t.run_until_idle()
        await t.send(Event(name="t/a", data={"n": 1}))
        await t.run_until_idle()
        [run] = t.runs(function_id="all-done")
    assert run.status == "completed" and run.output == [{"n": 1}, {"early": True}]


@pytest.mark.parametrize(
    ("waits", "fragment"),
    [
        ([WaitFor("t/x")] * 11, "waits: expected 1 to 10 WaitFor, got 11"),
        ([], "waits: expected 1 to 10 WaitFor, got 0"),
        (["t/x"], "waits: expected a list of outlast.WaitFor"),
        ([WaitFor("t/x", if_="async.data.(")], "invalid expression"),
    ],
)
async def test_bad_multi_waits_fail_the_run_naming_the_step(app: outlast.Outlast, waits: Any, fragment: str) -> None:
    @app.function(id="bad-any", trigger="t/go")
    async def bad(ctx: Context) -> None:
        await ctx.step.wait_for_any("the-wait", waits, timeout="1h")

    async with TestEngine(app) as t:
        await t.send(Event(name="t/go"))
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "failed" and run.error is not None
    assert "'the-wait'" in run.error["message"] and fragment in run.error["message"]
