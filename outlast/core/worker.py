"""A worker: claims due items of one app, runs their attempts concurrently, keeps leases alive."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import socket
from typing import Any

from outlast.context import Context, ReplayAwareLogger, SyncContext
from outlast.core.attempt import Attempt
from outlast.core.engine import Engine
from outlast.core.ids import new_token
from outlast.errors import StoreError
from outlast.step import Step, SyncStep
from outlast.storage.base import Claimed, Finish, WorkerInfo

log = logging.getLogger("outlast.worker")
HEARTBEAT_S = 5.0
LISTEN_POLL_FACTOR = 10
#: a worker not heard from for this long is no longer listed
WORKER_TIMEOUT_MS = 30_000
user_log = logging.getLogger("outlast.run")


class Worker:
    def __init__(self, engine: Engine, *, concurrency: int | None = None) -> None:
        self.engine = engine
        self.concurrency = concurrency or engine.settings.worker_concurrency
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{new_token()[:6]}"
        self.leases: dict[str, str] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listening = False

    # -- running -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set, then let running attempts finish."""
        self._attach()
        keeper = asyncio.create_task(self._keep_leases(stop))
        refresher = asyncio.create_task(self._refresh_functions(stop))
        announcer = asyncio.create_task(self._announce(stop))
        try:
            while not stop.is_set():
                claimed = await self._claim_safely()
                if claimed:
                    continue
                await self._idle(stop)
        finally:
            if self.tasks:
                await asyncio.gather(*self.tasks, return_exceptions=True)
            keeper.cancel()
            refresher.cancel()
            announcer.cancel()
            self._detach()

    async def drain(self) -> None:
        """Run everything due now, and what that makes due now, until nothing is left."""
        self._attach()
        try:
            while True:
                claimed = await self._claim(self.concurrency - len(self.tasks))
                if not claimed and not self.tasks:
                    return
                if self.tasks and (not claimed or len(self.tasks) >= self.concurrency):
                    await asyncio.wait(self.tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._detach()

    def _attach(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.engine.wakers.append(self._on_wake)
        listen = getattr(self.engine.store, "add_listener", None)  # PostgreSQL: LISTEN/NOTIFY
        if listen is not None and not self._listening:
            listen(self._on_wake)
            self._listening = True

    def _detach(self) -> None:
        if self._on_wake in self.engine.wakers:
            self.engine.wakers.remove(self._on_wake)

    def _on_wake(self) -> None:
        if self._loop is not None and self._wake is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def _idle(self, stop: asyncio.Event) -> None:
        assert self._wake is not None
        timeout = self.engine.settings.poll_interval_ms / 1000
        if self._listening:
            timeout *= LISTEN_POLL_FACTOR  # notifications wake us; polling is only a safety net
        if len(self.tasks) < self.concurrency:
            try:
                next_due = await self.engine.store.next_due_at(self.engine.app.id)
            except StoreError:
                next_due = None
            if next_due is not None:
                timeout = min(timeout, max(0.0, (next_due - self.engine.clock.now_ms()) / 1000))
        self._wake.clear()
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for w in waiters:
            w.cancel()

    async def _claim_safely(self) -> int:
        try:
            return await self._claim(self.concurrency - len(self.tasks))
        except StoreError as exc:
            log.warning("claim failed, retrying: %s", exc)
            await asyncio.sleep(min(5.0, self.engine.settings.poll_interval_ms / 1000 * 10))
            return 0

    async def _claim(self, free: int) -> int:
        if free <= 0:
            return 0
        engine = self.engine
        claimed = await engine.store.claim(engine.app.id, self.owner, free, engine.clock.now_ms(),
                                           engine.settings.lease_ms)
        for item in claimed:
            self.leases[item.item_id] = item.lease_token
            task = asyncio.create_task(self._execute(item), context=contextvars.Context())
            self.tasks.add(task)
            task.add_done_callback(self._done(item.item_id))
        return len(claimed)

    def _done(self, item_id: str) -> Any:
        def callback(task: asyncio.Task[None]) -> None:
            self.tasks.discard(task)
            self.leases.pop(item_id, None)
            if self._wake is not None:
                self._wake.set()  # capacity is free again
            if not task.cancelled() and task.exception() is not None:
                log.error("attempt crashed", exc_info=task.exception())
        return callback

    async def _keep_leases(self, stop: asyncio.Event) -> None:
        period = self.engine.settings.lease_ms / 3000
        while not stop.is_set():
            await asyncio.sleep(period)
            if not self.leases:
                continue
            until = self.engine.clock.now_ms() + self.engine.settings.lease_ms
            try:
                lost = await self.engine.store.extend_leases(self.owner, dict(self.leases), until)
            except StoreError as exc:
                log.warning("lease extension failed: %s", exc)
                continue
            for item_id in lost:
                self.leases.pop(item_id, None)

    async def _announce(self, stop: asyncio.Event) -> None:
        """Heartbeat the worker's row so `outlast workers` can list live workers."""
        started = self.engine.clock.now_ms()
        while not stop.is_set():
            info = WorkerInfo(self.owner, self.engine.app.id, socket.gethostname(), os.getpid(), started,
                              self.engine.clock.now_ms())
            try:
                await self.engine.store.heartbeat(info)
            except StoreError as exc:
                log.warning("worker heartbeat failed: %s", exc)
            await asyncio.sleep(HEARTBEAT_S)

    async def _refresh_functions(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(self.engine.settings.refresh_functions_ms / 1000)
            try:
                await self.engine.refresh_registry()
            except StoreError as exc:
                log.warning("could not refresh function configurations: %s", exc)

    # -- one attempt ---------------------------------------------------------------------------

    async def _execute(self, item: Claimed) -> None:
        state = item.run
        assert state is not None
        engine = self.engine
        fn = engine.app.functions.get(state.function_id)
        compiled = engine.registry.get(state.app_id, state.function_id)
        max_attempts = compiled.max_attempts if compiled else (fn.config["retries"] + 1 if fn else 1)
        attempt = Attempt(engine, item, max_attempts)
        engine.notify(state.run_id, "running", state.function_id)
        if fn is None:
            await attempt.finish(_missing(state.function_id))
        else:
            await attempt.finish(self._call_handler(fn, attempt))
        engine.notify(state.run_id, attempt.outcome, state.function_id)

    def _call_handler(self, fn: Any, attempt: Attempt) -> Any:
        state = attempt.state
        events = [e.to_event() for e in state.events]
        logger = ReplayAwareLogger(user_log, lambda: attempt.replaying,
                                   {"run_id": state.run_id, "function_id": state.function_id})
        step = Step(attempt)
        common: dict[str, Any] = dict(event=events[0], events=events, run_id=state.run_id,
                                      function_id=state.function_id, logger=logger, _function_attempt=state.attempt)
        if fn.is_async:
            return fn.handler(Context(step=step, **common))
        loop = asyncio.get_running_loop()
        ctx = SyncContext(step=SyncStep(step, loop), **common)
        run_in = contextvars.copy_context()
        return loop.run_in_executor(self.engine.handler_threads, lambda: run_in.run(fn.handler, ctx))


async def _missing(function_id: str) -> None:
    from outlast.errors import NonRetriableError

    raise NonRetriableError(f"function {function_id!r} is not defined in this app any more")


__all__ = ["Finish", "Worker"]
