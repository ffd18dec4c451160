"""A running worker resumes a run whose wait no index can find (`||`), and a cancel rule of that
kind cancels: both are matched after their event's ingest, by the worker's matcher."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import outlast
from outlast import Context, Event
from outlast.core.clock import SystemClock
from outlast.runtime.engine import Engine
from outlast.runtime.worker import Worker
from outlast.settings import Settings
from outlast.storage.base import Store


async def test_a_worker_resumes_and_cancels_runs_on_expressions_no_index_finds(
    app: outlast.Outlast, make_store: Callable[[], Store]
) -> None:
    @app.function(id="waiter", trigger="t/order")
    async def waiter(ctx: Context) -> Any:
        paid = await ctx.step.wait_for_event(
            "paid", event="t/paid", timeout="1h", if_="event.data.id == async.data.id || async.data.all == true"
        )
        return None if paid is None else paid.data

    @app.function(
        id="cancellable",
        trigger="t/job",
        cancel=[outlast.Cancel(event="t/stop", if_="async.data.id == event.data.id || async.data.all == true")],
    )
    async def cancellable(ctx: Context) -> None:
        await ctx.step.sleep("long", "1h")

    engine = Engine(make_store(), SystemClock(), Settings(database_url="memory://"))
    await engine.add_source(app)
    await engine.open()
    stop = asyncio.Event()
    worker = asyncio.create_task(Worker(engine).run(stop))
    try:
        await engine.send([Event(name="t/order", data={"id": 1}), Event(name="t/job", data={"id": 2})])
        await _until(
            engine,
            lambda runs: (
                {r.function_id: r.status for r in runs} == {"waiter": "running", "cancellable": "running"}
                and _waiting(runs)
            ),
        )
        await engine.send([Event(name="t/paid", data={"id": 1, "amount": 3}), Event(name="t/stop", data={"id": 2})])
        runs = await _until(engine, lambda runs: all(r.status in ("completed", "cancelled") for r in runs))
    finally:
        stop.set()
        await worker
        await engine.close()
    by_function = {r.function_id: r for r in runs}
    assert by_function["waiter"].status == "completed" and by_function["waiter"].output == {"id": 1, "amount": 3}
    assert by_function["cancellable"].status == "cancelled"


def _waiting(runs: list[Any]) -> bool:
    return all(any(s.status in ("waiting", "sleeping") for s in r.steps) for r in runs)


async def _until(engine: Engine, ok: Callable[[list[Any]], bool]) -> list[Any]:
    from outlast.core.models import RunFilter

    deadline = asyncio.get_running_loop().time() + 60
    while True:
        listed = await engine.store.list_runs(RunFilter(limit=10))
        runs = [r for r in [await engine.store.get_run(x.id) for x in listed] if r is not None]
        if len(runs) == 2 and ok(runs):
            return runs
        assert asyncio.get_running_loop().time() < deadline, [(r.function_id, r.status) for r in runs]
        await asyncio.sleep(0.01)
