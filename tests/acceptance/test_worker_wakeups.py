"""A running worker's claims and wake-ups: it goes idle on what its claim read (no second claim,
no separate `next_due_at` read), and still loses no wake-up: work committed after its claim
read the queue is claimed at once, not at the poll, and work that flow control holds back is
retried with a backoff, not in a spin. The poll is set far beyond each test's deadline, so only
wake-ups can make these pass; on every backend."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import outlast
from outlast import Context, Event
from outlast.core.clock import SystemClock
from outlast.core.models import RunFilter
from outlast.runtime.engine import Engine
from outlast.runtime.run_results import wait_for_end
from outlast.runtime.worker import Worker
from outlast.settings import Settings
from outlast.storage import open_store
from outlast.storage.base import Store

#: far beyond every deadline below: a run that waits for the poll fails its test
POLL_MS = 60_000
DEADLINE_S = 30


class Counting:
    """Counts the store calls a worker makes; `after_claim` runs once a claim has committed."""

    def __init__(self, store: Store) -> None:
        self.claims = 0
        #: items the worker's own claims leased
        self.taken = 0
        self.next_due_reads = 0
        self.after_claim: Callable[[], Any] | None = None
        claim, next_due_at = store.claim, store.next_due_at

        async def counted_claim(*args: Any, **kwargs: Any) -> Any:
            self.claims += 1
            claimed = await claim(*args, **kwargs)
            self.taken += len(claimed)
            if self.after_claim is not None:
                hook, self.after_claim = self.after_claim, None
                await hook()
            return claimed

        async def counted_next_due_at(*args: Any) -> Any:
            self.next_due_reads += 1
            return await next_due_at(*args)

        store.claim = counted_claim  # type: ignore[method-assign]
        store.next_due_at = counted_next_due_at  # type: ignore[method-assign]


@pytest.fixture
async def running(app: outlast.Outlast, make_store: Callable[[], Store]) -> AsyncIterator[Any]:
    """Start a worker on `app` (define its functions first): (engine, counts)."""
    started: list[Any] = []

    async def start() -> tuple[Engine, Counting]:
        engine = Engine(make_store(), SystemClock(), Settings(database_url="memory://", poll_interval_ms=POLL_MS))
        await engine.add_source(app)
        await engine.open()
        counts = Counting(engine.store)
        stop = asyncio.Event()
        started.append((engine, stop, asyncio.create_task(Worker(engine).run(stop))))
        return engine, counts

    yield start
    for engine, stop, task in started:
        stop.set()
        await task
        await engine.close()


async def _run_of(engine: Engine, event_id: str) -> str:
    [run] = await engine.store.list_runs(RunFilter(event_id=event_id, limit=1))
    return run.id


async def _finish(engine: Engine, event: Event) -> Any:
    [event_id] = await engine.send(event)
    return await wait_for_end(engine, await _run_of(engine, event_id), timeout=DEADLINE_S)


async def test_an_idle_run_costs_at_most_two_claims_and_no_next_due_read(app: outlast.Outlast, running: Any) -> None:
    """One claim takes the run (it reads the next due time in its own transaction), one more
    after the run's end finds nothing; before, a claim that found work was followed by an empty
    one and each idle by a `next_due_at` read: three claims and two reads a run."""

    @app.function(id="steps", trigger="t/go")
    async def steps(ctx: Context) -> int:
        a = await ctx.step.run("a", lambda: 1)
        b = await ctx.step.run("b", lambda: 2)
        return int(a + b)

    engine, counts = await running()
    await _finish(engine, Event(name="t/go"))  # the first claims also pick up what starting left
    claims = counts.claims
    for _ in range(5):
        assert (await _finish(engine, Event(name="t/go"))).output == 3
    assert counts.claims - claims <= 2 * 5
    assert counts.next_due_reads == 0


async def test_work_committed_after_the_claim_read_the_queue_is_claimed_without_waiting_for_the_poll(
    app: outlast.Outlast, running: Any
) -> None:
    @app.function(id="one", trigger="t/one")
    async def one(ctx: Context) -> str:
        return str(ctx.event.data["n"])

    engine, counts = await running()
    assert (await _finish(engine, Event(name="t/one", data={"n": 0}))).output == "0"
    sent: list[str] = []

    async def send_behind_the_claim() -> None:  # committed once the claim's transaction has
        sent.extend(await engine.send(Event(name="t/one", data={"n": 1})))

    counts.after_claim = send_behind_the_claim
    await engine.send(Event(name="t/one", data={"n": 2}))  # wakes the worker into that claim
    while not sent:
        await asyncio.sleep(0.001)
    run = await wait_for_end(engine, await _run_of(engine, sent[0]), timeout=DEADLINE_S)
    assert run.output == "1"


async def test_work_another_store_commits_behind_the_claim_wakes_the_worker(
    app: outlast.Outlast, running: Any, store_url: str
) -> None:
    """The same race with the work coming from elsewhere (another process, here another store on
    the same database): the listener's wake-up, not the engine's, must end the idle wait."""
    if store_url.startswith("memory"):
        pytest.skip("another process cannot reach a store in memory")

    @app.function(id="one", trigger="t/one")
    async def one(ctx: Context) -> str:
        return str(ctx.event.data["n"])

    engine, counts = await running()
    assert (await _finish(engine, Event(name="t/one", data={"n": 0}))).output == "0"
    other = Engine(open_store(store_url), SystemClock(), Settings(database_url="memory://", poll_interval_ms=POLL_MS))
    await other.open()
    try:
        sent: list[str] = []

        async def send_from_elsewhere() -> None:
            sent.extend(await other.send(Event(name="t/one", data={"n": 1})))

        counts.after_claim = send_from_elsewhere
        await engine.send(Event(name="t/one", data={"n": 2}))
        while not sent:
            await asyncio.sleep(0.001)
        run = await wait_for_end(engine, await _run_of(engine, sent[0]), timeout=DEADLINE_S)
        assert run.output == "1"
    finally:
        await other.close()


async def test_work_held_back_by_a_concurrency_limit_is_retried_with_a_backoff_and_run_when_freed(
    app: outlast.Outlast, running: Any
) -> None:
    go = asyncio.Event()
    inside: list[int] = []

    async def body(n: int) -> int:
        inside.append(n)
        await go.wait()
        return n

    @app.function(id="limited", trigger="t/limited", concurrency=outlast.Concurrency(limit=1))
    async def limited(ctx: Context) -> int:
        return int(await ctx.step.run("body", lambda: body(int(ctx.event.data["n"]))))

    engine, counts = await running()
    ids = await engine.send([Event(name="t/limited", data={"n": n}) for n in (1, 2)])
    worker_claims = counts.claims
    while not inside:
        await asyncio.sleep(0.001)
    # the second run is due and passed over: the worker retries on a doubling wait, not in a spin
    loop = asyncio.get_running_loop()
    started = loop.time()
    while counts.claims - worker_claims < 6:
        await asyncio.sleep(0.005)
    assert loop.time() - started >= 0.1  # waits of 10, 20, 40, 80 ms at least between them
    assert inside == [1]
    go.set()
    runs = [await wait_for_end(engine, await _run_of(engine, i), timeout=DEADLINE_S) for i in ids]
    assert [r.output for r in runs] == [1, 2]


async def test_a_run_an_expression_wait_resumes_is_claimed_without_waiting_for_the_poll(
    app: outlast.Outlast, running: Any
) -> None:
    """The matcher resolves waits no index finds after the event's ingest, in a commit of its
    own: it wakes this process's workers itself (the store does not announce a commit to its
    own process; before, on SQLite, the resumed run waited for the poll)."""

    @app.function(id="waiter", trigger="t/order")
    async def waiter(ctx: Context) -> Any:
        paid = await ctx.step.wait_for_event(
            "paid", event="t/paid", timeout="1h", if_="event.data.id == async.data.id || async.data.all == true"
        )
        return None if paid is None else paid.data

    engine, _ = await running()
    [event_id] = await engine.send(Event(name="t/order", data={"id": 1}))
    run_id = await _run_of(engine, event_id)
    while not any(s.status == "waiting" for s in (await engine.store.get_run(run_id) or _no_run()).steps):
        await asyncio.sleep(0.005)
    await engine.send(Event(name="t/paid", data={"id": 1, "amount": 3}))
    run = await wait_for_end(engine, run_id, timeout=DEADLINE_S)
    assert run.output == {"id": 1, "amount": 3}


def _no_run() -> Any:
    raise AssertionError("the run is gone")


async def test_a_send_claims_for_the_idle_worker_of_its_process(
    app: outlast.Outlast, make_store: Callable[[], Store]
) -> None:
    """The send's own transaction leases the run for the idle worker (`Worker.offer`): the run
    begins without a claim of the worker's own (before, the send woke the worker into one)."""

    @app.function(id="steps", trigger="t/go")
    async def steps(ctx: Context) -> int:
        return int(await ctx.step.run("a", lambda: 1))

    async with idle_worker(app, make_store) as (engine, worker):
        counts = Counting(engine.store)
        for _ in range(5):
            while not worker._idling:  # the claim after the last run's end is done
                await asyncio.sleep(0.001)
            assert (await _finish(engine, Event(name="t/go"))).output == 1
        assert counts.taken == 0


async def test_a_send_claims_no_more_than_the_idle_workers_room(
    app: outlast.Outlast, make_store: Callable[[], Store]
) -> None:
    """A worker with room for one attempt, idle, and a send of three events: the send claims one
    for it, the worker the others as room frees, never two at once."""
    release, running_now, most = asyncio.Event(), [0], [0]

    @app.function(id="held", trigger="t/held")
    async def held(ctx: Context) -> int:
        running_now[0] += 1
        most[0] = max(most[0], running_now[0])
        await release.wait()
        running_now[0] -= 1
        return int(ctx.event.data["n"])

    async with idle_worker(app, make_store, concurrency=1) as (engine, worker):
        while not worker._idling:  # its first claim found nothing
            await asyncio.sleep(0.001)
        ids = await engine.send([Event(name="t/held", data={"n": n}) for n in range(3)])
        release.set()
        runs = [await wait_for_end(engine, await _run_of(engine, i), timeout=DEADLINE_S) for i in ids]
        assert sorted(r.output for r in runs) == [0, 1, 2]
        assert most[0] == 1


@contextlib.asynccontextmanager
async def idle_worker(
    app: outlast.Outlast, make_store: Callable[[], Store], *, concurrency: int | None = None
) -> AsyncIterator[tuple[Engine, Worker]]:
    engine = Engine(make_store(), SystemClock(), Settings(database_url="memory://", poll_interval_ms=POLL_MS))
    await engine.add_source(app)
    await engine.open()
    stop = asyncio.Event()
    worker = Worker(engine, concurrency=concurrency)
    task = asyncio.create_task(worker.run(stop))
    try:
        yield engine, worker
    finally:
        stop.set()
        await task
        await engine.close()
