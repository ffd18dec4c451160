"""A long list of events in one send (the bulk path of ingest) stores exactly what sending them
one by one stores, and a send that fails part way stores nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import outlast
from outlast import Context, Event
from outlast.core.models import EventFilter, EventRecord, RunFilter
from outlast.errors import StoreDataError
from outlast.storage import open_store
from outlast.storage.sql.bulk_ingest import BULK_MIN
from outlast.testing import TestEngine
from tests.conftest import new_store_url

T0 = 1_700_000_000_000
EVENTS = 120


@pytest.fixture
def other_store_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A second, empty store of the parametrised backend (beside `store_url`)."""
    yield from new_store_url(backend, tmp_path, "other")


def mixed_app() -> outlast.Outlast:
    """Functions of every kind an event can meet: plain, cancel rules, waits, flow control."""
    app = outlast.Outlast("bulk", database_url="memory://")

    @app.function(id="plain", trigger="b/go", concurrency=outlast.Concurrency(limit=2, key="event.data.n % 3"))
    async def plain(ctx: Context) -> Any:
        return await ctx.step.run("a", lambda: ctx.event.data["n"])

    @app.function(
        id="order",
        trigger="b/order",
        cancel=[outlast.Cancel(event="b/cancel", match="data.id")],
        timeouts=outlast.Timeouts(start="1h"),
    )
    async def order(ctx: Context) -> None:
        await ctx.step.sleep("nap", "1h")

    @app.function(id="job", trigger="b/job", cancel=[outlast.Cancel(event="b/stop", match="data.id")])
    async def job(ctx: Context) -> None:  # no run of it waits before the send: b/stop is new to the store
        await ctx.step.sleep("nap", "1h")

    @app.function(id="waiter", trigger="b/wait")
    async def waiter(ctx: Context) -> Any:
        got = await ctx.step.wait_for_event("reply", event="b/reply", match="data.id", timeout="1h")
        return None if got is None else got.data["n"]

    @app.function(id="idem", trigger="b/idem", idempotency="event.data.k")
    async def idem(ctx: Context) -> None:
        return None

    @app.function(id="rated", trigger="b/rated", rate_limit=outlast.RateLimit(limit=3, period="1h"))
    async def rated(ctx: Context) -> None:
        return None

    @app.function(id="throttled", trigger="b/rated", throttle=outlast.Throttle(limit=1, period="1m"))
    async def throttled(ctx: Context) -> None:
        return None

    @app.function(id="debounced", trigger="b/deb", debounce=outlast.Debounce(period="1m"))
    async def debounced(ctx: Context) -> None:
        return None

    @app.function(id="batched", trigger="b/batch", batch=outlast.Batch(max_size=3, timeout="1m"))
    async def batched(ctx: Context) -> None:
        return None

    @app.function(id="single", trigger="b/single", singleton=outlast.Singleton(mode="cancel"))
    async def single(ctx: Context) -> None:
        await ctx.step.sleep("nap", "1h")

    @app.function(id="on-cancel", trigger="inngest/function.cancelled")
    async def on_cancel(ctx: Context) -> None:
        return None

    return app


def mixed_events(n: int) -> list[Event]:
    """Events of every kind, in an order where earlier ones matter to later ones."""
    out = []
    for i in range(n):
        kind = i % 10
        if i % 40 == 10:  # stops the job just before it, whose cancel wait is not stored yet
            out.append(Event(name="b/stop", data={"n": i, "id": f"j{i - 1}"}))
        elif kind == 0:  # dedupe ids: each used twice in the batch, and one sent before it
            out.append(Event(name="b/go", id=f"d{i // 40}" if i % 40 else "before", data={"n": i}))
        elif kind == 1:
            out.append(Event(name="b/order", data={"n": i, "id": f"o{i}"}))
        elif kind == 2:  # cancels the order just before it; every other one an order that comes later
            out.append(Event(name="b/cancel", data={"n": i, "id": f"o{i - 1 if i % 20 == 2 else i + 9}"}))
        elif kind == 3:  # resolves a waiting run; the second reply to a wait finds it resolved
            out.append(Event(name="b/reply", data={"n": i, "id": f"w{(i // 20) % 4}"}))
        elif kind == 4:
            out.append(Event(name="b/idem", data={"n": i, "k": i % 3}))
        elif kind == 5:
            out.append(Event(name="b/rated", data={"n": i}))
        elif kind == 6:
            out.append(Event(name="b/deb", data={"n": i}))
        elif kind == 7:
            out.append(Event(name="b/batch", data={"n": i}))
        elif kind == 8:
            out.append(Event(name="b/single", data={"n": i}))
        else:
            out.append(Event(name="b/job", data={"n": i, "id": f"j{i}"}))
    return out


async def prepared(url: str) -> TestEngine:
    """An engine whose store already holds waiting runs, a cancellable order and a dedupe id."""
    t = TestEngine(mixed_app(), store=open_store(url), start_ms=T0)
    await t.__aenter__()
    await t.send([Event(name="b/wait", data={"n": -1 - w, "id": f"w{w}"}) for w in range(4)])
    await t.send(Event(name="b/order", data={"n": -10, "id": "o19"}))
    await t.send(Event(name="b/go", id="before", data={"n": -20}))
    await t.run_until_idle()
    return t


def label(event: dict[str, Any]) -> Any:
    """An event told apart without its ids: user events by `n`, system events by what they are about."""
    data = event.get("data") or {}
    if event["name"].startswith("inngest/"):
        return event["name"], data.get("function_id"), label(data["event"])
    return event["name"], data.get("n")


async def stored(t: TestEngine) -> dict[str, Any]:
    """Everything the store holds about the app, with ids replaced by what they stand for."""
    store, runs = t.store, []
    for found in await store.list_runs(RunFilter(limit=10_000)):
        run = await store.get_run(found.id)
        assert run is not None
        triggers = await store.get_events(run.event_ids)
        jobs = await store.run_jobs(run.id)
        runs.append(
            (
                run.function_id,
                run.status,
                run.skip_reason,
                [label(e.to_dict()) for e in triggers],
                [
                    (s.id, s.status, label(s.output) if s.kind == "wait_for_event" and s.output else None)
                    for s in run.steps
                ],
                sorted((j.kind, j.due_at, j.timeout, j.leased) for j in jobs),
            )
        )
    events = []
    for e in await store.list_events(EventFilter(limit=10_000)):
        effects = sorted((x.effect, x.function_id) for x in await store.event_effects(e.id))
        events.append((label(e.to_dict()), e.dedupe_id, effects))
    return {"runs": sorted(runs, key=repr), "events": sorted(events, key=repr)}


async def test_one_send_of_many_events_stores_what_sending_them_one_by_one_stores(
    store_url: str, other_store_url: str
) -> None:
    events = mixed_events(EVENTS)
    assert len(events) >= BULK_MIN
    one_by_one, bulk = await prepared(store_url), await prepared(other_store_url)
    try:
        for e in events:
            await one_by_one.send(e)
        await bulk.send(events)
        expected = await stored(one_by_one)
        assert await stored(bulk) == expected
        assert {r[1] for r in expected["runs"]} >= {"queued", "running", "cancelled", "skipped"}
        assert any(s[1] == "completed" for r in expected["runs"] if r[0] == "waiter" for s in r[4])
        for t in (one_by_one, bulk):  # and the runs go on the same way
            t.advance("2h")
            await t.run_until_idle()
        assert await stored(bulk) == await stored(one_by_one)
    finally:
        await one_by_one.__aexit__()
        await bulk.__aexit__()


async def test_a_send_refused_by_the_database_part_way_stores_nothing(engine: TestEngine) -> None:
    engine.app.function(id="plain", trigger="b/go")(lambda ctx: None)
    async with engine as t:
        records = t.engine.validate([Event(name="b/go", data={"n": i}) for i in range(50_000)])
        records[49_999] = replace(records[49_999], ts=2**70)  # past what a BIGINT holds
        with pytest.raises(StoreDataError, match="refused a value"):
            await t.store.ingest(records, t.now_ms())
        assert await t.store.list_events(EventFilter(limit=1)) == []
        assert await t.store.list_runs(RunFilter(limit=1)) == []
        assert len(await t.send([Event(name="b/go", data={"n": i}) for i in range(BULK_MIN)])) == BULK_MIN
        assert len(await t.store.list_runs(RunFilter(limit=1000))) == BULK_MIN


async def test_a_send_that_fails_after_storing_part_of_its_runs_stores_nothing(engine: TestEngine) -> None:
    app = engine.app
    app.function(id="plain", trigger="b/go")(lambda ctx: None)
    app.function(id="cancellable", trigger="b/order", cancel=[outlast.Cancel(event="b/cancel")])(lambda ctx: None)
    async with engine as t:
        planner = t.engine.planner
        plan, calls = planner.plan, 0

        def failing_plan(event: EventRecord, now_ms: int) -> Any:
            nonlocal calls
            calls += 1
            if calls == 3_000:
                raise RuntimeError("the planner failed")
            return plan(event, now_ms)

        planner.plan = failing_plan  # type: ignore[method-assign]
        names = ["b/go", "b/go", "b/order", "b/cancel"]  # a cancel is processed alone: runs are stored before it
        with pytest.raises(RuntimeError, match="the planner failed"):
            await t.send([Event(name=names[i % 4], data={"n": i}) for i in range(4_000)])
        assert calls == 3_000
        assert await t.store.list_events(EventFilter(limit=1)) == []
        assert await t.store.list_runs(RunFilter(limit=1)) == []
