"""The Store protocol: the only persistence seam, written as a specification.

General rules
- Every method is atomic: it applies all of its effects or none. A method that raises
  `StoreError` applied nothing and may be repeated; every other error is a bug or bad input and
  also applied nothing.
- Times are integer milliseconds since the epoch, passed in by the caller: stores never read a
  clock. Ids are made by the caller too (ULIDs), except lease tokens.
- JSON values travel as Python values; stores serialise them with `outlast.core.jsonutil`.
- Every listing is fully ordered (the order is stated), so SQLite and PostgreSQL agree.

Work items. The queue holds three kinds of items: `run` (one per active run), `timeout` (a
run's start or finish timeout) and `cron` (one per cron trigger). An item is due when
`due_at <= now`. Claiming leases an item: a fresh `lease_token`, an owner, and
`due_at = now + lease_ms`, so an item whose lease expired is simply due again. Every write made
under a lease names the token; a write whose token no longer matches (the lease was lost, or
the run was cancelled and its item deleted) changes nothing and reports `lost`.

Memo. `steps(run_id, key)` rows are the memo and the trace. A row in a final status
(`completed`, `failed`) is never overwritten; a pending row (`sleeping`, `waiting`, `invoking`)
or a `retrying` one may be. Pending rows resolve when their run is claimed at or after their
`deadline`: a sleep completes with no output, a wait completes with None, an invoke fails with
its `timeout_output` as error. A wait or invoke row also resolves when a matching event is
ingested (see `ingest`). A retrying row's deadline is when its step runs again; claims do not
touch it.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from outlast.core.config import FunctionConfig
from outlast.core.models import (
    AppScope,
    Claimed,
    Commit,
    CommitResult,
    EventEffect,
    EventFilter,
    EventRecord,
    LogLine,
    Run,
    RunFilter,
    RunPlan,
    WorkerInfo,
)
from outlast.core.upkeep import PruneResult, QueueStats

SyncMode = Literal["merge", "replace"]


class Planner(Protocol):
    """What a store needs from the engine while it ingests events inside a transaction."""

    def plan(self, event: EventRecord, now_ms: int) -> list[RunPlan]:
        """The runs an event starts."""
        ...

    def matches(self, expression: str, trigger: dict[str, Any], incoming: dict[str, Any]) -> bool:
        """Whether a non-indexed wait or cancel expression holds (`event`, `async`)."""
        ...

    def has_concurrency_limits(self) -> bool:
        """Whether any stored function has a concurrency limit (claims may skip counting if not)."""
        ...


class PlannerSlot:
    """The `bind`/`planner` pair every backend needs: the engine binds, transactions read."""

    _planner: Planner | None = None

    def bind(self, planner: Planner) -> None:
        self._planner = planner

    @property
    def planner(self) -> Planner:
        if self._planner is None:
            raise RuntimeError("store used before an engine bound its planner")
        return self._planner


class Store(Protocol):
    # -- lifecycle -----------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect and apply pending migrations. Safe when several processes open one database at
        once; raises StoreError (saying where and why) when the database cannot be reached."""
        ...

    async def close(self) -> None: ...

    def bind(self, planner: Planner) -> None:
        """Set the planner used by `ingest`, and by claims and commits that ingest events."""
        ...

    # -- functions -----------------------------------------------------------------------------

    async def sync_functions(self, app_id: str, configs: list[FunctionConfig], now_ms: int, *,
                             mode: SyncMode = "merge") -> bool:
        """Store an app's function configurations; True when anything changed.

        `merge` (a worker or client of a local app starting): each given configuration replaces
        the stored one of the same id and is marked seen at `now_ms`; other functions of the app
        are kept (another version of the app may still serve them). `replace` (a served app
        synced): the app's functions become exactly `configs`. Either way the app's cron items
        follow: one per cron trigger, kept (with its due time) when its schedule is unchanged.
        """
        ...

    async def load_functions(self) -> tuple[int, list[FunctionConfig]]:
        """(version, every stored configuration ordered by app id, function id). The version
        changes whenever the set or any configuration changes."""
        ...

    async def functions_version(self) -> int: ...

    async def prune_functions(self, stale_before_ms: int) -> list[tuple[str, str]]:
        """Forget local-runtime functions last seen (synced or served by a live worker's heartbeat)
        before `stale_before_ms`, and their cron items; return their (app id, function id).
        Functions of served (http) apps are kept until their app re-syncs without them."""
        ...

    # -- events --------------------------------------------------------------------------------

    async def ingest(self, events: list[EventRecord], now_ms: int) -> list[str]:
        """Store events and everything they cause, in one transaction; return their ids in order.

        For each event, in order: store it (an id already stored makes this a retried ingest,
        and the event causes nothing again); if its `dedupe_id` was seen in the last 24 h it
        starts nothing; resolve the waits it matches that were stored before it, oldest first
        (wait and invoke steps complete, cancel rules cancel their run); then create the runs
        the planner plans, applying rate limits, idempotency keys (24 h), singleton, debounce,
        batching and throttle (a run refused by a limit is stored as `skipped` with a reason).
        """
        ...

    async def get_events(self, event_ids: list[str]) -> list[EventRecord]:
        """The stored events among `event_ids`, in the order given; unknown ids are left out."""
        ...

    async def list_events(self, flt: EventFilter) -> list[EventRecord]:
        """Events matching the filter, newest first (by id)."""
        ...

    async def event_effects(self, event_id: str) -> list[EventEffect]:
        """What the event did: the runs it started (or joined), resumed or cancelled, by run id."""
        ...

    # -- the queue -----------------------------------------------------------------------------

    async def claim(self, scope: AppScope, owner: str, limit: int, now_ms: int, lease_ms: int) -> list[Claimed]:
        """Lease up to `limit` due run items within `scope`, in (due_at, id) order, and return them
        with their runs loaded. Runs whose concurrency keys are full are passed over.

        Besides leasing, in the same transaction: due `timeout` items fire (a start timeout
        cancels a run still queued, a finish timeout cancels a run not yet ended) and are
        deleted; due `cron` items ingest an `inngest/scheduled.timer` event for their function
        and move to their next tick after `now_ms` (one catch-up run after downtime, never a
        burst); claimed runs still `queued` become `running` (their finish timeout starts
        counting); pending steps of claimed runs whose deadline passed are resolved. Fired
        items count toward `limit` but are not returned.
        """
        ...

    async def extend_leases(self, owner: str, tokens: dict[str, str], until_ms: int) -> set[str]:
        """Extend leases (item id -> token) to `until_ms`; return the ids whose lease was lost."""
        ...

    async def commit(self, commit: Commit) -> CommitResult:
        """Apply an attempt's writes if the lease token still matches; else change nothing and
        report `lost`.

        In one transaction: write the step rows (final rows insert-once; a row with an error
        is added to that step's failure history), store the waits, ingest the events (as
        `ingest` does), keep the log lines (at most `MAX_LOGS_PER_RUN` per run, older first kept),
        then apply the outcome. No outcome (a checkpoint): the lease is left as it is.
        `Suspend`: the item is released and due at `due_at`, or now if an event resolved one of
        the run's waits while it was leased; a new function-level attempt count is recorded with
        its error. `Finish`: the run ends, its item, timeout items and waits are deleted, and
        `inngest/function.finished` (plus `.failed`) is ingested. A run already cancelled keeps
        its cancellation.
        """
        ...

    async def release(self, item_id: str, lease_token: str, due_at: int) -> None:
        """Give a leased item back unprocessed, due at `due_at` (a worker shutting down, or one
        that claimed an item it cannot run)."""
        ...

    async def next_due_at(self, scope: AppScope) -> int | None:
        """When the earliest item within `scope` becomes due (None if there is none)."""
        ...

    async def cancel_run(self, run_id: str, now_ms: int, reason: str = "cancelled by request") -> bool:
        """Cancel an active run: its pending steps are marked cancelled, its items and waits
        deleted, and `inngest/function.cancelled` (plus `.finished`) ingested. False when it is not
        active (finished, or no such run)."""
        ...

    # -- reads ---------------------------------------------------------------------------------

    async def get_run(self, run_id: str) -> Run | None:
        """The run with its steps in first-write order and their failure histories; None if unknown."""
        ...

    async def list_runs(self, flt: RunFilter) -> list[Run]:
        """Runs matching the filter, newest first (by id), without steps."""
        ...

    async def run_logs(self, run_id: str) -> list[LogLine]:
        """The lines the run's function logged, in order (at most MAX_LOGS_PER_RUN)."""
        ...

    def get_run_now(self, run_id: str) -> Run | None:
        """Blocking `get_run`, for short reads from synchronous code (tests, the CLI)."""
        ...

    def list_runs_now(self, flt: RunFilter) -> list[Run]:
        """Blocking `list_runs`."""
        ...

    # -- workers -------------------------------------------------------------------------------

    async def heartbeat(self, worker: WorkerInfo) -> None:
        """Record that a worker is alive (insert or refresh its row), and mark the functions it
        serves as seen at its `heartbeat_at`."""
        ...

    async def forget_worker(self, worker_id: str) -> None:
        """Remove a worker that stopped cleanly, at once."""
        ...

    async def list_workers(self, since_ms: int) -> list[WorkerInfo]:
        """Workers whose last heartbeat is at or after `since_ms`, by start time then id; older
        rows are forgotten."""
        ...

    # -- operations: retention, upkeep, health ---------------------------------------------------
    # Retention runs beside the workload: each call is one short transaction, so claims and
    # ingest never wait long behind it (on PostgreSQL it runs on a connection of its own, outside
    # the group commits).

    async def take_chore(self, name: str, owner: str, now_ms: int, lease_ms: int) -> bool:
        """Take (or renew) the lease of a background chore (`retention`) until `now_ms + lease_ms`;
        False while another owner's lease has not expired. One process at a time does a chore."""
        ...

    async def prune(self, *, before_ms: int, now_ms: int, limit: int) -> PruneResult:
        """Delete one batch: up to `limit` runs in a final status that ended before `before_ms`,
        with their steps, step failures, log lines and event effects (and their trigger events,
        as below); up to `limit` other events received before `before_ms` that no run refers to any more
        (neither as its trigger, `first_event_id`, nor through an event effect: an active run's
        events always stay); up to `limit` dedupe and idempotency keys whose 24 h ended at
        `now_ms` (never earlier, whatever `before_ms`).
        Events are examined from a cursor kept with the chore, so a batch may remove none while
        older events remain: call until nothing was removed and `more` is false (`more` is also
        true after a full batch of runs)."""
        ...

    async def vacuum(self, tables: tuple[str, ...]) -> bool:
        """Reclaim the dead rows of `tables` where the database would not do it by itself
        (PostgreSQL with autovacuum off; the queue alone leaves thousands a second). True when it
        vacuumed. Not a transaction; never blocks reads or writes of the tables."""
        ...

    async def shrink_wait_fields(self) -> int:
        """Forget `wait_fields` entries that no stored wait needs; return how many. A wait stored
        concurrently keeps (or gets back) its entry."""
        ...

    async def queue_stats(self, now_ms: int) -> QueueStats:
        """Work items per (app, function): due at `now_ms`, leased, scheduled later, and the due
        time of the oldest due one; stored waits by kind. Ordered by app id, function id."""
        ...

    async def check(self) -> None:
        """Raise StoreError (saying why) unless the database answers and every migration of this
        version is applied."""
        ...


MAX_LOGS_PER_RUN = 1000
