"""Concurrency, throttle, rate limit, debounce, batching, priority, singleton and cron."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

import outlast
from outlast import Context, Event
from outlast.testing import TestEngine

MIDNIGHT = int(datetime(2026, 1, 5, tzinfo=UTC).timestamp() * 1000)  # a Monday


class Gauge:
    """Counts step bodies executing at once, overall and per key."""

    def __init__(self) -> None:
        self.now: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()

    async def hold(self, key: str) -> None:
        for k in ("*", key):
            self.now[k] += 1
            self.peak[k] = max(self.peak[k], self.now[k])
        await asyncio.sleep(0.002)
        for k in ("*", key):
            self.now[k] -= 1


async def test_concurrency_limits_steps_executing_at_once(app: outlast.Outlast, engine: TestEngine) -> None:
    gauge = Gauge()

    @app.function(id="limited", trigger="t/c", concurrency=outlast.Concurrency(limit=5))
    async def limited(ctx: Context) -> None:
        for i in range(2):
            await ctx.step.run(f"s{i}", gauge.hold, "x")

    async with engine as t:
        await t.send([Event(name="t/c") for _ in range(100)])
        await t.run_until_idle()
        assert len(t.runs(status="completed")) == 100
    assert gauge.peak["*"] == 5


async def test_concurrency_keys_have_independent_limits(app: outlast.Outlast, engine: TestEngine) -> None:
    gauge = Gauge()

    @app.function(id="per-user", trigger="t/u", concurrency=outlast.Concurrency(limit=2, key="event.data.user"))
    async def per_user(ctx: Context) -> None:
        await ctx.step.run("work", gauge.hold, ctx.event.data["user"])

    async with engine as t:
        await t.send([Event(name="t/u", data={"user": u}) for u in ("a", "b", "c") for _ in range(10)])
        await t.run_until_idle()
        assert len(t.runs(status="completed")) == 30
    assert (gauge.peak["a"], gauge.peak["b"], gauge.peak["c"]) == (2, 2, 2)
    assert gauge.peak["*"] == 6


async def test_throttle_spreads_run_starts_at_the_configured_rate(app: outlast.Outlast, make_store: Any) -> None:
    @app.function(id="throttled", trigger="t/th", throttle=outlast.Throttle(limit=2, period="6s", burst=1))
    async def throttled(ctx: Context) -> None:
        return None

    async with TestEngine(app, store=make_store(), start_ms=MIDNIGHT) as t:
        await t.send([Event(name="t/th", data={"i": i}) for i in range(6)])
        for _ in range(10):
            await t.run_until_idle()
            t.advance("1s")
        starts = sorted((r.started_at or 0) - MIDNIGHT for r in t.runs())
    assert starts == [0, 0, 0, 3000, 6000, 9000]  # limit + burst at once, then one every period/limit


async def test_rate_limit_skips_and_records_the_excess(app: outlast.Outlast, engine: TestEngine) -> None:
    @app.function(id="limited-rate", trigger="t/rl", rate_limit=outlast.RateLimit(limit=2, period="1h"))
    async def limited_rate(ctx: Context) -> None:
        return None

    async with engine as t:
        await t.send([Event(name="t/rl") for _ in range(5)])
        await t.run_until_idle()
        runs = t.runs()
        t.advance("1h")
        await t.send(Event(name="t/rl"))
        await t.run_until_idle()
        later = t.runs()
    assert Counter(r.status for r in runs) == {"completed": 2, "skipped": 3}
    assert {r.skip_reason for r in runs if r.status == "skipped"} == {"rate_limit"}
    assert Counter(r.status for r in later) == {"completed": 3, "skipped": 3}


async def test_debounce_runs_once_with_the_last_event(app: outlast.Outlast, engine: TestEngine) -> None:
    @app.function(id="debounced", trigger="t/d", debounce=outlast.Debounce(period="10s", key="event.data.doc"))
    async def debounced(ctx: Context) -> Any:
        return ctx.event.data

    async with engine as t:
        for i in range(3):
            await t.send([Event(name="t/d", data={"doc": "a", "v": i}), Event(name="t/d", data={"doc": "b", "v": i})])
            await t.run_until_idle()
            t.advance("5s")
        assert t.runs(status="completed") == []
        t.advance("5s")
        await t.run_until_idle()
        outputs = sorted(str(r.output) for r in t.runs(status="completed"))
    assert outputs == [str({"doc": "a", "v": 2}), str({"doc": "b", "v": 2})]


async def test_debounce_timeout_caps_the_total_delay(app: outlast.Outlast, make_store: Any) -> None:
    @app.function(id="capped", trigger="t/dc", debounce=outlast.Debounce(period="10s", timeout="15s"))
    async def capped(ctx: Context) -> Any:
        return ctx.event.data["v"]

    async with TestEngine(app, store=make_store(), start_ms=MIDNIGHT) as t:
        for i in range(4):  # an event every 4 s would postpone a plain debounce forever
            await t.send(Event(name="t/dc", data={"v": i}))
            await t.run_until_idle()
            t.advance("4s" if i < 3 else "3s")
        await t.run_until_idle()
        runs = t.runs(status="completed")
    assert runs[0].started_at == MIDNIGHT + 15_000 and runs[0].output == 3


async def test_batches_close_on_size_and_on_timeout_per_key(app: outlast.Outlast, engine: TestEngine) -> None:
    @app.function(id="batched", trigger="t/b", batch=outlast.Batch(max_size=3, timeout="10s", key="event.data.k"))
    async def batched(ctx: Context) -> list[Any]:
        return [e.data["i"] for e in ctx.events]

    async with engine as t:
        await t.send([Event(name="t/b", data={"k": "x", "i": i}) for i in range(7)])
        await t.send([Event(name="t/b", data={"k": "y", "i": 100})])
        await t.run_until_idle()
        full = sorted(r.output for r in t.runs(status="completed"))
        t.advance("10s")
        await t.run_until_idle()
        everything = sorted(r.output for r in t.runs(status="completed"))
    assert full == [[0, 1, 2], [3, 4, 5]]
    assert everything == [[0, 1, 2], [3, 4, 5], [6], [100]]


async def test_priority_moves_queued_runs_ahead(app: outlast.Outlast, engine: TestEngine) -> None:
    order: list[str] = []

    @app.function(
        id="prioritised",
        trigger="t/p",
        concurrency=outlast.Concurrency(limit=1),
        priority=outlast.Priority(run="event.data.vip ? 120 : 0"),
    )
    async def prioritised(ctx: Context) -> None:
        await ctx.step.run("record", lambda: order.append(ctx.event.data["name"]))

    async with engine as t:
        await t.send([Event(name="t/p", data={"name": f"n{i}", "vip": False}) for i in range(4)])
        await t.send(Event(name="t/p", data={"name": "vip", "vip": True}))
        await t.run_until_idle()
    assert order[0] == "vip" and order[1:] == ["n0", "n1", "n2", "n3"]


@pytest.mark.parametrize("mode", ["skip", "cancel"])
async def test_singleton_allows_one_active_run_per_key(app: outlast.Outlast, engine: TestEngine, mode: str) -> None:
    @app.function(id="single", trigger="t/s", singleton=outlast.Singleton(key="event.data.user", mode=mode))
    async def single(ctx: Context) -> Any:
        await ctx.step.sleep("hold", "1m")
        return ctx.event.data["n"]

    async with engine as t:
        await t.send(Event(name="t/s", data={"user": "a", "n": 1}))
        await t.run_until_idle()
        await t.send([Event(name="t/s", data={"user": "a", "n": 2}), Event(name="t/s", data={"user": "b", "n": 3})])
        await t.run_until_idle()
        t.advance("1m")
        await t.run_until_idle()
        runs = {r.output if r.status == "completed" else r.status: r for r in t.runs(function_id="single")}
    if mode == "skip":
        assert set(runs) == {1, 3, "skipped"} and runs["skipped"].skip_reason == "singleton"
    else:
        assert set(runs) == {2, 3, "cancelled"}


async def test_cron_fires_once_per_tick_and_catches_up_once(app: outlast.Outlast, make_store: Any) -> None:
    @app.function(id="nightly", trigger=outlast.TriggerCron("TZ=Europe/Paris 0 9 * * *"))
    async def nightly(ctx: Context) -> str:
        return ctx.event.name

    async with TestEngine(app, store=make_store(), start_ms=MIDNIGHT) as t:
        await t.run_until_idle()
        assert t.runs() == []
        t.advance("8h")  # 09:00 in Paris is 08:00 UTC in January
        await t.run_until_idle()
        t.advance("1m")
        await t.run_until_idle()
        assert [r.output for r in t.runs()] == ["inngest/scheduled.timer"]
        t.advance("5d")  # five ticks missed while nothing ran
        await t.run_until_idle()
        assert len(t.runs()) == 2
        t.advance("1d")
        await t.run_until_idle()
        assert len(t.runs()) == 3


async def test_one_run_until_idle_runs_a_cron_tick_that_came_due(app: outlast.Outlast, make_store: Any) -> None:
    @app.function(id="hourly", trigger=outlast.TriggerCron("0 * * * *"))
    async def hourly(ctx: Context) -> str:
        return await ctx.step.run("report", lambda: "reported")

    async with TestEngine(app, store=make_store(), start_ms=MIDNIGHT) as t:
        t.advance("1h")
        await t.run_until_idle()
        assert [(r.status, r.output) for r in t.runs()] == [("completed", "reported")]


async def test_cron_fires_once_per_tick_across_two_workers(app: outlast.Outlast, tmp_path: Any) -> None:
    @app.function(id="every-minute", trigger=outlast.TriggerCron("* * * * *"))
    async def every_minute(ctx: Context) -> None:
        return None

    url = f"sqlite:///{tmp_path}/shared.db"
    async with (
        TestEngine(app, database_url=url, start_ms=MIDNIGHT) as a,
        TestEngine(app, database_url=url, start_ms=MIDNIGHT) as b,
    ):
        for _ in range(10):
            a.advance("1m")
            b.advance("1m")
            await asyncio.gather(a.run_until_idle(), b.run_until_idle())
        assert len(a.runs()) == 10


def test_flow_control_options_are_validated() -> None:
    app = outlast.Outlast("cfg", database_url="memory://")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"concurrency": outlast.Concurrency(limit=0)}, "concurrency.limit"),
        ({"concurrency": [outlast.Concurrency(1)] * 3}, "'concurrency'"),
        ({"concurrency": outlast.Concurrency(1, key="event.data.(")}, "concurrency.key"),
        ({"concurrency": outlast.Concurrency(1, scope="world")}, "concurrency.scope"),  # type: ignore[arg-type]
        ({"throttle": outlast.Throttle(limit=1, period="0s")}, "throttle.period"),
        ({"rate_limit": outlast.RateLimit(limit=1, period="25h")}, "rate_limit.period"),
        ({"debounce": outlast.Debounce(period="8d")}, "debounce.period"),
        ({"batch": outlast.Batch(max_size=1, timeout="1s")}, "batch.max_size"),
        ({"batch": outlast.Batch(max_size=5, timeout="1s"), "debounce": outlast.Debounce("1s")}, "'batch'"),
        ({"singleton": outlast.Singleton(mode="queue")}, "singleton.mode"),  # type: ignore[arg-type]
        ({"priority": outlast.Priority(run="event.data.(")}, "priority.run"),
        ({"trigger": outlast.TriggerCron("61 * * * *")}, "trigger.cron"),
        ({"trigger": outlast.TriggerCron("TZ=Mars/Olympus 0 9 * * *")}, "unknown time zone"),
    ]
    for i, (options, fragment) in enumerate(cases):
        options.setdefault("trigger", "t/x")
        with pytest.raises(outlast.FunctionConfigError, match=rf"'f{i}'.*{fragment}"):
            app.function(id=f"f{i}", **options)(lambda ctx: None)
    assert app.functions == {}
