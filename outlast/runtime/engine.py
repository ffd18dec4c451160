"""The engine: a store, a clock and settings, and the functions known to the store.

It runs on the store's engine seam (`store`, a `Store`) and hands the same database's read
models (`reads`, `Reads`) to readers: the server, the CLI, metrics.

It is bound to no app. Local functions arrive through `FunctionSource`s (an `Outlast` app is
one); served apps' functions arrive by sync (the server). The registry is whatever the store
holds, so one engine can drive many apps. The store calls back into the engine's planner
inside its transactions; drivers are chosen per function runtime.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from outlast.core.clock import Clock
from outlast.core.collector import GC_PAUSE_MIN, gc_paused
from outlast.core.config import FunctionConfig
from outlast.core.events import validate_event
from outlast.core.ids import new_ulids
from outlast.core.models import AppScope, Commit, CommitResult, EventRecord, Finish, Suspend
from outlast.core.observe import Bus, EventsReceived
from outlast.core.planner import Planner
from outlast.core.registry import Registry
from outlast.core.sources import FunctionSource, LocalFunction
from outlast.core.trace_context import carry_trace, current_trace
from outlast.errors import StoreError
from outlast.runtime.drivers.base import Driver
from outlast.settings import Settings

if TYPE_CHECKING:
    from outlast.storage.base import Backend, Reads, Store

log = logging.getLogger("outlast")
EventsInput = Any  # one event (a JSON object or anything with `to_dict()`), or a list of them


class Engine:
    def __init__(self, store: Backend, clock: Clock, settings: Settings, *, rng: random.Random | None = None) -> None:
        #: the engine's seam (what running functions needs)
        self.store: Store = store
        #: the same database's read models, for readers (the server, the CLI, metrics); never the engine's
        self.reads: Reads = store
        self.clock = clock
        self.settings = settings
        #: randomness (retry jitter) is injected like the clock
        self.rng = rng or random.Random()
        self.planner = Planner()
        self.registry_version = -1
        self.sources: dict[str, FunctionSource] = {}
        self.drivers: dict[str, Driver] = {}
        self.bus = Bus()
        self.wakers: list[Callable[[], None]] = []
        #: queue items whose attempt an SDK checkpointed steps for through this process's server
        #: (the attempt reloads its memo before its next call: `runtime.checkpoints`)
        self.checkpointed: set[str] = set()
        self.opened = False
        self._threads: list[ThreadPoolExecutor] = []
        store.bind(self.planner)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        clock: Clock | None = None,
        database_url: str | None = None,
        rng: random.Random | None = None,
    ) -> Engine:
        """An engine on the store `database_url` (default: the settings' one) names."""
        from outlast.core.clock import SystemClock
        from outlast.storage import open_store

        return cls(open_store(database_url or settings.database_url), clock or SystemClock(), settings, rng=rng)

    @property
    def registry(self) -> Registry:
        return self.planner.registry

    # -- lifecycle -----------------------------------------------------------------------------

    async def open(self) -> None:
        if self.opened:
            return
        await self.store.open()
        for source in self.sources.values():
            await self._sync(source)
        await self.refresh_registry(force=True)
        self.opened = True

    async def close(self) -> None:
        await self.store.close()
        for pool in self._threads:
            pool.shutdown(wait=False, cancel_futures=True)
        self._threads.clear()
        self.opened = False

    def thread_pool(self, size: int, name: str) -> ThreadPoolExecutor:
        """A thread pool that lives as long as the engine (drivers run blocking code in them)."""
        pool = ThreadPoolExecutor(size, thread_name_prefix=name)
        self._threads.append(pool)
        return pool

    # -- functions -----------------------------------------------------------------------------

    async def add_source(self, source: FunctionSource) -> None:
        """Serve an app's local functions (synced at once if the engine is open)."""
        from outlast.runtime.drivers.local import LocalDriver  # the one core module that imports the SDK

        self.sources[source.id] = source
        if "local" not in self.drivers:
            self.drivers["local"] = LocalDriver(
                lookup=self.local_function,
                validate=self.validate,
                step_threads=self.thread_pool(self.settings.sync_threads, "outlast-step"),
                handler_threads=self.thread_pool(self.settings.worker_concurrency, "outlast-fn"),
                max_steps_per_run=self.settings.max_steps_per_run,
            )
        if self.opened:
            await self._sync(source)
            await self.refresh_registry(force=True)

    async def _sync(self, source: FunctionSource) -> None:
        configs = [fn.config for fn in source.functions.values()]
        await self.store.sync_functions(source.id, configs, self.clock.now_ms(), mode="merge")

    async def refresh_registry(self, *, force: bool = False) -> None:
        if not force and await self.store.functions_version() == self.registry_version:
            return
        version, configs = await self.store.load_functions()
        self.planner.registry = Registry(configs, on_invalid=_skip_invalid)
        self.registry_version = version

    def local_function(self, app_id: str, function_id: str) -> LocalFunction | None:
        source = self.sources.get(app_id)
        return None if source is None else source.functions.get(function_id)

    def known_function(self, slug: str) -> bool:
        """Whether a function can be invoked: some live worker or synced app serves it."""
        return self.registry.by_slug(slug) is not None

    def function(self, app_id: str, function_id: str) -> FunctionConfig | None:
        compiled = self.registry.get(app_id, function_id)
        return None if compiled is None else compiled.config

    def claim_scopes(self) -> list[AppScope]:
        """What this engine's workers may claim: each local app's functions served here (plus
        runs of functions nobody serves any more, to fail them clearly), and every function of
        each served app when an HTTP driver is installed."""
        apps = self.registry.apps()
        scopes = [
            AppScope(
                app_id=app_id,
                functions=tuple(sorted(source.functions)),
                known=tuple(sorted(f.id for f in apps.get(app_id, ()))),
            )
            for app_id, source in sorted(self.sources.items())
        ]
        if "http" in self.drivers:
            scopes += [
                AppScope(app_id=app_id)
                for app_id, fns in sorted(apps.items())
                if app_id not in self.sources and any(f.config.runtime.kind == "http" for f in fns)
            ]
        return scopes

    # -- events --------------------------------------------------------------------------------

    def validate(self, events: EventsInput, *, allow_system: bool = False) -> list[EventRecord]:
        items = events if isinstance(events, list) else [events]
        now = self.clock.now_ms()
        ids = new_ulids(len(items), now)
        with gc_paused() if len(items) >= GC_PAUSE_MIN else contextlib.nullcontext():
            return [
                validate_event(
                    e,
                    internal_id=ids[i],
                    now_ms=now,
                    max_bytes=self.settings.max_event_bytes,
                    index=i,
                    allow_system=allow_system,
                )
                for i, e in enumerate(items)
            ]

    async def send(
        self, events: EventsInput, *, trace: dict[str, str] | None = None, allow_system: bool = False
    ) -> list[str]:
        """Store events from outside a run: the one ingest path (the event API, the dashboard, the
        JSON API, the CLI and clients all send here). They carry `trace` (a W3C trace context, e.g.
        from a request's `traceparent` header), else the caller's active OpenTelemetry span, if any.
        `allow_system`: accept `inngest/` names (the dashboard's and the API's invoke event)."""
        records = self.validate(events, allow_system=allow_system)
        carry_trace(records, trace or current_trace())
        ids = await self.store.ingest(records, self.clock.now_ms())
        self.wake()
        if self.bus:
            self.bus.emit(EventsReceived(count=len(records)))
        return ids

    def wake(self) -> None:
        for waker in self.wakers:
            waker()

    async def cancel_run(self, run_id: str) -> bool:
        done = await self.store.cancel_run(run_id, self.clock.now_ms())
        self.wake()
        return done

    # -- attempts ------------------------------------------------------------------------------

    async def commit(self, commit: Commit) -> CommitResult:
        result = await self.store.commit(commit)
        if result.ok and (commit.events or isinstance(commit.outcome, (Suspend, Finish))):
            self.wake()  # new runs, or a run that may be due again soon
        return result


def _skip_invalid(config: FunctionConfig, exc: Exception) -> None:
    log.warning(
        "function %r of app %r is stored with a configuration this version cannot honour; it is ignored here: %s",
        config.id,
        config.app_id,
        exc,
    )


__all__ = ["Engine", "StoreError"]
