"""The new-user trial's reproductions (shared/reviews/new-user-trial.md, issue 12) that main has
fixed, pinned end to end on every backend: a swallowed suspension, an oversized output, an invoke
of a function nobody serves, a cancel's trace, and a rolling deploy of two real worker processes."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import outlast
from outlast import Context, Event
from outlast.core.models import EventFilter
from outlast.testing import TestEngine
from tests.acceptance.test_cli import cli, outlast_process


async def test_a_bare_except_around_a_sleep_cannot_finish_the_run_early(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    @app.function(id="swallow", trigger="t/swallow")
    async def swallow(ctx: Context) -> str:
        try:
            await ctx.step.sleep("nap", "1h")
        except BaseException:  # the trial's code: it must not end the run
            return "swallowed"
        return "slept"

    async with engine as t:
        await t.send(Event(name="t/swallow"))
        await t.run_until_idle()
        [run] = t.runs()
        assert run.status == "running" and run.steps[0].status == "sleeping"
        t.advance("1h")
        await t.run_until_idle()
        [run] = t.runs()
    assert (run.status, run.output) == ("completed", "slept")


async def test_a_function_output_over_the_limit_fails_the_run_and_is_not_copied_into_events(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    @app.function(id="huge", trigger="t/huge")
    async def huge(ctx: Context) -> str:
        return "y" * (5 * 1024 * 1024)

    async with engine as t:
        await t.send(Event(name="t/huge"))
        await t.run_until_idle()
        [run] = t.runs()
        finished = await t.store.list_events(EventFilter(name="inngest/function.finished"))
    assert run.status == "failed" and run.output is None
    assert run.error is not None and run.error["name"] == "PayloadTooLargeError"
    assert "5242882 bytes, the limit is 4194304 bytes" in run.error["message"]
    assert [e.data.get("result") for e in finished] == [None]


async def test_invoking_a_function_nobody_serves_fails_the_step_at_once(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    elsewhere = outlast.Outlast("never-started")

    @elsewhere.function(id="ghost", trigger="t/ghost")
    async def ghost(ctx: Context) -> None:
        return None

    @app.function(id="caller", trigger="t/call", retries=0)
    async def caller(ctx: Context) -> Any:
        return await ctx.step.invoke("call-ghost", function=ghost)

    async with engine as t:
        await t.send(Event(name="t/call"))
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "failed" and run.steps[0].kind == "invoke" and run.steps[0].status == "failed"
    assert (
        run.error is not None
        and "cannot invoke 'never-started-ghost': no live worker or synced app serves it" in run.error["message"]
    )


async def test_a_cancelled_run_marks_its_pending_step_cancelled_and_keeps_the_steps_that_ran(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    @app.function(id="long", trigger="t/long")
    async def long(ctx: Context) -> None:
        await ctx.step.run("side-effect", lambda: "done")
        await ctx.step.wait_for_event("approval", event="t/approve", timeout="1d")

    async with engine as t:
        await t.send(Event(name="t/long"))
        await t.run_until_idle()
        [run] = t.runs()
        assert await t.cancel_run(run.id)
        [run] = t.runs()
    assert run.status == "cancelled"
    assert [(s.id, s.status) for s in run.steps] == [("side-effect", "completed"), ("approval", "cancelled")]


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
