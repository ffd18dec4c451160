"""Managing runs from Python (API.md): `app.invoke` → a `RunHandle` whose `result()` waits for the
run through the store's wake-ups, `run_handle`, `rerun`, `cancel_runs`; and the blocking API
called from a thread whose event loop is running (a notebook, Playwright's sync API).

On SQLite and PostgreSQL the worker is another engine in another thread (its own store
connection), so a result arrives through the store's wake-ups (datagram sockets, NOTIFY); on
`memory://` the worker runs on the client's own engine."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest

import outlast
from outlast import Context, Event, NonRetriableError
from outlast.errors import OutlastError, RunCancelledError, RunFailedError, RunNotFoundError
from outlast.runtime.engine import Engine
from outlast.runtime.worker import Worker
from outlast.testing import TestEngine

#: released by the test: `slow` waits on it in a step, so a run stays active while the test acts
GATE = threading.Event()


def make_app(url: str) -> outlast.Outlast:
    """The client's safety-net poll is 10 minutes: a result that arrives sooner came by a wake-up."""
    app = outlast.Outlast("handles", settings=outlast.Settings(database_url=url, poll_interval_ms=60_000))

    @app.function(id="total", trigger="h/order", retries=0)
    async def total(ctx: Context) -> dict[str, Any]:
        price = await ctx.step.run("price", lambda: ctx.event.data["qty"] * 3)
        return {"total": price}

    @app.function(id="broken", trigger="h/broken", retries=0)
    async def broken(ctx: Context) -> None:
        await ctx.step.run("charge", lambda: None)
        raise NonRetriableError("card declined")

    @app.function(id="slow", trigger="h/slow", retries=0)
    def slow(ctx: Any) -> str:
        ctx.step.run("gate", lambda: GATE.wait(30))
        return "done"

    return app


class ThreadWorker:
    """A worker on a loop of its own in a thread: the test's loop may block in a blocking call."""

    def __init__(self, app: outlast.Outlast, url: str) -> None:
        self.thread: threading.Thread | None = None
        self.engine: Engine
        if url == "memory://":  # nothing else sees an in-memory store: serve on the client's engine
            self.loop = app._ensure_loop()
            self.engine = asyncio.run_coroutine_threadsafe(app.engine_async(), self.loop).result()
        else:
            self.loop = asyncio.new_event_loop()
            self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
            self.thread.start()
            self.engine = Engine.from_settings(outlast.Settings(database_url=url, poll_interval_ms=100))
        self._submit(self.engine.add_source(app))
        self._submit(self.engine.open())
        self.stop: asyncio.Event = self._submit(self._event())
        self.done: Future[None] = asyncio.run_coroutine_threadsafe(Worker(self.engine).run(self.stop), self.loop)

    async def _event(self) -> asyncio.Event:
        return asyncio.Event()

    def _submit(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.done.result(30)
        if self.thread is not None:
            self._submit(self.engine.close())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(30)
            self.loop.close()


@pytest.fixture
def served(store_url: str) -> Iterator[outlast.Outlast]:
    GATE.clear()
    app = make_app(store_url)
    worker = ThreadWorker(app, store_url)
    try:
        yield app
    finally:
        GATE.set()
        worker.close()
        app.close()


async def test_invoke_returns_a_handle_whose_result_is_the_output_even_from_a_running_loop(
    served: outlast.Outlast,
) -> None:
    asyncio.get_running_loop()  # this thread's loop runs, as in a notebook: the blocking API still works
    handle = served.invoke("total", {"qty": 4})
    assert handle.result(timeout=30) == {"total": 12}
    assert served.run_handle(handle.run_id).result(timeout=5) == {"total": 12}
    assert served.get_run(handle.run_id).status == "completed"  # type: ignore[union-attr]
    [event_id] = served.send(Event(name="h/order", data={"qty": 1}))
    [run] = served.list_runs(event_id=event_id)
    assert await served.run_handle(run.id).result_async(timeout=30) == {"total": 3}


async def test_result_raises_the_runs_error_or_its_cancellation(served: outlast.Outlast) -> None:
    failed = await served.invoke_async(served.functions["broken"])
    with pytest.raises(RunFailedError, match="card declined") as caught:
        await failed.result_async(timeout=30)
    assert caught.value.error["message"] == "card declined"
    slow = await served.invoke_async("slow")
    with pytest.raises(TimeoutError, match="still"):
        await slow.result_async(timeout=0.2)
    assert await served.cancel_run_async(slow.run_id)
    with pytest.raises(RunCancelledError):
        await slow.result_async(timeout=30)


async def test_result_on_an_unknown_run_and_invoke_of_an_unknown_function_are_clear_errors(
    served: outlast.Outlast,
) -> None:
    with pytest.raises(RunNotFoundError, match="no run '01NOPE'"):
        served.run_handle("01NOPE").result(timeout=5)
    with pytest.raises(OutlastError, match="no function 'nope' in app 'handles'"):
        await served.invoke_async("nope")
    with pytest.raises(OutlastError, match="data: expected a JSON object"):
        await served.invoke_async("total", [1])  # type: ignore[arg-type]


async def test_rerun_from_a_step_with_an_edited_output_gives_a_handle_on_the_new_run(
    served: outlast.Outlast,
) -> None:
    first = await served.invoke_async("total", {"qty": 2})
    assert await first.result_async(timeout=30) == {"total": 6}
    again = await served.rerun_async(first.run_id, from_step="price", output=100)
    assert again.run_id != first.run_id
    assert await again.result_async(timeout=30) == {"total": 100}
    whole = served.rerun(first.run_id)
    assert whole.result(timeout=30) == {"total": 6}


async def test_cancel_runs_cancels_the_matching_active_runs_only(served: outlast.Outlast) -> None:
    handles = [await served.invoke_async("slow", {"n": n}) for n in range(4)]
    # the invoke event carries the data: cancel the runs whose n is even
    assert await served.cancel_runs_async(function_id="slow", if_="event.data.n % 2 == 0") == 2
    GATE.set()
    outcomes = []
    for h in handles:
        try:
            outcomes.append(await h.result_async(timeout=30))
        except RunCancelledError:
            outcomes.append("cancelled")
    assert outcomes == ["cancelled", "done", "cancelled", "done"]
    assert served.cancel_runs(function_id="slow") == 0  # nothing active is left
    with pytest.raises(OutlastError, match="if_: invalid expression"):
        served.cancel_runs(function_id="slow", if_="event.data.n ===")
    with pytest.raises(OutlastError, match="function_id: app 'handles' has no function 'nope'"):
        served.cancel_runs(function_id="nope")


async def test_replay_reruns_the_failed_runs_of_a_function_and_says_how_many(served: outlast.Outlast) -> None:
    failed = [await served.invoke_async("broken", {"n": n}) for n in range(2)]
    done = await served.invoke_async("total", {"qty": 1})
    for handle in failed:
        with pytest.raises(RunFailedError):
            await handle.result_async(timeout=30)
    assert await done.result_async(timeout=30) == {"total": 3}
    assert await served.replay_async(function_id="broken") == 2
    assert served.replay(function_id="total") == 0  # none failed
    assert served.replay(function_id="total", status="completed") == 1
    reruns = [r for r in served.list_runs(function_id="broken") if r.id not in {h.run_id for h in failed}]
    assert len(reruns) == 2
    for run in reruns:  # the reruns fail again, from the same events' data
        with pytest.raises(RunFailedError, match="card declined"):
            await served.run_handle(run.id).result_async(timeout=30)
    with pytest.raises(OutlastError, match="status"):
        served.replay(function_id="broken", status="running")


def test_the_blocking_api_on_the_clients_own_loop_is_refused_not_deadlocked() -> None:
    app = outlast.Outlast("own-loop", database_url="memory://")
    try:
        app.send(Event(name="x/y"))  # starts the client's loop
        loop = app._ensure_loop()
        caught = asyncio.run_coroutine_threadsafe(_blocking_send(app), loop).result(10)
        assert "client's own loop" in caught
    finally:
        app.close()


async def _blocking_send(app: outlast.Outlast) -> str:
    try:
        app.send(Event(name="x/y"))
    except OutlastError as exc:
        return str(exc)
    return "no error"


async def test_the_test_engine_invokes_reruns_and_cancels_on_its_virtual_clock(store_url: str) -> None:
    app = outlast.Outlast("handles", database_url=store_url)

    @app.function(id="later", trigger="h/later", retries=0)
    async def later(ctx: Context) -> int:
        await ctx.step.sleep("nap", "1h")
        return int(ctx.event.data["n"])

    async with TestEngine(app, database_url=store_url) as t:
        first = await t.invoke(later, {"n": 1})
        doomed = [await t.invoke("later", {"n": n}) for n in (2, 3)]
        await t.run_until_idle()
        assert await t.cancel_runs(function_id="later", if_="event.data.n > 1") == 2
        t.advance("1h")
        await t.run_until_idle()
        assert await first.result_async(timeout=5) == 1
        for handle in doomed:
            with pytest.raises(RunCancelledError):
                await handle.result_async(timeout=5)
        again = await t.rerun(first.run_id, from_step="nap")
        await t.run_until_idle()
        assert (await t.run_handle(again.run_id).get_async()).status == "running"  # asleep again, virtually
        t.advance("1h")
        await t.run_until_idle()
        assert await again.result_async(timeout=5) == 1
