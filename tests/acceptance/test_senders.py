"""A process that only sends events (it imports an app and calls `send`, serving nothing) never
changes what live workers serve, whichever starts first: the stored functions are the live
workers' (each the newest live worker's configuration), and events start the live functions' runs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import outlast
from outlast import Context, Event
from outlast.core.clock import VirtualClock
from outlast.core.config import EventTrigger
from outlast.core.models import RunFilter
from outlast.runtime.engine import Engine
from outlast.runtime.worker import WORKER_TIMEOUT_MS, Worker
from tests.conftest import PG_URL, new_store_url


def old_version() -> outlast.Outlast:
    """The app as an old script knows it: `charge` on another event, and `legacy`, since removed."""
    app = outlast.Outlast("deploy")

    @app.function(id="charge", trigger="d/order", retries=0)
    async def charge(ctx: Context) -> str:
        return "old charge"

    @app.function(id="legacy", trigger="d/legacy")
    async def legacy(ctx: Context) -> str:
        return "legacy"

    return app


def live_version() -> outlast.Outlast:
    app = outlast.Outlast("deploy")

    @app.function(id="charge", trigger="d/order.created", retries=2)
    async def charge(ctx: Context) -> str:
        return await ctx.step.run("charge", lambda: "charged")

    @app.function(id="ship", trigger="d/ship")
    async def ship(ctx: Context) -> str:
        return "shipped"

    return app


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgres" and not PG_URL:
        pytest.skip("OUTLAST_TEST_POSTGRES_URL is not set")
    yield from new_store_url(request.param, tmp_path, "deploy")


@pytest.fixture
async def worker(url: str) -> AsyncIterator[Engine]:
    """The engine of a live worker of the current version (`drain` runs what is due)."""
    engine = Engine.from_settings(outlast.Settings(database_url=url))
    await engine.add_source(live_version())
    yield engine
    await engine.close()


async def stored(engine: Engine) -> dict[str, tuple[list[str], int]]:
    _, configs = await engine.store.load_functions()
    return {c.id: ([t.event for t in c.triggers if isinstance(t, EventTrigger)], c.retries) for c in configs}


T0 = 1_800_000_000_000
LIVE = {"charge": (["d/order.created"], 2), "ship": (["d/ship"], 4)}


async def outcomes(engine: Engine) -> list[tuple[str, str, object]]:
    await engine.refresh_registry()
    await Worker(engine).drain()
    runs = await engine.store.list_runs(RunFilter(limit=100))
    return sorted((r.function_id, r.status, r.output) for r in runs)


async def test_a_sender_of_an_older_version_leaves_the_live_workers_functions_alone(url: str, worker: Engine) -> None:
    await worker.open()
    sender = outlast.Outlast("deploy", database_url=url)
    sender.functions = old_version().functions
    try:
        await sender.send_async([Event(name="d/order.created"), Event(name="d/order"), Event(name="d/legacy")])
    finally:
        await sender.close_async()
    assert await stored(worker) == LIVE
    assert await outcomes(worker) == [("charge", "completed", "charged")]


async def test_a_sender_first_on_a_fresh_database_is_replaced_by_the_first_worker(url: str, worker: Engine) -> None:
    sender = outlast.Outlast("deploy", database_url=url)
    sender.functions = old_version().functions
    try:
        await sender.send_async(Event(name="d/order"))  # nobody served the app yet: its run waits for a worker
        await worker.open()
        assert await stored(worker) == LIVE
        await sender.send_async([Event(name="d/order.created"), Event(name="d/legacy")])  # the live functions now
        await sender.send_async(Event(name="d/order"))
    finally:
        await sender.close_async()
    assert await outcomes(worker) == [("charge", "completed", "charged")] * 2


async def test_runs_of_a_provisional_function_the_first_worker_drops_fail_at_once_naming_it(
    url: str, worker: Engine
) -> None:
    """A sender stored its app's functions before any worker served the app, and started runs of
    `legacy`; the first worker's code has no `legacy`: those runs end failed at its first claim,
    without retries, saying which function nobody serves (as runs of a removed function do)."""
    sender = outlast.Outlast("deploy", database_url=url)
    sender.functions = old_version().functions
    try:
        [event_id] = await sender.send_async(Event(name="d/legacy"))
        [queued] = await sender.list_runs_async(event_id=event_id)
        assert queued.status == "queued"
        await worker.open()
    finally:
        await sender.close_async()
    assert await stored(worker) == LIVE
    assert await outcomes(worker) == [("legacy", "failed", None)]
    run = await worker.store.get_run(queued.id)
    assert run is not None and run.error is not None
    assert run.error["name"] == "FunctionNotFoundError"
    assert "function 'legacy' of app 'deploy' is not served by any live worker or synced app" in run.error["message"]
    assert not run.failures  # no retry: it cannot succeed


async def test_a_live_worker_back_after_its_functions_were_forgotten_replaces_a_senders_provisional_ones(
    url: str,
) -> None:
    """The live worker missed its heartbeats (a suspended machine) and another app's worker forgot
    its functions; a script of a newer version then sent for the app, storing its functions
    provisionally, `legacy` (which no worker serves) among them. At its next heartbeat the live
    worker takes the app back, as a starting worker does: `legacy` is forgotten and its run
    fails at once, naming it, instead of waiting for a worker that serves it."""
    clock = VirtualClock(T0)
    live_engine, other_engine = (Engine.from_settings(outlast.Settings(database_url=url), clock=clock) for _ in "ab")
    await live_engine.add_source(live_version())
    other = outlast.Outlast("other")
    other.function(id="noop", trigger="o/noop")(lambda ctx: None)
    await other_engine.add_source(other)
    newer = live_version()
    newer.function(id="legacy", trigger="d/legacy")(lambda ctx: "legacy")
    live = Worker(live_engine)
    try:
        await live_engine.open()
        await live.announce(T0)
        clock.advance(WORKER_TIMEOUT_MS + 1)
        await other_engine.open()
        await Worker(other_engine).announce(T0 + WORKER_TIMEOUT_MS + 1)  # forgets the deploy app's functions
        assert "charge" not in await stored(other_engine)
        sender = outlast.Outlast("deploy", database_url=url)
        sender.functions = newer.functions
        try:
            await sender.send_async(Event(name="d/legacy"))
        finally:
            await sender.close_async()
        await live.announce(T0)
        assert await stored(live_engine) == {**LIVE, "noop": (["o/noop"], 4)}
        assert await outcomes(live_engine) == [("legacy", "failed", None)]
    finally:
        await live_engine.close()
        await other_engine.close()


async def test_when_the_newest_worker_goes_the_newest_left_puts_its_configuration_back(url: str) -> None:
    """A rolling deploy: the live version's worker, then an old version's restarted beside it
    (newest: its configuration is stored while it lives), which is then killed."""
    clock = VirtualClock(T0)
    live_engine, old_engine = (Engine.from_settings(outlast.Settings(database_url=url), clock=clock) for _ in "ab")
    await live_engine.add_source(live_version())
    await old_engine.add_source(old_version())
    live, old = Worker(live_engine), Worker(old_engine)
    try:
        await live_engine.open()
        await live.announce(T0)
        clock.advance(1_000)
        await old_engine.open()
        await old.announce(T0 + 1_000)
        await live.announce(T0)
        assert (await stored(live_engine))["charge"] == (["d/order"], 0)  # the newest worker's, while it lives
        clock.advance(WORKER_TIMEOUT_MS + 1)  # the old worker was killed: no heartbeat since
        await live.announce(T0)
        assert await stored(live_engine) == LIVE  # charge put back, legacy forgotten
        version = await live_engine.store.functions_version()
        await live.announce(T0)
        assert await live_engine.store.functions_version() == version  # settled: nothing rewritten
        await live_engine.send([Event(name="d/order.created"), Event(name="d/order")])
        assert await outcomes(live_engine) == [("charge", "completed", "charged")]
    finally:
        await live_engine.close()
        await old_engine.close()
