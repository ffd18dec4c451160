"""Prometheus metrics (`pip install 'outlast[metrics]'`), fed by the engine's observations.

    metrics = install_metrics(engine)        # None when prometheus_client is not installed
    await metrics.sample()                   # before each scrape: the queue's shape
    body = metrics.exposition()

Every name starts with `outlast_`; labels take bounded values only (app and function ids, statuses,
step kinds, the backend), never a run, step or event id. Counters and histograms are updated by
the bus subscriber as attempts happen; queue depth, lag and pending waits are read from the store
when scraped (`sample`), so nothing is paid between scrapes.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from outlast.core.observe import AttemptEnded, AttemptStarted, EventsReceived, Observation, StepEnded
from outlast.core.upkeep import QueueStats
from outlast.errors import StoreError

if TYPE_CHECKING:
    from outlast.core.engine import Engine

log = logging.getLogger("outlast.metrics")
_installed: weakref.WeakKeyDictionary[Engine, Metrics] = weakref.WeakKeyDictionary()

#: seconds; steps are often milliseconds, runs may last days
STEP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
RUN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
#: a scrape waits this long for the queue's shape, then answers without it
SAMPLE_TIMEOUT_S = 2.0
_ENDED = ("completed", "failed")
_PENDING_STEPS = ("sleeping", "waiting", "invoking")


def install_metrics(engine: Engine) -> Metrics | None:
    """The engine's metrics, subscribed once; None when prometheus_client is not installed."""
    if engine in _installed:
        return _installed[engine]
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return None
    metrics = _installed[engine] = Metrics(engine)
    engine.bus.subscribe(metrics.observe)
    if hasattr(engine.store, "group_observer"):
        engine.store.group_observer = metrics.observe_group
    return metrics


class _Function:
    """The labelled children of one (app, function), resolved once (labels() costs a lock and a hash)."""

    __slots__ = ("attempts", "ended", "run_seconds", "started", "step_attempts", "step_failures", "step_seconds")

    def __init__(self, m: Metrics, app: str, fn: str) -> None:
        self.started = m.runs_started.labels(app, fn)
        self.ended = {s: m.runs_ended.labels(app, fn, s) for s in _ENDED}
        self.run_seconds = {s: m.run_seconds.labels(app, fn, s) for s in _ENDED}
        self.attempts: dict[str, Any] = {}
        self.step_attempts: dict[str, Any] = {}
        self.step_failures: dict[str, Any] = {}
        self.step_seconds = m.step_seconds.labels(app, fn)


class Metrics:
    def __init__(self, engine: Engine) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram
        from prometheus_client.process_collector import ProcessCollector

        self.engine = engine
        self.registry = r = CollectorRegistry()
        fn = ["app", "function"]
        self.runs_started = Counter("outlast_runs_started", "Runs that began their first attempt.", fn, registry=r)
        self.runs_ended = Counter("outlast_runs_ended", "Runs that ended in a worker, by final status.",
                                  [*fn, "status"], registry=r)
        self.attempts = Counter("outlast_attempts", "Function attempts, by how they ended (completed, failed, "
                                "suspended, retrying, lost).", [*fn, "outcome"], registry=r)
        self.run_seconds = Histogram("outlast_run_duration_seconds", "From a run's start to its end.",
                                     [*fn, "status"], buckets=RUN_BUCKETS, registry=r)
        self.step_attempts = Counter("outlast_step_attempts", "Attempts of steps (bodies run, sleeps, waits, "
                                     "invokes and sends resolved), by step kind.", [*fn, "kind"], registry=r)
        self.step_failures = Counter("outlast_step_failures", "Step attempts that failed (retried or final).",
                                     [*fn, "kind"], registry=r)
        self.step_seconds = Histogram("outlast_step_duration_seconds", "Duration of one attempt of a step's body.",
                                      fn, buckets=STEP_BUCKETS, registry=r)
        self.events = Counter("outlast_events_received", "Events sent to the engine from outside runs (event "
                              "API, app.send, CLI).", registry=r)
        self.commit_size = Histogram("outlast_commit_batch_size", "Store requests per group commit.", ["backend"],
                                     buckets=BATCH_BUCKETS, registry=r)
        self.commit_seconds = Histogram("outlast_commit_duration_seconds", "Latency of one group commit.",
                                        ["backend"], buckets=COMMIT_BUCKETS, registry=r)
        backend = "postgresql" if type(engine.store).__name__.startswith("Postgres") else "sqlite"
        self._commit = (self.commit_size.labels(backend), self.commit_seconds.labels(backend))
        self._functions: dict[tuple[str, str], _Function] = {}
        self._queue: QueueStats | None = None
        self._sampled_at = 0
        r.register(_QueueCollector(self))
        ProcessCollector(registry=r)

    # -- the bus subscriber (the worker's event loop: keep it cheap) ------------------------------

    def _fn(self, app_id: str, function_id: str) -> _Function:
        found = self._functions.get((app_id, function_id))
        if found is None:
            found = self._functions[(app_id, function_id)] = _Function(self, app_id, function_id)
        return found

    def observe(self, o: Observation) -> None:
        if isinstance(o, StepEnded):
            self._step(o)
        elif isinstance(o, AttemptEnded):
            f = self._fn(o.app_id, o.function_id)
            attempts = f.attempts.get(o.outcome) or f.attempts.setdefault(
                o.outcome, self.attempts.labels(o.app_id, o.function_id, o.outcome))
            attempts.inc()
            if o.outcome in _ENDED:
                f.ended[o.outcome].inc()
                if o.run_duration_ms is not None:
                    f.run_seconds[o.outcome].observe(o.run_duration_ms / 1000)
        elif isinstance(o, AttemptStarted):
            if o.first_start:
                self._fn(o.app_id, o.function_id).started.inc()
        elif isinstance(o, EventsReceived):
            self.events.inc(o.count)

    def _step(self, o: StepEnded) -> None:
        if o.status in _PENDING_STEPS:
            return  # not an attempt yet: it resolves later
        f = self._fn(o.app_id, o.function_id)
        attempts = f.step_attempts.get(o.kind) or f.step_attempts.setdefault(
            o.kind, self.step_attempts.labels(o.app_id, o.function_id, o.kind))
        attempts.inc()
        if o.error is not None:
            failures = f.step_failures.get(o.kind) or f.step_failures.setdefault(
                o.kind, self.step_failures.labels(o.app_id, o.function_id, o.kind))
            failures.inc()
        if o.kind == "run":
            f.step_seconds.observe(o.duration_ms / 1000)

    def observe_group(self, size: int, seconds: float) -> None:
        """The store's group-commit hook (called from its database threads)."""
        self._commit[0].observe(size)
        self._commit[1].observe(seconds)

    # -- scrapes -------------------------------------------------------------------------------

    async def sample(self) -> None:
        """Read the queue's shape from the store (within SAMPLE_TIMEOUT_S; else it is left out)."""
        import asyncio

        now = self.engine.clock.now_ms()
        try:
            self._queue = await asyncio.wait_for(self.engine.store.queue_stats(now), SAMPLE_TIMEOUT_S)
            self._sampled_at = now
        except (StoreError, TimeoutError) as exc:
            self._queue = None
            log.warning("metrics: could not read the queue: %s", exc or "timed out")

    def exposition(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class _QueueCollector:
    """Queue depth and lag per function, and pending waits, as of the last `sample`."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        stats = self.metrics._queue
        if stats is None:
            return
        now = self.metrics._sampled_at
        depth = GaugeMetricFamily("outlast_queue_depth", "Work items per function: due (waiting for a worker), "
                                  "leased (running) or scheduled (sleeps, retries, timeouts, cron ticks).",
                                  labels=["app", "function", "state"])
        lag = GaugeMetricFamily("outlast_queue_lag_seconds", "Age of the oldest due item per function "
                                "(0 when none is waiting).", labels=["app", "function"])
        seen = set()
        for s in stats.functions:
            seen.add((s.app_id, s.function_id))
            for state, value in (("due", s.due), ("leased", s.leased), ("scheduled", s.scheduled)):
                depth.add_metric([s.app_id, s.function_id, state], value)
            lag.add_metric([s.app_id, s.function_id], 0 if s.oldest_due_at is None else (now - s.oldest_due_at) / 1000)
        for app_id, functions in self.metrics.engine.registry.apps().items():
            for f in functions:
                if (app_id, f.id) not in seen:  # known but idle: zeros, not missing series
                    for state in ("due", "leased", "scheduled"):
                        depth.add_metric([app_id, f.id, state], 0)
                    lag.add_metric([app_id, f.id], 0)
        waits = GaugeMetricFamily("outlast_waits_pending", "Stored waits: wait_for_event, invoke and cancel rules.",
                                  labels=["kind"])
        for kind in ("wait", "invoke", "cancel"):
            waits.add_metric([kind], stats.waits.get(kind, 0))
        yield from (depth, lag, waits)
