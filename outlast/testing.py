"""A virtual-clock engine for users' own tests: no real sleeping, deterministic draining.

async with TestEngine(app) as t:
    await t.send(Event(name="shop/order.created", data={...}))
    await t.run_until_idle()
    t.advance("1h"); await t.run_until_idle()
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from outlast.client import EventInput, Outlast, _function_id
from outlast.core.clock import VirtualClock
from outlast.core.durations import Duration, to_ms
from outlast.core.models import Run, RunFilter
from outlast.function import Function
from outlast.runtime.bulk_cancel import cancel_runs
from outlast.runtime.engine import Engine
from outlast.runtime.invoke import invoke_run
from outlast.runtime.realtime import Subscribing
from outlast.runtime.replay import replay
from outlast.runtime.rerun import UNSET, rerun
from outlast.runtime.run_results import RunHandle
from outlast.runtime.worker import Worker

if TYPE_CHECKING:
    from outlast.storage.base import Backend

T = TypeVar("T")


class TestEngine:
    """Runs an app's functions on a virtual clock, on `memory://` unless told otherwise."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        app: Outlast,
        *,
        store: Backend | None = None,
        database_url: str = "memory://",
        start_ms: int | None = None,
        concurrency: int = 100,
        seed: int | None = 0,
        **settings: Any,
    ) -> None:
        self.app = app
        self.clock = VirtualClock(start_ms)
        options = replace(app.settings, **settings)
        rng = random.Random(seed)
        self.engine = (
            Engine(store, self.clock, options, rng=rng)
            if store is not None
            else Engine.from_settings(options, clock=self.clock, database_url=database_url, rng=rng)
        )
        self.store = self.engine.store
        self.worker = Worker(self.engine, concurrency=concurrency)

    async def __aenter__(self) -> TestEngine:
        await self.engine.add_source(self.app)
        await self.engine.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.engine.close()

    async def send(self, events: EventInput) -> list[str]:
        return await self.engine.send(events)

    async def run_until_idle(self) -> None:
        """Run all due work (concurrently) until nothing due is left at the current virtual time."""
        await self.worker.drain()

    def advance(self, duration: Duration) -> None:
        self.clock.advance(to_ms(duration))

    def now_ms(self) -> int:
        return self.clock.now_ms()

    def runs(
        self, *, function_id: str | None = None, status: str | None = None, event_id: str | None = None
    ) -> list[Run]:
        """Runs with their steps, oldest first."""
        flt = RunFilter(app_id=self.app.id, function_id=function_id, status=status, event_id=event_id, limit=100_000)

        async def read() -> list[Run]:
            found = [await self.store.get_run(x.id) for x in reversed(await self.store.list_runs(flt))]
            return [r for r in found if r is not None]

        return _wait_for(read)

    def get_run(self, run_id: str) -> Run | None:
        return _wait_for(lambda: self.store.get_run(run_id))

    def subscribe(self, channel: str, *, topics: list[str] | None = None, since: int | None = None) -> Subscribing:
        """Realtime messages of `channel`, as `Outlast.subscribe` (on this engine's store)."""
        return Subscribing(self.engine.realtime, channel, topics=topics, since=since)

    async def cancel_run(self, run_id: str) -> bool:
        return await self.engine.cancel_run(run_id)

    async def send_signal(self, signal: str, data: dict[str, Any] | None = None, *, hold: Any = None) -> str | None:
        """As `Outlast.send_signal`, on the virtual clock (a hold runs out as the clock advances)."""
        return await self.engine.send_signal(signal, data, hold=hold)

    async def pause_function(self, function: Function | str) -> bool:
        """As `Outlast.pause_function`, on this engine."""
        return await self.engine.set_paused(self.app.id, _function_id(function), paused=True)

    async def resume_function(self, function: Function | str) -> bool:
        return await self.engine.set_paused(self.app.id, _function_id(function), paused=False)

    async def replay(self, *, function_id: str, status: str = "failed", since: Any = None, until: Any = None) -> int:
        """As `Outlast.replay`, on this engine."""
        return await replay(
            self.engine, app_id=self.app.id, function_id=function_id, status=status, since=since, until=until
        )

    # -- as the client's (API.md, "Managing runs from Python"), on the virtual clock ------------

    def run_handle(self, run_id: str) -> RunHandle:
        """A handle on a run: `await h.result_async()` once `run_until_idle` has run it."""
        return RunHandle(run_id, engine=self._engine, blocking=_wait_for)

    async def invoke(
        self, function: Function | str, data: dict[str, Any] | None = None, *, id: str | None = None
    ) -> RunHandle:
        """As `Outlast.invoke`, on this engine (`id`'s 24 h follow the virtual clock)."""
        return self.run_handle(await invoke_run(self.engine, self.app.id, _function_id(function), data, id=id))

    async def rerun(self, run_id: str, *, from_step: str | None = None, output: Any = UNSET) -> RunHandle:
        return self.run_handle(await rerun(self.engine, run_id, from_step=from_step, output=output))

    async def cancel_runs(
        self, *, function_id: str, if_: str | None = None, since: Any = None, until: Any = None
    ) -> int:
        return await cancel_runs(
            self.engine, app_id=self.app.id, function_id=function_id, if_=if_, since=since, until=until
        )

    async def _engine(self) -> Engine:
        return self.engine


def _wait_for(read: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a read to its end from synchronous code, also where an event loop runs (the test's own,
    which is blocked meanwhile): on a thread of its own, with a loop of its own (a store serves
    callers on any loop)."""
    with ThreadPoolExecutor(1, thread_name_prefix="outlast-test-read") as thread:
        return thread.submit(asyncio.run, read()).result()
