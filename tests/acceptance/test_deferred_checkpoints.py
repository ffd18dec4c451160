"""When step results are stored (issue 28). By default a plain step result waits in memory for the
attempt's next commit, but no longer than until the next step body starts: each result is
stored before any later body runs (read here through a reader of its own, as the dashboard or
another process would), the last rides with the run's end, a crash before that end reruns only
the steps not stored (tests/acceptance/test_worker_crashes.py). With `step_commit_delay_ms`
(opt-in) a result may wait longer: a run whose steps all finish at once is stored in one commit
with its end; a result is still stored within moments while a slow step runs after it, and no
later than anything the engine makes visible after it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import outlast
from outlast import Context, Event
from outlast.core.models import Commit, CommitResult, Suspend
from outlast.core.observe import Observation, StepEnded
from outlast.storage import open_store
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


@contextlib.asynccontextmanager
async def reader(t: TestEngine, backend: str, store_url: str) -> AsyncIterator[Store]:
    """A store of its own on the engine's database, as the dashboard or another process reads it
    (memory:// is private to its store: there, the engine's own)."""
    if backend == "memory":
        yield t.store
        return
    other = open_store(store_url)
    await other.open()
    try:
        yield other
    finally:
        await other.close()


async def stored_steps(store: Store, run_id: str) -> list[tuple[str, str, Any]]:
    run = await store.get_run(run_id)
    return [(s.id, s.status, s.output) for s in run.steps] if run is not None else []


async def test_by_default_each_result_is_stored_before_the_next_step_body_runs(
    app: outlast.Outlast, make_store: Callable[[], Store], backend: str, store_url: str
) -> None:
    seen: dict[str, list[tuple[str, str, Any]]] = {}
    readers: list[Store] = []

    @app.function(id="careful", trigger="t/careful")
    async def careful(ctx: Context) -> str:
        async def look(name: str) -> str:
            seen[name] = await stored_steps(readers[0], ctx.run_id)
            return name

        charged = await ctx.step.run("charge", lambda: "charged")
        await ctx.step.run("email", look, "email")
        await ctx.step.run("receipt", look, "receipt")
        return charged

    store = CountingStore(make_store())
    async with TestEngine(app, store=store) as t, reader(t, backend, store_url) as other:  # type: ignore[arg-type]
        readers.append(other)
        await t.send(Event(name="t/careful"))
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "completed" and run.output == "charged"
    assert seen == {
        "email": [("charge", "completed", "charged")],
        "receipt": [("charge", "completed", "charged"), ("email", "completed", "email")],
    }
    # each result was stored as the next body was about to start; the last with the run's end
    assert [([w.step_id for w in c.steps], c.outcome is not None) for c in store.commits] == [
        (["charge"], False),
        (["email"], False),
        (["receipt"], True),
    ]


async def test_a_three_step_run_is_stored_in_three_commits_each_step_announced_once_stored(
    app: outlast.Outlast, make_store: Callable[[], Store]
) -> None:
    """Three commits after the send (four transactions with it; five when every result had a
    commit of its own); observers hear of a step once it is stored, and once."""

    @app.function(id="three", trigger="t/three")
    async def three(ctx: Context) -> int:
        a = await ctx.step.run("a", lambda: 1)
        b = await ctx.step.run("b", lambda: a + 1)
        return await ctx.step.run("c", lambda: b + 1)  # type: ignore[no-any-return]

    store = CountingStore(make_store())
    announced: list[tuple[str, int]] = []

    def on_step(o: Observation) -> None:
        if isinstance(o, StepEnded):  # by then its result is in the store's commits
            announced.append((o.step_id, sum(w.step_id == o.step_id for c in store.commits for w in c.steps)))

    async with TestEngine(app, store=store) as t:  # type: ignore[arg-type]
        t.engine.bus.subscribe(on_step)
        await t.send(Event(name="t/three"))
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "completed" and run.output == 3
    assert [(s.id, s.output) for s in run.steps] == [("a", 1), ("b", 2), ("c", 3)]
    assert len(store.commits) == 3 and store.commits[-1].outcome is not None
    assert announced == [("a", 1), ("b", 1), ("c", 1)]


async def test_a_result_rides_with_the_sleep_after_it(app: outlast.Outlast, make_store: Callable[[], Store]) -> None:
    @app.function(id="napper", trigger="t/napper")
    async def napper(ctx: Context) -> str:
        first = await ctx.step.run("first", lambda: "one")
        await ctx.step.sleep("nap", "1h")
        return first  # type: ignore[no-any-return]

    store = CountingStore(make_store())
    async with TestEngine(app, store=store) as t:  # type: ignore[arg-type]
        await t.send(Event(name="t/napper"))
        await t.run_until_idle()
        [asleep] = t.runs()
        t.advance("1h")
        await t.run_until_idle()
        [run] = t.runs()
    assert asleep.status == "running" and [s.id for s in asleep.steps] == ["first", "nap"]
    assert run.status == "completed" and run.output == "one"
    sleeping, suspended = store.commits[:2]
    assert [w.step_id for w in sleeping.steps] == ["first", "nap"] and isinstance(suspended.outcome, Suspend)


async def test_parallel_results_are_stored_before_any_body_that_starts_after_them(
    app: outlast.Outlast, make_store: Callable[[], Store], backend: str, store_url: str
) -> None:
    """A body that started before an earlier result was stored runs on; one that starts after
    waits for it: `y2` starts while `x` still runs, after `y1` returned."""
    seen: dict[str, list[str]] = {}
    readers: list[Store] = []
    release = asyncio.Event()

    @app.function(id="fan", trigger="t/fan")
    async def fan(ctx: Context) -> list[Any]:
        async def look(name: str) -> str:
            seen[name] = [s[0] for s in await stored_steps(readers[0], ctx.run_id)]
            release.set()
            return name

        async def slow() -> str:
            await release.wait()
            return "x"

        async def chain() -> str:
            await ctx.step.run("y1", lambda: "y1")
            return await ctx.step.run("y2", look, "y2")  # type: ignore[no-any-return]

        both = await asyncio.gather(ctx.step.run("x", slow), chain())
        return [*both, await ctx.step.run("z", look, "z")]

    store = CountingStore(make_store())
    async with TestEngine(app, store=store) as t, reader(t, backend, store_url) as other:  # type: ignore[arg-type]
        readers.append(other)
        await t.send(Event(name="t/fan"))
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "completed" and run.output == ["x", "y2", "z"]
    assert {name: sorted(ids) for name, ids in seen.items()} == {"y2": ["y1"], "z": ["x", "y1", "y2"]}
    assert sorted(w.step_id for c in store.commits for w in c.steps) == ["x", "y1", "y2", "z"]  # each once


class GatedStore(CountingStore):
    """A real store whose first commit of step results waits for `gate`; it logs when each commit
    starts and ends, by the steps it carries and whether it sends events."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.blocked, self.gate = asyncio.Event(), asyncio.Event()
        self.log: list[tuple[str, list[str], bool]] = []

    async def commit(self, commit: Commit) -> CommitResult:
        what = ([w.step_id for w in commit.steps], bool(commit.events))
        self.log.append(("start", *what))
        if commit.steps and not self.blocked.is_set():
            self.blocked.set()
            await self.gate.wait()
        result = await super().commit(commit)
        self.log.append(("end", *what))
        return result


async def test_an_event_sent_after_a_result_starts_only_once_that_result_is_stored(
    app: outlast.Outlast, make_store: Callable[[], Store]
) -> None:
    """`y` finishes while an earlier result's commit is held up; a body is about to start (taking
    `y`) and, beside it, a step sends an event its code decided after `y`: the event's commit
    starts only once the commit holding `y` has ended, whoever took `y`."""
    store = GatedStore(make_store())

    @app.function(id="ordered", trigger="t/ordered")
    async def ordered(ctx: Context) -> list[Any]:
        async def held() -> str:
            await store.blocked.wait()  # the commit of `x` is held up now
            return "y"

        async def after_x() -> str:
            await ctx.step.run("x", lambda: "x")
            return await ctx.step.run("p", lambda: "p")  # type: ignore[no-any-return]

        async def after_y() -> list[Any]:
            y = await ctx.step.run("y", held)

            async def tell() -> list[str]:
                for _ in range(5):  # after `p2`'s body, about to start, took `y`
                    await asyncio.sleep(0)
                return await ctx.step.send_event(f"tell-{y}", Event(name="t/y"))

            release = asyncio.get_running_loop().call_later(0.05, store.gate.set)
            try:
                return list(await asyncio.gather(ctx.step.run("p2", lambda: "p2"), tell()))
            finally:
                release.cancel()

        return list(await asyncio.gather(after_x(), after_y()))

    async with TestEngine(app, store=store) as t:  # type: ignore[arg-type]
        await t.send(Event(name="t/ordered"))
        await t.run_until_idle()
        [run] = t.runs(function_id="ordered")
    assert run.status == "completed"
    assert ("start", ["y"], False) in store.log  # `p2`'s body took `y`, not the event's commit
    stored_y = store.log.index(("end", ["y"], False))
    sending = next(i for i, (edge, _, events) in enumerate(store.log) if edge == "start" and events)
    assert stored_y < sending, store.log
