"""One engine drives many apps; two versions of one app share a store (a rolling deploy), in one
process or as two real worker processes, and each run goes to a worker that has its function."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import outlast
from outlast import Context, Event
from outlast.core.clock import VirtualClock
from outlast.core.models import RunFilter
from outlast.runtime.engine import Engine
from outlast.runtime.worker import Worker
from outlast.storage.base import Store
from tests.acceptance.test_cli import cli, outlast_process

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


VERSION = """
import os
import outlast
from outlast import Context

app = outlast.Outlast("deploy")


def make(fid: str) -> None:
    @app.function(id=fid, trigger=f"d/{fid}")
    async def handler(ctx: Context) -> dict:
        return await ctx.step.run("where", lambda: {"pid": os.getpid(), "version": VERSION})


VERSION = "%s"
for fid in %r:
    make(fid)
"""


@pytest.mark.parametrize("order", [("v1", "v3"), ("v3", "v1")])
def test_a_rolling_deploy_of_two_worker_processes_runs_each_function_where_it_is_served(
    tmp_path: Path, order: tuple[str, str]
) -> None:
    """v1 serves {keeper, doomed}, v3 {keeper, newbie}, started in either order (the later sync
    must not forget what the other still serves). Every event starts a run, and each run
    completes in a process that has its function; none fails as "not defined"."""
    db = tmp_path / "deploy.db"
    (tmp_path / "v1.py").write_text(VERSION % ("v1", ["keeper", "doomed"]))
    (tmp_path / "v3.py").write_text(VERSION % ("v3", ["keeper", "newbie"]))
    workers: list[subprocess.Popen[str]] = []
    try:
        for version in order:
            workers.append(
                outlast_process(
                    db, "worker", str(tmp_path / f"{version}.py"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
            )
            deadline = time.monotonic() + 30
            while len(workers) > cli(db, "workers").out.count("deploy") and time.monotonic() < deadline:
                time.sleep(0.05)
        for name, count in (("d/doomed", 6), ("d/newbie", 6), ("d/keeper", 6)):
            for _ in range(count):
                assert "started run" in cli(db, "send", name).out
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            runs = json.loads(cli(db, "runs", "--limit", "100", "--json").out)["runs"]
            if len(runs) == 18 and all(r["status"] in ("completed", "failed") for r in runs):
                break
            time.sleep(0.1)
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(20)
    assert sorted((r["function_id"], r["status"]) for r in runs) == sorted(
        [("doomed", "completed")] * 6 + [("keeper", "completed")] * 6 + [("newbie", "completed")] * 6
    )
    by_function: dict[str, set[str]] = {}
    for r in runs:
        by_function.setdefault(r["function_id"], set()).add(r["output"]["version"])
    assert by_function["doomed"] == {"v1"} and by_function["newbie"] == {"v3"}
