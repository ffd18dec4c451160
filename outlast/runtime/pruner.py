"""The background pruner: one worker at a time deletes what retention no longer keeps, in small
batches, and vacuums what the database does not vacuum by itself (the values it works with are in
`outlast.core.upkeep`)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from outlast.core.upkeep import (
    CHORE_TICK_MS,
    CHURNING_TABLES,
    MAX_PRUNE_INTERVAL_MS,
    MIN_PRUNE_INTERVAL_MS,
    PRUNE_BATCH,
    PRUNE_LEASE_MS,
    PRUNE_PAUSE_S,
    PRUNED_TABLES,
    RETENTION_CHORE,
    VACUUM_PRUNED_EVERY_MS,
    PruneResult,
)
from outlast.errors import StoreError

if TYPE_CHECKING:
    from outlast.runtime.engine import Engine

log = logging.getLogger("outlast.retention")


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
        next_prune = next_messages = 0
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
                kept_for, now = self.engine.settings.realtime_retention, self.engine.clock.now_ms()
                if kept_for > 0 and now >= next_messages:
                    next_messages = now + prune_interval_ms(kept_for)
                    await self.prune_messages(now - kept_for)
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
        return await self.engine.store.take_chore(
            RETENTION_CHORE, self.owner, self.engine.clock.now_ms(), PRUNE_LEASE_MS
        )

    async def prune(
        self, before_ms: int, *, stop: asyncio.Event | None = None, lease: bool = True, pause_s: float = PRUNE_PAUSE_S
    ) -> PruneResult:
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

    async def prune_messages(self, before_ms: int) -> int:
        """Delete realtime messages published before `before_ms`, batch after batch; how many went."""
        removed = 0
        while batch := await self.engine.store.prune_messages(before_ms=before_ms, limit=PRUNE_BATCH):
            removed += batch
            if batch < PRUNE_BATCH:
                break
        if removed:
            log.info("realtime retention removed %d messages", removed)
        return removed
