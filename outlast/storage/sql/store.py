"""The async `Store` and `Reads` over the shared SQL (a `Backend`); backends supply `_run` (one
transaction)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from outlast.core.config import FunctionConfig
from outlast.core.jobs import QueueJob
from outlast.core.models import (
    AppScope,
    Claims,
    Commit,
    CommitResult,
    EventEffect,
    EventFilter,
    EventRecord,
    LogLine,
    Run,
    RunFilter,
    RunPlan,
    StepWrite,
    SyncedApp,
    WorkerInfo,
)
from outlast.core.realtime import Message, MessageRecord
from outlast.core.upkeep import PruneResult, QueueStats
from outlast.core.views import FunctionStats, RerunLinks, StatusCounts
from outlast.errors import StoreError
from outlast.storage.base import DEFAULT_MAX_CRASHES, PlannerSlot, SyncMode
from outlast.storage.sql import (
    apps,
    commit,
    expression_waits,
    functions,
    held_runs,
    ingest,
    links,
    pausing,
    queue,
    queue_items,
    read,
    realtime,
    retention,
    run_end,
    stats,
    waits,
    workers,
)
from outlast.storage.sql import rerun as reruns
from outlast.storage.sql import signals as signal_sql
from outlast.storage.sql.batches import CheckpointRequest, FinishRequest
from outlast.storage.sql.tx import Tx

T = TypeVar("T")
#: told of each group commit: how many requests it held, and how long it took in seconds
GroupObserver = Callable[[int, float], None]


class SqlStore(PlannerSlot):
    #: set by a metrics subscriber; None costs the group-commit loops nothing
    group_observer: GroupObserver | None = None
    #: run first when shrinking `wait_fields` (PostgreSQL: waits out transactions adding waits)
    _wait_fields_lock: tuple[str, ...] = ()

    async def _run(self, fn: Callable[[Any], T], notify: bool = False) -> T:
        """Run `fn(tx)` in one transaction. `notify`: once committed, the request may have made
        work due (new runs, an attempt ended, an item released, a run cancelled), so a backend
        that can tells idle workers in other processes (PostgreSQL: NOTIFY; SQLite: `wakeup`)."""
        raise NotImplementedError

    async def _read(self, fn: Callable[[Any], T]) -> T:
        """Run the read model `fn(tx)` in one transaction that writes nothing (a backend may serve
        these apart from the writes, so a long read never holds up ingest or claims)."""
        return await self._run(fn)

    def add_listener(self, callback: Callable[[], None]) -> bool:
        return False  # in memory: no other process commits work; SQLite files and PostgreSQL override this

    # -- functions -----------------------------------------------------------------------------

    async def sync_functions(
        self, app_id: str, configs: list[FunctionConfig], now_ms: int, *, mode: SyncMode = "merge"
    ) -> bool:
        return await self._run(lambda tx: functions.sync_functions(tx, app_id, configs, now_ms, mode))

    async def load_functions(self) -> tuple[int, list[FunctionConfig]]:
        return await self._run(functions.load_functions)

    async def functions_version(self) -> int:
        return await self._run(functions.functions_version)

    async def prune_functions(self, stale_before_ms: int) -> list[tuple[str, str]]:
        return await self._run(lambda tx: functions.prune_functions(tx, stale_before_ms))

    async def settle_provisional(self, app_id: str, served: set[str], now_ms: int) -> bool:
        return await self._run(lambda tx: functions.settle_provisional(tx, app_id, served, now_ms))

    # -- events and the queue ------------------------------------------------------------------

    async def ingest(self, events: list[EventRecord], now_ms: int) -> list[str]:
        return await self._run(lambda tx: ingest.ingest(tx, self.planner, events, now_ms), notify=True)

    async def ingest_and_claim(
        self,
        events: list[EventRecord],
        now_ms: int,
        *,
        scope: AppScope,
        owner: str,
        limit: int,
        lease_ms: int,
        max_crashes: int = DEFAULT_MAX_CRASHES,
        crash_backoff_scale: float = 1.0,
    ) -> tuple[list[str], Claims]:
        def both(tx: Tx) -> tuple[list[str], Claims]:
            ids = ingest.ingest(tx, self.planner, events, now_ms)
            claims = queue.claim(
                tx,
                self.planner,
                scope,
                owner,
                limit,
                now_ms,
                lease_ms,
                max_crashes=max_crashes,
                crash_backoff_scale=crash_backoff_scale,
            )
            return ids, claims

        return await self._run(both, notify=True)

    async def match_expression_waits(self, now_ms: int) -> int:
        """Match events against the expression waits they were left for (`expression_waits`):
        read, evaluated in a thread of its own, then applied in one short transaction."""
        checks = await self._read(expression_waits.pending)
        if not checks:
            return 0
        checks = await asyncio.to_thread(expression_waits.evaluate, self.planner, checks)
        return await self._run(lambda tx: expression_waits.apply(tx, self.planner, checks, now_ms), notify=True)

    def expression_checks(self) -> int:
        return waits.checks_recorded

    async def get_events(self, event_ids: list[str]) -> list[EventRecord]:
        return await self._run(lambda tx: read.get_events(tx, event_ids))

    async def list_events(self, flt: EventFilter) -> list[EventRecord]:
        return await self._read(lambda tx: read.list_events(tx, flt))

    async def event_effects(self, event_id: str) -> list[EventEffect]:
        return await self._read(lambda tx: read.event_effects(tx, event_id))

    async def claim(
        self,
        scope: AppScope,
        owner: str,
        limit: int,
        now_ms: int,
        lease_ms: int,
        *,
        max_crashes: int = DEFAULT_MAX_CRASHES,
        crash_backoff_scale: float = 1.0,
    ) -> Claims:
        return await self._run_claim(
            lambda tx: queue.claim(
                tx,
                self.planner,
                scope,
                owner,
                limit,
                now_ms,
                lease_ms,
                max_crashes=max_crashes,
                crash_backoff_scale=crash_backoff_scale,
            )
        )

    async def _run_claim(self, fn: Callable[[Any], Claims]) -> Claims:
        """Run a claim's request (a backend may order claims within a group: see PostgreSQL's)."""
        return await self._run(fn)

    async def extend_leases(self, owner: str, tokens: dict[str, str], until_ms: int) -> set[str]:
        return await self._run(lambda tx: queue.extend_leases(tx, tokens, until_ms))

    async def commit(self, c: Commit) -> CommitResult:
        if commit.is_checkpoint(c):
            return await self._run(CheckpointRequest(c))
        if commit.is_plain_finish(c):
            return await self._run(FinishRequest(c, self.planner), notify=True)
        return await self._run(
            lambda tx: commit.commit(tx, self.planner, c), notify=bool(c.events) or c.outcome is not None
        )

    async def release(self, item_id: str, lease_token: str, due_at: int) -> None:
        await self._run(lambda tx: queue.release(tx, item_id, lease_token, due_at), notify=True)

    async def start_held_run(
        self, plan: RunPlan, event: EventRecord, *, lease_token: str, owner: str, until_ms: int, now_ms: int
    ) -> str | None:
        return await self._run(
            lambda tx: held_runs.start_held_run(
                tx, self.planner, plan, event, token=lease_token, owner=owner, until=until_ms, now=now_ms
            ),
            notify=True,
        )

    async def next_due_at(self, scope: AppScope) -> int | None:
        return await self._run(lambda tx: queue.next_due_at(tx, scope))

    async def cancel_run(self, run_id: str, now_ms: int, reason: str = "cancelled by request") -> bool:
        return await self._run(lambda tx: cancel_with_events(tx, self, run_id, now_ms, reason), notify=True)

    # -- coordination: signals and paused functions ----------------------------------------------

    async def send_signal(self, signal: str, data: dict[str, Any], now_ms: int, hold_until: int | None) -> str | None:
        return await self._run(lambda tx: signal_sql.send_signal(tx, signal, data, now_ms, hold_until), notify=True)

    async def set_paused(self, app_id: str, function_id: str, paused: bool, now_ms: int) -> bool:
        return await self._run(lambda tx: pausing.set_paused(tx, app_id, function_id, paused, now_ms), notify=True)

    async def paused_functions(self) -> list[tuple[str, str]]:
        return await self._run(pausing.paused_functions)

    # -- reads ---------------------------------------------------------------------------------

    async def get_run(self, run_id: str, *, steps: bool = True) -> Run | None:
        if not steps:
            return await self._read(lambda tx: read.run_alone(tx, run_id))
        return await self._run(lambda tx: read.get_run(tx, run_id))

    async def list_runs(self, flt: RunFilter) -> list[Run]:
        return await self._run(lambda tx: read.list_runs(tx, flt))

    async def run_for_sender_id(self, *, app_id: str, function_id: str, sender_id: str, now_ms: int) -> str | None:
        return await self._run(
            lambda tx: read.run_for_sender_id(
                tx, app_id=app_id, function_id=function_id, sender_id=sender_id, now=now_ms
            )
        )

    async def run_logs(self, run_id: str) -> list[LogLine]:
        return await self._read(lambda tx: read.run_logs(tx, run_id))

    # -- how runs link to events and to each other ----------------------------------------------

    async def runs_for_events(self, event_ids: list[str], limit_per_event: int = 100) -> dict[str, list[Run]]:
        return await self._read(lambda tx: links.runs_for_events(tx, event_ids, limit_per_event))

    async def run_jobs(self, run_id: str, limit: int = 100) -> list[QueueJob]:
        return await self._read(lambda tx: queue_items.run_jobs(tx, run_id, limit))

    async def active_runs_with_triggers(
        self, *, app_id: str, function_id: str, since: int | None, until: int, after: str | None, limit: int
    ) -> list[tuple[str, EventRecord | None]]:
        return await self._read(
            lambda tx: links.active_runs_with_triggers(
                tx, app_id=app_id, function_id=function_id, since=since, until=until, after=after, limit=limit
            )
        )

    async def child_runs(self, run_id: str, limit: int = 1000) -> list[tuple[str, EventRecord]]:
        return await self._read(lambda tx: links.child_runs(tx, run_id, limit))

    # -- apps served over HTTP (official Inngest SDKs) -----------------------------------------

    async def sync_app(self, app: SyncedApp, configs: list[FunctionConfig], now_ms: int) -> bool:
        return await self._run(lambda tx: apps.sync_app(tx, app, configs, now_ms))

    async def record_app_error(self, app_id: str, url: str | None, error: str, now_ms: int) -> None:
        await self._run(lambda tx: apps.record_app_error(tx, app_id, url, error, now_ms))

    async def get_app(self, app_id: str) -> SyncedApp | None:
        return await self._run(lambda tx: apps.get_app(tx, app_id))

    async def list_apps(self) -> list[SyncedApp]:
        return await self._read(apps.list_apps)

    async def remove_app(self, app_id: str, now_ms: int) -> bool:
        return await self._run(lambda tx: apps.remove_app(tx, app_id, now_ms))

    # -- workers -------------------------------------------------------------------------------

    async def heartbeat(self, worker: WorkerInfo) -> None:
        await self._run(lambda tx: workers.heartbeat(tx, worker))

    async def forget_worker(self, worker_id: str) -> None:
        await self._run(lambda tx: workers.forget_worker(tx, worker_id))

    async def list_workers(self, since_ms: int) -> list[WorkerInfo]:
        return await self._run(lambda tx: workers.list_workers(tx, since_ms))

    # -- operations: retention, upkeep, health ---------------------------------------------------

    async def _maintain(self, fn: Callable[[Any], T]) -> T:
        """Run `fn(tx)` in one transaction of upkeep (a backend may keep these apart from the workload)."""
        return await self._run(fn)

    async def take_chore(self, name: str, owner: str, now_ms: int, lease_ms: int) -> bool:
        return await self._maintain(lambda tx: retention.take_chore(tx, name, owner, now_ms, lease_ms))

    async def prune(self, *, before_ms: int, now_ms: int, limit: int) -> PruneResult:
        return await self._maintain(lambda tx: retention.prune(tx, before_ms, now_ms, limit))

    async def vacuum(self, tables: tuple[str, ...]) -> bool:
        return False  # SQLite reuses the pages of deleted rows; PostgreSQL overrides this

    async def shrink_wait_fields(self) -> int:
        return await self._maintain(lambda tx: retention.shrink_wait_fields(tx, self._wait_fields_lock))

    async def queue_stats(self, now_ms: int) -> QueueStats:
        return await self._maintain(lambda tx: retention.queue_stats(tx, now_ms))

    async def check(self) -> None:
        problem = await self._run(retention.schema_problem)
        if problem is not None:
            raise StoreError(problem)

    # -- numbers, links and suggestions -----------------------------------------------------------

    async def count_runs(self, flt: RunFilter, cap: int) -> StatusCounts:
        return await self._read(lambda tx: stats.count_runs(tx, flt, cap))

    async def runs_with_triggers(self, flt: RunFilter) -> list[tuple[Run, EventRecord | None]]:
        return await self._read(lambda tx: links.runs_with_triggers(tx, flt))

    async def function_stats(self, now_ms: int, functions: list[tuple[str, str]]) -> list[FunctionStats]:
        return await self._read(lambda tx: stats.function_stats(tx, now_ms, functions))

    async def run_links(self, run_id: str) -> RerunLinks:
        return await self._read(lambda tx: links.run_links(tx, run_id))

    async def event_names(self, recent: int = 500) -> list[str]:
        return await self._read(lambda tx: read.event_names(tx, recent))

    async def rerun(
        self,
        plan: RunPlan,
        *,
        origin_run_id: str,
        keep_keys: list[str],
        edited: StepWrite | None,
        from_step_key: str | None,
        now_ms: int,
    ) -> None:
        await self._run(lambda tx: reruns.rerun(tx, plan, origin_run_id, keep_keys, edited, from_step_key, now_ms))

    # -- realtime messages ---------------------------------------------------------------------

    async def publish(self, messages: list[MessageRecord]) -> None:
        await self._run(lambda tx: realtime.insert_messages(tx, messages))

    async def read_messages(
        self,
        *,
        channels: list[str] | None,
        after_id: int,
        topics: list[str] | None = None,
        limit: int = 1000,
        until_id: int | None = None,
        run_id: str | None = None,
    ) -> list[Message]:
        return await self._run(
            lambda tx: realtime.read_messages(
                tx, channels=channels, after_id=after_id, topics=topics, limit=limit, until_id=until_id, run_id=run_id
            )
        )

    async def last_message_id(self) -> int:
        return await self._run(realtime.last_message_id)

    async def watch_run(self, run_id: str, *, until_ms: int) -> bool:
        return await self._run(lambda tx: realtime.watch_run(tx, run_id, until_ms=until_ms))

    async def prune_messages(self, *, before_ms: int, limit: int) -> int:
        return await self._maintain(lambda tx: realtime.prune_messages(tx, before_ms=before_ms, limit=limit))


def cancel_with_events(tx: Tx, store: SqlStore, run_id: str, now: int, reason: str) -> bool:
    follow_ups = run_end.cancel_run(tx, run_id, now, reason)
    if follow_ups:
        ingest.ingest(tx, store.planner, follow_ups, now)
    return follow_ups is not None


__all__ = ["SqlStore", "Tx"]
