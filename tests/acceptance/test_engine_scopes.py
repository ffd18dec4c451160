"""One engine drives many apps; two versions of one app share a store (a rolling deploy) and each
run goes to a worker that has its function."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import outlast
from outlast import Context, Event
from outlast.core.clock import VirtualClock
from outlast.core.models import RunFilter
from outlast.runtime.engine import Engine
from outlast.runtime.worker import Worker
from outlast.storage.base import Store

T0 = 1_800_000_000_000


def engine_for(store: Store, clock: VirtualClock) -> Engine:
    return Engine(store, clock, outlast.Settings(database_url="unused://"))


async def test_one_engine_runs_the_functions_of_several_apps(make_store: Callable[[], Store]) -> None:
    shop, billing = outlast.Outlast("shop"), outlast.Outlast("billing")

    @shop.function(id="order", trigger="shop/order")
    async def order(ctx: Context) -> str:
        return await ctx.step.run("pack", lambda: "packed")

    @billing.function(id="invoice", trigger="shop/order")
    async def invoice(ctx: Context) -> str:
        return await ctx.step.run("bill", lambda: "billed")

    engine = engine_for(make_store(), VirtualClock(T0))
    await engine.add_source(shop)
    await engine.add_source(billing)
    await engine.open()
    try:
        await engine.send(Event(name="shop/order"))
        await Worker(engine).drain()
        runs = await engine.store.list_runs(RunFilter())
    finally:
        await engine.close()
    assert sorted((r.app_id, r.function_id, r.status, r.output) for r in runs) == [
        ("billing", "invoice", "completed", "billed"),
        ("shop", "order", "completed", "packed"),
    ]


def app_version(functions: list[str]) -> outlast.Outlast:
    app = outlast.Outlast("deploy")
    for fid in functions:

        @app.function(id=fid, trigger=f"d/{fid}")
        async def handler(ctx: Context, fid: str = fid) -> str:
            return fid

    return app


async def test_two_versions_of_an_app_each_run_only_what_they_have_and_nothing_is_lost(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/deploy.db"
    clock = VirtualClock(T0)
    v1 = Engine.from_settings(outlast.Settings(database_url=url), clock=clock)
    v3 = Engine.from_settings(outlast.Settings(database_url=url), clock=clock)
    await v1.add_source(app_version(["keeper", "doomed"]))
    await v3.add_source(app_version(["keeper", "newbie"]))
    await v1.open()
    await v3.open()  # v3 syncs last: v1's `doomed` must stay known, since v1 still serves it
    try:
        await v1.refresh_registry(force=True)
        await v3.send(
            [Event(name="d/doomed") for _ in range(3)]
            + [Event(name="d/newbie") for _ in range(3)]
            + [Event(name="d/keeper") for _ in range(4)]
        )
        await Worker(v3).drain()  # v3 cannot run `doomed`: those runs wait for v1
        after_v3 = {(r.function_id, r.status) for r in await v3.store.list_runs(RunFilter(limit=100))}
        assert ("doomed", "queued") in after_v3 and ("newbie", "completed") in after_v3
        await Worker(v1).drain()
        runs = await v1.store.list_runs(RunFilter(limit=100))
    finally:
        await v1.close()
        await v3.close()
    done = sorted((r.function_id, r.status) for r in runs)
    assert done == [("doomed", "completed")] * 3 + [("keeper", "completed")] * 4 + [("newbie", "completed")] * 3
