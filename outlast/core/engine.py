"""The engine: one app's functions over a store and a clock.

It plans runs for incoming events (the store calls back into it inside its transactions),
sends events, commits attempts, and tells observers about run state changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from outlast.core.clock import Clock
from outlast.core.expressions import compile_expression
from outlast.core.ids import new_ulid
from outlast.core.registry import Registry, RunPlan
from outlast.events import Event, EventRecord, validate_event
from outlast.settings import Settings
from outlast.storage.base import Commit, CommitResult, Finish, Store, Suspend

if TYPE_CHECKING:
    from outlast.client import Outlast

log = logging.getLogger("outlast")
Observer = Callable[[str, str, str], None]  # (run_id, function_id, what happened)


class Engine:
    def __init__(self, app: Outlast, store: Store, clock: Clock, settings: Settings) -> None:
        self.app = app
        self.store = store
        self.clock = clock
        self.settings = settings
        self.registry = Registry()
        self.registry_version = -1
        self.threads = ThreadPoolExecutor(settings.sync_threads, thread_name_prefix="outlast-step")
        self.handler_threads = ThreadPoolExecutor(settings.worker_concurrency, thread_name_prefix="outlast-fn")
        self.observers: list[Observer] = []
        self.wakers: list[Callable[[], None]] = []
        self.opened = False
        store.bind(self)

    async def open(self) -> None:
        if self.opened:
            return
        await self.store.open()
        await self.store.sync_functions(self.app.id, [f.config for f in self.app.functions.values()],
                                        self.clock.now_ms())
        await self.refresh_registry(force=True)
        self.opened = True

    async def close(self) -> None:
        await self.store.close()
        self.threads.shutdown(wait=False, cancel_futures=True)
        self.handler_threads.shutdown(wait=False, cancel_futures=True)
        self.opened = False

    async def refresh_registry(self, *, force: bool = False) -> None:
        if not force and await self.store.functions_version() == self.registry_version:
            return
        version, configs = await self.store.load_functions()
        self.registry = Registry(configs)
        self.registry_version = version

    # -- the Planner the store calls inside its transactions ---------------------------------

    def plan(self, event: EventRecord, now_ms: int) -> list[RunPlan]:
        return self.registry.plan(event, now_ms)

    def has_concurrency_limits(self) -> bool:
        return self.registry.has_concurrency_limits

    def matches(self, expression: str, trigger: dict[str, Any], incoming: dict[str, Any]) -> bool:
        return compile_expression(expression).matches({"event": trigger, "async": incoming})

    # -- events --------------------------------------------------------------------------------

    def validate(self, events: Event | dict[str, Any] | list[Event | dict[str, Any]], *,
                 allow_system: bool = False) -> list[EventRecord]:
        items = events if isinstance(events, list) else [events]
        now = self.clock.now_ms()
        return [validate_event(e, internal_id=new_ulid(now), now_ms=now, max_bytes=self.settings.max_event_bytes,
                               index=i, allow_system=allow_system) for i, e in enumerate(items)]

    async def send(self, events: Event | dict[str, Any] | list[Event | dict[str, Any]]) -> list[str]:
        records = self.validate(events)
        ids = await self.store.ingest(records, self.clock.now_ms())
        self.wake()
        return ids

    def wake(self) -> None:
        for waker in self.wakers:
            waker()

    # -- attempts ------------------------------------------------------------------------------

    async def commit(self, commit: Commit) -> CommitResult:
        result = await self.store.commit(commit)
        if result.ok and (commit.events or isinstance(commit.outcome, (Suspend, Finish))):
            self.wake()  # new runs, or a run that may be due again soon
        return result

    def notify(self, run_id: str, what: str, function_id: str = "") -> None:
        for observer in self.observers:
            try:
                observer(run_id, function_id, what)
            except Exception:  # an observer must never break a run
                log.exception("run observer failed")
