"""Step results are stored before the function goes on, unless `step_commit_delay_ms` lets a
result wait for the attempt's next commit (issue 28): then a run whose steps all finish at once is
stored in one commit with its end; a result is still stored within moments while a slow step runs
after it, and no later than anything the engine makes visible after it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import outlast
from outlast import Context, Event
from outlast.core.models import Commit, CommitResult
from outlast.storage.base import Store
from outlast.testing import TestEngine


class CountingStore:
    """A real store that keeps every commit it was asked to make."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.commits: list[Commit] = []

    async def commit(self, commit: Commit) -> CommitResult:
        self.commits.append(commit)
        return await self._store.commit(commit)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


async def test_a_run_whose_steps_finish_at_once_is_stored_with_one_commit(
    app: outlast.Outlast, make_store: Callable[[], Store]
) -> None:

    @app.function(id="three", trigger="t/three")
    async def three(ctx: Context) -> int:
        a = await ctx.step.run("a", lambda: 1)
        b = await ctx.step.run("b", lambda: a + 1)
        return await ctx.step.run("c", lambda: b + 1)  # type: ignore[no-any-return]

    store = CountingStore(make_store())
    async with TestEngine(app, store=store, step_commit_delay_ms=60_000) as t:  # type: ignore[arg-type]
        await t.send(Event(name="t/three"))
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "completed" and run.output == 3
    assert [(s.id, s.status, s.output) for s in run.steps] == [
        ("a", "completed", 1),
        ("b", "completed", 2),
        ("c", "completed", 3),
    ]
    [commit] = store.commits  # the three results rode with the run's end
    assert [w.step_id for w in commit.steps] == ["a", "b", "c"] and commit.outcome is not None


async def test_a_result_is_stored_while_a_slow_step_after_it_still_runs(
    app: outlast.Outlast, make_store: Callable[[], Store]
) -> None:
    release = asyncio.Event()

    @app.function(id="slow", trigger="t/slow")
    async def slow(ctx: Context) -> str:
        await ctx.step.run("quick", lambda: "done")

        async def wait() -> str:
            await release.wait()
            return "slow"

        return await ctx.step.run("slow", wait)  # type: ignore[no-any-return]

    async with TestEngine(app, store=make_store(), step_commit_delay_ms=5) as t:
        await t.send(Event(name="t/slow"))
        running = asyncio.create_task(t.run_until_idle())
        try:
            [listed] = await _until(lambda: t.store.list_runs(_all()), lambda runs: len(runs) == 1)
            stored = await _until(lambda: t.store.get_run(listed.id), lambda r: r is not None and bool(r.steps))
            assert [(s.id, s.output) for s in stored.steps] == [("quick", "done")]
            assert stored.status == "running"
        finally:
            release.set()
            await running
        [run] = t.runs()
    assert run.status == "completed" and [s.id for s in run.steps] == ["quick", "slow"]


async def test_a_result_is_stored_in_the_commit_that_sends_an_event_after_it(
    app: outlast.Outlast, make_store: Callable[[], Store]
) -> None:

    @app.function(id="sender", trigger="t/sender")
    async def sender(ctx: Context) -> None:
        await ctx.step.run("first", lambda: 1)
        await ctx.step.send_event("tell", Event(name="t/told"))

    store = CountingStore(make_store())
    async with TestEngine(app, store=store, step_commit_delay_ms=60_000) as t:  # type: ignore[arg-type]
        await t.send(Event(name="t/sender"))
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "completed"
    [sending] = [c for c in store.commits if c.events and c.outcome is None]
    assert [w.step_id for w in sending.steps] == ["first", "tell"]


def _all() -> Any:
    from outlast.core.models import RunFilter

    return RunFilter(limit=10)


async def _until(read: Callable[[], Any], ok: Callable[[Any], bool]) -> Any:
    """Poll `read` until `ok` holds (60 s at most)."""
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        value = await read()
        if ok(value):
            return value
        assert asyncio.get_running_loop().time() < deadline, f"never true: {value!r}"
        await asyncio.sleep(0.005)


async def test_by_default_a_result_is_stored_before_the_next_step_runs(
    app: outlast.Outlast, make_store: Callable[[], Store]
) -> None:
    seen: list[list[str]] = []
    engine: list[TestEngine] = []

    @app.function(id="careful", trigger="t/careful")
    async def careful(ctx: Context) -> None:
        await ctx.step.run("charge", lambda: "charged")

        async def stored_so_far() -> None:
            run = await engine[0].store.get_run(ctx.run_id)
            seen.append([s.id for s in run.steps] if run is not None else [])

        await ctx.step.run("email", stored_so_far)

    store = CountingStore(make_store())
    async with TestEngine(app, store=store) as t:  # type: ignore[arg-type]
        engine.append(t)
        await t.send(Event(name="t/careful"))
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "completed"
    assert seen == [["charge"]]  # durable before the next step's body ran
    assert [[w.step_id for w in c.steps] for c in store.commits if c.steps][:2] == [["charge"], ["email"]]
