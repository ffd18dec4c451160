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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from outlast.core.clock import Clock
from outlast.core.collector import GC_PAUSE_MIN, gc_paused
from outlast.core.config import FunctionConfig
from outlast.core.events import validate_event
from outlast.core.ids import new_ulids
from outlast.core.models import AppScope, Claims, Commit, CommitResult, EventRecord, Finish, Suspend
from outlast.core.observe import Bus, EventsReceived
from outlast.core.planner import Planner
from outlast.core.registry import Registry
from outlast.core.signals import checked_signal
from outlast.core.sources import FunctionSource, LocalFunction
from outlast.core.trace_context import carry_trace, current_trace
from outlast.errors import OutlastError
from outlast.runtime.drivers.base import Connected, Driver
from outlast.runtime.pausing import PausedFunctions
from outlast.settings import Settings

if TYPE_CHECKING:
    from outlast.runtime.realtime import Hub
    from outlast.storage.base import Backend, Reads, Store, SyncMode


@dataclass(frozen=True, slots=True, kw_only=True)
class SendClaim:
    """What an idle worker asks of a send: claim up to `limit` items of `scope` for `owner` in the
    send's transaction, then hand them to `take`; `release` when the send failed."""

    scope: AppScope
    owner: str
    limit: int
    take: Callable[[Claims], None]
    release: Callable[[], None]


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
        #: apps whose functions this engine's workers run
        self.sources: dict[str, FunctionSource] = {}
        #: apps this process only sends for (their functions are stored provisionally, see `add_sender`)
        self.senders: dict[str, FunctionSource] = {}
        self.drivers: dict[str, Driver] = {}
        self.bus = Bus()
        self.wakers: list[Callable[[], None]] = []
        #: idle workers of this engine that a send may claim for (`Worker.offer`)
        self.idle_claimers: list[Callable[[], SendClaim | None]] = []
        self.opened = False
        self._threads: list[ThreadPoolExecutor] = []
        self._hub: Hub | None = None
        self.paused = PausedFunctions(store)
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

        store = open_store(database_url or settings.database_url, postgres_pool_size=settings.postgres_pool_size)
        return cls(store, clock or SystemClock(), settings, rng=rng)

    @property
    def registry(self) -> Registry:
        return self.planner.registry

    # -- lifecycle -----------------------------------------------------------------------------

    async def open(self) -> None:
        if self.opened:
            return
        await self.store.open()
        for source in self.senders.values():
            await self._sync(source, mode="provisional")
        for source in self.sources.values():
            await self._sync(source)
        await self.refresh_registry(force=True)
        self.opened = True

    async def realtime(self) -> Hub:
        """This process's realtime fan-out over the engine's store (made on first use)."""
        from outlast.runtime.realtime import Hub

        await self.open()
        if self._hub is None:
            self._hub = Hub(self.store, retention_ms=self.settings.realtime_retention, now_ms=self.clock.now_ms)
        return self._hub

    async def close(self) -> None:
        if self._hub is not None:
            await self._hub.close()
            self._hub = None
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

    async def add_sender(self, source: FunctionSource) -> None:
        """Send events for an app whose functions this process does not serve (a client).

        Its functions never change what live workers serve: they are stored only when the app
        has no stored function at all, provisionally, so that events sent before any worker
        started still start runs; the first worker that serves the app replaces them."""
        self.senders[source.id] = source
        if self.opened:
            await self._sync(source, mode="provisional")
            await self.refresh_registry(force=True)

    async def _sync(self, source: FunctionSource, *, mode: SyncMode = "merge") -> None:
        configs = [fn.config for fn in source.functions.values()]
        await self.store.sync_functions(source.id, configs, self.clock.now_ms(), mode=mode)

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
        each served app when a driver for it (HTTP, Connect) is installed."""
        apps = self.registry.apps()
        scopes = [
            AppScope(
                app_id=app_id,
                functions=tuple(sorted(source.functions)),
                known=tuple(sorted(f.id for f in apps.get(app_id, ()))),
            )
            for app_id, source in sorted(self.sources.items())
        ]
        if len(self.drivers) > ("local" in self.drivers):  # http, connect
            scopes += [
                AppScope(app_id=app_id)
                for app_id, fns in sorted(apps.items())
                if app_id not in self.sources and any(self._serves(f.config.runtime.kind, app_id) for f in fns)
            ]
        return scopes

    def _serves(self, kind: str, app_id: str) -> bool:
        """Whether this process can run functions of runtime `kind` of a served app: HTTP apps
        wherever the driver is installed; Connect apps only while one of their workers is
        connected here (another server process claims the runs of workers connected to it)."""
        driver = self.drivers.get(kind) if kind != "local" else None
        return driver is not None and (not isinstance(driver, Connected) or driver.serves(app_id))

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
        if (
            self.senders and not self.sources
        ):  # no worker here refreshes the functions: the live workers' may have changed
            await self.refresh_registry()
        ids = await self._ingest(records, self.clock.now_ms())
        self.wake()
        if self.bus:
            self.bus.emit(EventsReceived(count=len(records)))
        return ids

    async def _ingest(self, records: list[EventRecord], now: int) -> list[str]:
        """Store the events; when a worker of this engine is idle, claim for it in the same
        transaction, so the runs they start begin without a claim of their own (issue 28: an idle
        run's claim was a transaction, and on PostgreSQL a sixth of its latency)."""
        offer = next((o for c in self.idle_claimers if (o := c()) is not None), None)
        if offer is None:
            return await self.store.ingest(records, now)
        try:
            ids, claims = await self.store.ingest_and_claim(
                records,
                now,
                scope=offer.scope,
                owner=offer.owner,
                limit=offer.limit,
                lease_ms=self.settings.lease_ms,
                max_crashes=self.settings.max_crashed_attempts,
                crash_backoff_scale=self.settings.backoff_scale,
            )
        except BaseException:
            offer.release()
            raise
        offer.take(claims)
        return ids

    def wake(self) -> None:
        for waker in self.wakers:
            waker()

    async def cancel_run(self, run_id: str) -> bool:
        done = await self.store.cancel_run(run_id, self.clock.now_ms())
        self.wake()
        return done

    async def send_signal(self, signal: Any, data: Any = None, *, hold: Any = None) -> str | None:
        """Resume the run waiting on `signal` and return its id (None when no run waits: the signal
        is then dropped, or held for `hold`). Bad input raises InvalidSignalError; nothing changes."""
        data, hold_ms = checked_signal(signal, data, hold, max_bytes=self.settings.max_event_bytes)
        now = self.clock.now_ms()
        run_id = await self.store.send_signal(signal, data, now, None if hold_ms is None else now + hold_ms)
        self.wake()
        return run_id

    async def set_paused(self, app_id: str, function_id: str, *, paused: bool) -> bool:
        """Pause or resume a function some live worker or synced app serves (else OutlastError naming
        it); True when that changed anything."""
        await self.refresh_registry()
        if self.function(app_id, function_id) is None:
            raise OutlastError(f"function {function_id!r} of app {app_id!r}: no live worker or synced app serves it")
        changed = await self.store.set_paused(app_id, function_id, paused, self.clock.now_ms())
        self.paused.forget()
        self.wake()
        return changed

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


__all__ = ["Engine"]
