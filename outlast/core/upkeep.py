"""Upkeep of a store that runs for months: retention (what pruning removes, and the background
pruner one worker at a time runs) and the queue's shape as metrics see it.

Retention deletes finished runs (with their steps, failure histories, log lines and event
effects) that ended before the cutoff, and events received before it that no run refers to any
more (an active run's trigger events, and those of a finished run not yet pruned, stay). Dedupe
and idempotency keys are not retention's business: they expire 24 h after they were taken,
whatever the retention.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from outlast.errors import StoreError

if TYPE_CHECKING:
    from outlast.core.engine import Engine

log = logging.getLogger("outlast.retention")

RETENTION_CHORE = "retention"
#: finished runs (and, separately, events) deleted per transaction: short enough that claims and
#: ingest never wait long behind one
PRUNE_BATCH = 200
#: pause between two batches, so pruning a large backlog leaves the store to the workload
PRUNE_PAUSE_S = 0.02
#: how long the pruning worker holds the retention lease without renewing it
PRUNE_LEASE_MS = 60_000
MIN_PRUNE_INTERVAL_MS = 1_000
MAX_PRUNE_INTERVAL_MS = 300_000
#: tables rewritten all the time (claims, leases, heartbeats): vacuumed every round, where the
#: database does not vacuum by itself
CHURNING_TABLES = ("queue", "workers", "chores", "meta", "gcra", "gathering")
#: tables retention deletes from: vacuumed after a round that removed rows, at most this often
PRUNED_TABLES = ("runs", "steps", "step_failures", "run_logs", "event_effects", "events", "dedupe", "wait_fields",
                 "gcra", "gathering")
VACUUM_PRUNED_EVERY_MS = 60_000
#: how often the retention lease holder looks at its chores
CHORE_TICK_MS = 10_000


@dataclass(slots=True, kw_only=True)
class PruneResult:
    """What pruning removed."""

    runs: int = 0
    steps: int = 0
    events: int = 0
    dedupe_keys: int = 0
    #: rate-limit, throttle, debounce and batch keys that no longer did anything
    flow_keys: int = 0
    wait_fields: int = 0
    #: the batch examined as many events as it could: more may be deletable past them
    more: bool = False

    def __add__(self, other: PruneResult) -> PruneResult:
        return PruneResult(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)
                              if f.name != "more"}, more=other.more)

    def __bool__(self) -> bool:
        """Whether anything was removed."""
        return any(getattr(self, f.name) for f in fields(self) if f.name != "more")

    def describe(self) -> str:
        return (f"{self.runs} runs ({self.steps} steps), {self.events} events, {self.dedupe_keys} expired dedupe "
                f"keys, {self.flow_keys} stale flow-control keys, {self.wait_fields} unused wait index entries")


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueStat:
    """Work items of one function: `due` wait for a worker (the backlog), `leased` are being run,
    `scheduled` are due later (sleeps, retries, timeouts, cron ticks). `oldest_due_at` is the due
    time of the oldest item waiting for a worker (None when none is due)."""

    app_id: str
    function_id: str
    due: int
    leased: int
    scheduled: int
    oldest_due_at: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueStats:
    functions: list[QueueStat]
    #: stored waits by kind (wait, invoke, cancel)
    waits: dict[str, int]


def prune_interval_ms(retention_ms: int) -> int:
    """How often the pruning worker looks for expired rows: a tenth of the retention period,
    between a second and five minutes."""
    return max(MIN_PRUNE_INTERVAL_MS, min(MAX_PRUNE_INTERVAL_MS, retention_ms // 10))


class Pruner:
    """Deletes what retention no longer keeps, in small batches, one process at a time."""

    def __init__(self, engine: Engine, owner: str) -> None:
        self.engine = engine
        self.owner = owner
        self._vacuumed_at = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Every few seconds, take the retention lease if nobody holds it; then vacuum what the
        database does not vacuum itself and, every `prune_interval_ms`, prune."""
        retention = self.engine.settings.retention
        interval = prune_interval_ms(retention)
        next_prune = 0
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), min(interval, CHORE_TICK_MS) / 1000)
                return
            except TimeoutError:
                pass
            try:
                if not await self._lease():
                    continue
                removed = PruneResult()
                if retention > 0 and self.engine.clock.now_ms() >= next_prune:
                    next_prune = self.engine.clock.now_ms() + interval
                    removed = await self.prune(self.engine.clock.now_ms() - retention, stop=stop)
                    if removed:
                        log.info("retention removed %s", removed.describe())
                await self._vacuum(pruned=bool(removed))
            except StoreError as exc:
                log.warning("pruning failed, will try again: %s", exc)

    async def _vacuum(self, *, pruned: bool) -> None:
        """Where the database does not vacuum by itself, vacuum what churns, and what pruning
        emptied now and then, so dead rows do not pile up."""
        now = self.engine.clock.now_ms()
        tables: tuple[str, ...] = CHURNING_TABLES
        if pruned and now - self._vacuumed_at >= VACUUM_PRUNED_EVERY_MS:
            tables, self._vacuumed_at = tables + PRUNED_TABLES, now
        await self.engine.store.vacuum(tables)

    async def _lease(self) -> bool:
        return await self.engine.store.take_chore(RETENTION_CHORE, self.owner, self.engine.clock.now_ms(),
                                                  PRUNE_LEASE_MS)

    async def prune(self, before_ms: int, *, stop: asyncio.Event | None = None, lease: bool = True,
                    pause_s: float = PRUNE_PAUSE_S) -> PruneResult:
        """Prune batch after batch until nothing older than `before_ms` is left (or `stop` is set,
        or another process took the lease over)."""
        store, total = self.engine.store, PruneResult()
        while stop is None or not stop.is_set():
            batch = await store.prune(before_ms=before_ms, now_ms=self.engine.clock.now_ms(), limit=PRUNE_BATCH)
            total += batch
            if not (batch or batch.more):
                break
            if lease and not await self._lease():
                break
            if pause_s and not batch.more:  # behind (a full batch): go on at once
                await asyncio.sleep(pause_s)
        try:
            total.wait_fields += await store.shrink_wait_fields()
        except StoreError as exc:  # busy (it gives way to transactions storing waits): next time
            log.info("unused wait_fields entries not removed this time: %s", exc)
        return total
