"""Waiting for a run to end, and handles on runs (`RunHandle`).

A waiter reads the run, and until it has ended, waits for a wake-up: the engine's own (a commit
here that finishes a run, a cancel) or the store's from other processes (SQLite datagram
sockets, PostgreSQL NOTIFY: a commit that ends an attempt rings them). Each wake-up reads the run
again; a rare read on a timer is only the safety net, as for workers. The waiter is armed before
it reads, so a run ending between the read and the wait still wakes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from outlast.core.models import FINAL_STATUSES, Run
from outlast.errors import RunCancelledError, RunFailedError, RunNotFoundError, RunSkippedError
from outlast.runtime.worker import LISTEN_POLL_FACTOR

if TYPE_CHECKING:
    from outlast.runtime.engine import Engine

T = TypeVar("T")
BlockingCall = Callable[[Callable[[], Coroutine[Any, Any, Any]]], Any]


class RunEnds:
    """One engine's wake-ups, fanned out to every waiting caller (on any event loop)."""

    def __init__(self, engine: Engine) -> None:
        self._armed: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        engine.wakers.append(self._ring)
        self.listening = engine.store.add_listener(self._ring)
        poll_s = engine.settings.poll_interval_ms / 1000
        self.safety_poll_s = poll_s * LISTEN_POLL_FACTOR if self.listening else poll_s

    def arm(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Event]:
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        self._armed.add(waiter)
        return waiter

    def disarm(self, waiter: tuple[asyncio.AbstractEventLoop, asyncio.Event]) -> None:
        self._armed.discard(waiter)

    def _ring(self) -> None:
        for loop, event in list(self._armed):
            if loop.is_closed():
                continue
            if asyncio._get_running_loop() is loop:
                event.set()
            else:
                loop.call_soon_threadsafe(event.set)


_ENDS: weakref.WeakKeyDictionary[Engine, RunEnds] = weakref.WeakKeyDictionary()


def run_ends(engine: Engine) -> RunEnds:
    ends = _ENDS.get(engine)
    if ends is None:
        ends = _ENDS[engine] = RunEnds(engine)
    return ends


async def wait_for_end(engine: Engine, run_id: str, *, timeout: float | None = None) -> Run:
    """The run once it has ended; RunNotFoundError for an unknown id, TimeoutError after `timeout` s."""
    ends = run_ends(engine)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        waiter = ends.arm()
        try:
            run = await engine.store.get_run(run_id, steps=False)
            if run is None:
                raise RunNotFoundError(f"no run {run_id!r}")
            if run.status in FINAL_STATUSES:
                return run
            left = ends.safety_poll_s if deadline is None else min(ends.safety_poll_s, deadline - time.monotonic())
            if left <= 0:
                raise TimeoutError(f"run {run_id} is still {run.status} after {timeout} s")
            with contextlib.suppress(TimeoutError):  # the safety net's read
                await asyncio.wait_for(waiter[1].wait(), left)
        finally:
            ends.disarm(waiter)


def outcome(run: Run) -> Any:
    """What `result()` gives for an ended run: its output, or the error its status calls for."""
    if run.status == "failed":
        raise RunFailedError(run.id, run.error)
    if run.status == "cancelled":
        raise RunCancelledError(run.id)
    if run.status == "skipped":
        raise RunSkippedError(run.id, run.skip_reason)
    return run.output


class RunHandle:
    """A handle on one run: `result()` waits for it to end (from synchronous code), `result_async()`
    from async code. Made by `app.invoke`, `app.run_handle`, `app.rerun` and the TestEngine's."""

    def __init__(self, run_id: str, *, engine: Callable[[], Awaitable[Engine]], blocking: BlockingCall) -> None:
        self.run_id = run_id
        self._engine = engine
        self._blocking = blocking

    def __repr__(self) -> str:
        return f"RunHandle({self.run_id!r})"

    async def result_async(self, timeout: float | None = None) -> Any:
        """The run's output once it has ended; RunFailedError (`.error`), RunCancelledError,
        RunSkippedError, RunNotFoundError, or TimeoutError after `timeout` seconds."""
        return outcome(await wait_for_end(await self._engine(), self.run_id, timeout=timeout))

    def result(self, timeout: float | None = None) -> Any:
        return self._blocking(lambda: self.result_async(timeout))

    async def get_async(self) -> Run:
        """The run as stored now (with its steps)."""
        run = await (await self._engine()).store.get_run(self.run_id)
        if run is None:
            raise RunNotFoundError(f"no run {self.run_id!r}")
        return run

    def get(self) -> Run:
        return self._blocking(self.get_async)  # type: ignore[no-any-return]
