"""Reruns, and the dashboard's store reads (counts, per-function numbers, links) — on every backend."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

import outlast
from outlast import Context, Event, NonRetriableError
from outlast.core.models import RunFilter
from outlast.errors import RerunError
from outlast.runtime.rerun import rerun
from outlast.testing import TestEngine


def checkout(app: outlast.Outlast, calls: Counter[str]) -> None:
    def step(name: str, value: Any) -> Any:
        calls[name] += 1
        return value

    def charge(price: dict[str, int]) -> dict[str, int]:
        calls["charge"] += 1
        if price["total"] > 100:
            raise NonRetriableError("card declined")
        return {"charged": price["total"]}

    @app.function(id="checkout", trigger="t/checkout")
    async def run(ctx: Context) -> Any:
        user = await ctx.step.run("user", step, "user", {"id": "u1"})
        price = await ctx.step.run("price", step, "price", {"total": ctx.event.data["total"]})
        paid = await ctx.step.run("charge", charge, price)
        receipt = await ctx.step.run("receipt", step, "receipt", f"sent to {user['id']}")
        return {"paid": paid, "receipt": receipt}


async def failed_run(t: TestEngine, total: int = 500) -> str:
    await t.send(Event(name="t/checkout", data={"total": total}))
    await t.run_until_idle()
    [run] = t.runs(function_id="checkout", status="failed")
    return run.id


async def test_rerun_from_a_step_keeps_the_memo_before_it_and_takes_the_edited_output(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    calls: Counter[str] = Counter()
    checkout(app, calls)
    async with engine as t:
        origin = await failed_run(t)
        new_id = await rerun(t.engine, origin, from_step="charge", output={"charged": 7})
        await t.run_until_idle()
        new = t.get_run(new_id)
        links = await t.store.run_links(new_id)
        origin_links = await t.store.run_links(origin)
    assert new is not None and new.status == "completed"
    assert new.output == {"paid": {"charged": 7}, "receipt": "sent to u1"}
    assert calls == {"user": 1, "price": 1, "charge": 1, "receipt": 1}  # only the steps after `charge` ran again
    assert [s.id for s in new.steps] == ["user", "price", "charge", "receipt"]
    assert new.steps[2].detail == {"edited": True}
    assert (links.rerun_of, links.from_step_key, links.edited) == (origin, new.steps[2].key, True)
    assert origin_links.reruns == [new_id]


async def test_rerun_from_a_step_without_an_output_runs_that_step_again(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    calls: Counter[str] = Counter()
    checkout(app, calls)
    async with engine as t:
        origin = await failed_run(t)
        new_id = await rerun(t.engine, origin, from_step="charge")
        await t.run_until_idle()
        new = t.get_run(new_id)
    assert new is not None and new.status == "failed"
    assert calls == {"user": 1, "price": 1, "charge": 2}


async def test_rerun_from_the_start_runs_every_step_with_the_same_event(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    calls: Counter[str] = Counter()
    checkout(app, calls)
    async with engine as t:
        origin = await failed_run(t)
        new_id = await rerun(t.engine, origin)
        await t.run_until_idle()
        old, new = t.get_run(origin), t.get_run(new_id)
    assert old is not None and new is not None
    assert new.event_ids == old.event_ids and new.status == "failed"
    assert calls == {"user": 2, "price": 2, "charge": 2}


async def test_a_rerun_is_refused_with_a_clear_error_and_writes_nothing(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    @app.function(id="sleepy", trigger="t/sleepy")
    async def sleepy(ctx: Context) -> None:
        await ctx.step.sleep("nap", "1h")

    checkout(app, Counter())
    async with engine as t:
        await t.send(Event(name="t/sleepy"))
        await t.run_until_idle()
        [active] = t.runs(function_id="sleepy")
        origin = await failed_run(t)
        before = len(t.runs())
        with pytest.raises(RerunError, match="is running; cancel it"):
            await rerun(t.engine, active.id)
        with pytest.raises(RerunError, match="has no step 'nope'"):
            await rerun(t.engine, origin, from_step="nope", output=1)
        with pytest.raises(RerunError, match="no run"):
            await rerun(t.engine, "01ARZ3NDEKTSV4RRFFQ69G5FAV")
        assert len(t.runs()) == before


async def test_counts_per_status_stop_at_the_cap_and_follow_the_filter(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    checkout(app, Counter())
    async with engine as t:
        for total in (1, 2, 3, 500, 600):
            await t.send(Event(name="t/checkout", data={"total": total}))
        await t.run_until_idle()
        counts = await t.store.count_runs(RunFilter(app_id="test-app"), cap=10)
        capped = await t.store.count_runs(RunFilter(app_id="test-app"), cap=2)
        other_app = await t.store.count_runs(RunFilter(app_id="elsewhere"), cap=10)
    assert counts.counts == {"queued": 0, "running": 0, "completed": 3, "failed": 2, "cancelled": 0, "skipped": 0}
    assert capped.counts["completed"] == 2 and capped.capped("completed") and not counts.capped("completed")
    assert sum(other_app.counts.values()) == 0


async def test_function_numbers_count_runs_and_failures_per_window(app: outlast.Outlast, engine: TestEngine) -> None:
    checkout(app, Counter())
    async with engine as t:
        for total in (1, 2, 500):
            await t.send(Event(name="t/checkout", data={"total": total}))
        await t.run_until_idle()
        t.advance("2h")
        await t.send(Event(name="t/checkout", data={"total": 3}))
        await t.run_until_idle()
        [stats] = await t.store.function_stats(t.now_ms(), [("test-app", "checkout")])
    assert (stats.hour.runs, stats.hour.failures) == (1, 0)
    assert (stats.day.runs, stats.day.failures) == (4, 1)
    assert stats.day.sampled == 3 and stats.day.p50_ms is not None and stats.backlog == 0
    assert len(stats.day.buckets) == 24 and sum(b.completed for b in stats.day.buckets) == 3
