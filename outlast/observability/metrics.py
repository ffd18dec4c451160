"""Prometheus metrics (`pip install 'outlast[metrics]'`), fed by the engine's observations.

    metrics = install_metrics(engine)        # None when prometheus_client is not installed
    await metrics.sample()                   # before each scrape: the queue's shape
    body = metrics.exposition()

Every name starts with `outlast_`; labels take bounded values only (app and function ids, statuses,
outcomes, step kinds, queue states, the backend), never a run, step or event id.

Cost. The bus subscriber runs on the worker's event loop for every step and attempt, so it only
adds to plain integers (a few hundred nanoseconds); prometheus_client turns them into metric
families when scraped. The group-commit hook runs on the store's threads and takes one lock per
group. Queue depth, lag and pending waits are read from the store at scrape time (`sample`).
"""

from __future__ import annotations

import bisect
import logging
import threading
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from outlast.core.observe import AttemptEnded, AttemptStarted, EventsReceived, Observation, StepEnded
from outlast.core.upkeep import QueueStats
from outlast.errors import StoreError

if TYPE_CHECKING:
    from outlast.runtime.engine import Engine

log = logging.getLogger("outlast.metrics")
_installed: weakref.WeakKeyDictionary[Engine, Metrics] = weakref.WeakKeyDictionary()

#: seconds; steps are often milliseconds, runs may last days
STEP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
RUN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
#: a scrape waits this long for the queue's shape, then answers without it
SAMPLE_TIMEOUT_S = 2.0
_PENDING_STEPS = ("sleeping", "waiting", "invoking")
_ENDED = ("completed", "failed")
_QUEUE_STATES = ("due", "leased", "scheduled")
_WAIT_KINDS = ("wait", "invoke", "cancel")


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


class Histogram:
    """Counts per bucket (not cumulative) and a sum; made cumulative when exported."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def buckets(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        total = 0
        for bound, count in zip((*map(_le, self.bounds), "+Inf"), self.counts, strict=True):
            total += count
            out.append((bound, total))
        return out


class FunctionStats:
    """What happened to one function's runs in this process."""

    __slots__ = ("attempts", "ended", "run_seconds", "started", "step_attempts", "step_failures", "step_seconds")

    def __init__(self) -> None:
        self.started = 0
        self.ended: dict[str, int] = {}
        self.attempts: dict[str, int] = {}
        self.run_seconds: dict[str, Histogram] = {}
        self.step_attempts: dict[str, int] = {}
        self.step_failures: dict[str, int] = {}
        self.step_seconds = Histogram(STEP_BUCKETS)


class Metrics:
    def __init__(self, engine: Engine) -> None:
        from prometheus_client import CollectorRegistry
        from prometheus_client.process_collector import ProcessCollector

        self.engine = engine
        self.backend = "postgresql" if type(engine.store).__name__.startswith("Postgres") else "sqlite"
        self.functions: dict[tuple[str, str], FunctionStats] = {}
        self.events = 0
        self.commit_size = Histogram(BATCH_BUCKETS)
        self.commit_seconds = Histogram(COMMIT_BUCKETS)
        self._commit_lock = threading.Lock()
        self.queue: QueueStats | None = None
        self.sampled_at = 0
        self.registry = CollectorRegistry()
        self.registry.register(_Collector(self))
        ProcessCollector(registry=self.registry)

    # -- the bus subscriber (the worker's event loop: keep it cheap) ------------------------------

    def _fn(self, app_id: str, function_id: str) -> FunctionStats:
        key = (app_id, function_id)
        found = self.functions.get(key)
        if found is None:
            found = self.functions[key] = FunctionStats()
        return found

    def observe(self, o: Observation) -> None:
        if type(o) is StepEnded:
            if o.status in _PENDING_STEPS:
                return  # not an attempt yet: it resolves later
            f = self._fn(o.app_id, o.function_id)
            f.step_attempts[o.kind] = f.step_attempts.get(o.kind, 0) + 1
            if o.error is not None:
                f.step_failures[o.kind] = f.step_failures.get(o.kind, 0) + 1
            if o.kind == "run":
                f.step_seconds.observe(o.duration_ms / 1000)
        elif type(o) is AttemptEnded:
            f = self._fn(o.app_id, o.function_id)
            f.attempts[o.outcome] = f.attempts.get(o.outcome, 0) + 1
            if o.outcome in _ENDED:
                f.ended[o.outcome] = f.ended.get(o.outcome, 0) + 1
                if o.run_duration_ms is not None:
                    hist = f.run_seconds.get(o.outcome) or f.run_seconds.setdefault(o.outcome, Histogram(RUN_BUCKETS))
                    hist.observe(o.run_duration_ms / 1000)
        elif type(o) is AttemptStarted:
            if o.first_start:
                self._fn(o.app_id, o.function_id).started += 1
        elif type(o) is EventsReceived:
            self.events += o.count

    def observe_group(self, size: int, seconds: float) -> None:
        """The store's group-commit hook (called from its database threads)."""
        with self._commit_lock:
            self.commit_size.observe(size)
            self.commit_seconds.observe(seconds)

    # -- scrapes -------------------------------------------------------------------------------

    async def sample(self) -> None:
        """Read the queue's shape from the store (within SAMPLE_TIMEOUT_S; else it is left out)."""
        import asyncio

        now = self.engine.clock.now_ms()
        try:
            self.queue = await asyncio.wait_for(self.engine.reads.queue_stats(now), SAMPLE_TIMEOUT_S)
            self.sampled_at = now
        except (StoreError, TimeoutError) as exc:
            self.queue = None
            log.warning("metrics: could not read the queue: %s", exc or "timed out")

    def exposition(self) -> bytes:
        from prometheus_client import generate_latest

        exposition: bytes = generate_latest(self.registry)
        return exposition


class _Collector:
    """The metric families, made from the plain counts when scraped."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        yield from self._runs()
        yield from self._commits()
        if self.m.queue is not None:
            yield from self._queue(self.m.queue)

    def _runs(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

        fn = ["app", "function"]
        started = CounterMetricFamily("outlast_runs_started", "Runs that began their first attempt.", labels=fn)
        ended = CounterMetricFamily(
            "outlast_runs_ended", "Runs that ended in a worker, by final status.", labels=[*fn, "status"]
        )
        attempts = CounterMetricFamily(
            "outlast_attempts",
            "Function attempts, by how they ended (completed, failed, suspended, retrying, lost).",
            labels=[*fn, "outcome"],
        )
        run_seconds = HistogramMetricFamily(
            "outlast_run_duration_seconds", "From a run's start to its end.", labels=[*fn, "status"]
        )
        step_attempts = CounterMetricFamily(
            "outlast_step_attempts",
            "Attempts of steps (bodies run; sleeps, sends and invokes resolved at once), by step kind.",
            labels=[*fn, "kind"],
        )
        step_failures = CounterMetricFamily(
            "outlast_step_failures", "Step attempts that failed (to be retried, or for good).", labels=[*fn, "kind"]
        )
        step_seconds = HistogramMetricFamily(
            "outlast_step_duration_seconds", "One attempt of a step's body.", labels=fn
        )
        for (app, function), f in sorted(self.m.functions.items()):
            started.add_metric([app, function], f.started)
            for status, n in sorted(f.ended.items()):
                ended.add_metric([app, function, status], n)
            for outcome, n in sorted(f.attempts.items()):
                attempts.add_metric([app, function, outcome], n)
            for status, hist in sorted(f.run_seconds.items()):
                run_seconds.add_metric([app, function, status], hist.buckets(), hist.sum)
            for kind, n in sorted(f.step_attempts.items()):
                step_attempts.add_metric([app, function, kind], n)
            for kind, n in sorted(f.step_failures.items()):
                step_failures.add_metric([app, function, kind], n)
            if any(f.step_seconds.counts):
                step_seconds.add_metric([app, function], f.step_seconds.buckets(), f.step_seconds.sum)
        events = CounterMetricFamily(
            "outlast_events_received",
            "Events sent to the engine from outside runs (event API, app.send, CLI).",
            value=self.m.events,
        )
        yield from (started, ended, attempts, run_seconds, step_attempts, step_failures, step_seconds, events)

    def _commits(self) -> Iterator[Any]:
        from prometheus_client.core import HistogramMetricFamily

        size = HistogramMetricFamily(
            "outlast_commit_batch_size", "Store requests per group commit.", labels=["backend"]
        )
        seconds = HistogramMetricFamily(
            "outlast_commit_duration_seconds", "Latency of one group commit.", labels=["backend"]
        )
        with self.m._commit_lock:
            size.add_metric([self.m.backend], self.m.commit_size.buckets(), self.m.commit_size.sum)
            seconds.add_metric([self.m.backend], self.m.commit_seconds.buckets(), self.m.commit_seconds.sum)
        yield from (size, seconds)

    def _queue(self, stats: QueueStats) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        depth = GaugeMetricFamily(
            "outlast_queue_depth",
            "Work items per function: due (waiting for a worker), "
            "leased (running) or scheduled (sleeps, retries, timeouts, cron ticks).",
            labels=["app", "function", "state"],
        )
        lag = GaugeMetricFamily(
            "outlast_queue_lag_seconds",
            "Age of the oldest due item per function (0 when none is waiting).",
            labels=["app", "function"],
        )
        seen = set()
        for s in stats.functions:
            seen.add((s.app_id, s.function_id))
            for state, value in zip(_QUEUE_STATES, (s.due, s.leased, s.scheduled), strict=True):
                depth.add_metric([s.app_id, s.function_id, state], value)
            age = 0 if s.oldest_due_at is None else max(0, self.m.sampled_at - s.oldest_due_at) / 1000
            lag.add_metric([s.app_id, s.function_id], age)
        for app_id, functions in self.m.engine.registry.apps().items():
            for f in functions:
                if (app_id, f.id) not in seen:  # known but idle: zeros, not missing series
                    for state in _QUEUE_STATES:
                        depth.add_metric([app_id, f.id, state], 0)
                    lag.add_metric([app_id, f.id], 0)
        waits = GaugeMetricFamily(
            "outlast_waits_pending", "Stored waits: wait_for_event, invoke and cancel rules.", labels=["kind"]
        )
        for kind in _WAIT_KINDS:
            waits.add_metric([kind], stats.waits.get(kind, 0))
        yield from (depth, lag, waits)


def _le(bound: float) -> str:
    from prometheus_client.utils import floatToGoString

    return str(floatToGoString(bound))  # type: ignore[no-untyped-call]
