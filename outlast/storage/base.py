"""The Store protocol: the only persistence seam.

Every method is atomic: it either applies all of its effects or none. Times are integer
milliseconds since the epoch, passed in by the caller (stores never read a clock). JSON values
travel as Python values; stores serialise them with `outlast.core.jsonutil`.

Work items. A queue item is due at `due_at`. Claiming sets a lease: a fresh `lease_token`, an
owner, and `due_at = now + lease_ms`, so an item whose lease expired is simply due again and
any worker may claim it. Every write made under a lease names the token; a write whose token
no longer matches (the lease was lost, or the run was cancelled) changes nothing and reports
`lost`. A run has at most one item of kind `run` at a time.

Memo. `steps(run_id, key)` rows are the memo and the trace. A row in a final status
(`completed`, `failed`) is never overwritten; a non-final row (`retrying`, `sleeping`,
`waiting`, `invoking`) may be. Pending rows with a `deadline` resolve to `timeout_output`
when their run's item is claimed at or after the deadline (a sleep's end, a wait's timeout).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from outlast.core.registry import RunPlan, WaitSpec
from outlast.events import EventRecord
from outlast.models import Run

FINAL_STEP_STATUSES = ("completed", "failed")
PENDING_STEP_STATUSES = ("sleeping", "waiting", "invoking")


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


@dataclass
class MemoEntry:
    key: str
    step_id: str
    kind: str
    status: str
    attempts: int = 0
    output: Any = None
    error: dict[str, Any] | None = None
    started_at: int | None = None
    ended_at: int | None = None
    deadline: int | None = None


@dataclass
class RunState:
    """Everything one attempt of a run needs, loaded at claim time."""

    run_id: str
    app_id: str
    function_id: str
    status: str
    events: list[EventRecord]
    memo: dict[str, MemoEntry]
    attempt: int  # function-level failed attempts so far
    created_at: int
    started_at: int | None


@dataclass
class Claimed:
    item_id: str
    kind: str  # run | timeout | cron
    lease_token: str
    run: RunState | None = None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepWrite:
    """A memo/trace row to write. Final rows are insert-once; pending ones may be replaced."""

    key: str
    step_id: str
    kind: str
    status: str
    attempts: int
    started_at: int | None
    ended_at: int | None = None
    output: Any = None
    error: dict[str, Any] | None = None
    deadline: int | None = None
    timeout_output: Any = None


@dataclass
class Suspend:
    """End the attempt; the run's item becomes due again at `due_at`."""

    due_at: int
    attempt: int | None = None  # new function-level attempt count, when a function error is retried


@dataclass
class Finish:
    """End the run. `status` is completed or failed."""

    status: str
    output: Any = None
    error: dict[str, Any] | None = None
    #: the run's trigger events, when the caller has them (saves the store a read)
    trigger_events: list[EventRecord] | None = None


@dataclass
class Commit:
    """The outcome of (part of) an attempt, applied atomically under the item's lease.

    `events` are ingested in the same transaction (step.send_event, system events), so nothing
    a step caused becomes visible before the commit that records it.
    """

    item_id: str
    lease_token: str
    run_id: str
    now_ms: int
    lease_until: int
    steps: list[StepWrite] = field(default_factory=list)
    waits: list[WaitSpec] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    outcome: Suspend | Finish | None = None


@dataclass
class CommitResult:
    ok: bool
    reason: str | None = None  # lost (lease gone or run cancelled)


@dataclass
class WorkerInfo:
    """A worker process announcing itself (`outlast workers` lists them)."""

    id: str
    app_id: str
    host: str
    pid: int
    started_at: int
    heartbeat_at: int


@dataclass
class RunFilter:
    app_id: str | None = None
    function_id: str | None = None
    status: str | None = None
    event_id: str | None = None
    limit: int = 100


class Store(Protocol):
    async def open(self) -> None:
        """Connect and apply migrations. Safe when several processes open one database."""
        ...

    async def close(self) -> None: ...

    def bind(self, planner: Planner) -> None:
        """Set the planner used by `ingest` and by commits that carry events."""
        ...

    async def sync_functions(self, app_id: str, configs: list[dict[str, Any]], now_ms: int) -> bool:
        """Replace the app's stored function configurations; True when anything changed."""
        ...

    async def load_functions(self) -> tuple[int, list[dict[str, Any]]]:
        """(version, every stored configuration). The version changes on every change."""
        ...

    async def functions_version(self) -> int: ...

    async def ingest(self, events: list[EventRecord], now_ms: int) -> list[str]:
        """Store events and everything they cause, in one transaction; return their ids.

        For each event: skip it entirely if its `dedupe_id` was seen in the last 24 h (the
        event is stored, starts nothing); resolve waits it matches (stored before it); cancel
        runs whose cancel rules it matches; create the runs the planner plans (a run whose
        idempotency key was used in the last 24 h is recorded as skipped).
        """
        ...

    async def claim(self, app_id: str, owner: str, limit: int, now_ms: int, lease_ms: int) -> list[Claimed]:
        """Lease up to `limit` due items of the app, oldest first. Resolves due pending steps."""
        ...

    async def extend_leases(self, owner: str, tokens: dict[str, str], until_ms: int) -> set[str]:
        """Extend leases (item id -> token); return the ids whose lease was lost."""
        ...

    async def commit(self, commit: Commit) -> CommitResult:
        """Apply an attempt's outcome if the lease token still matches; else change nothing."""
        ...

    async def release(self, item_id: str, lease_token: str, due_at: int) -> None:
        """Give an item back unprocessed (worker shutting down)."""
        ...

    async def next_due_at(self, app_id: str) -> int | None:
        """When the earliest item of the app becomes due (None if there is none)."""
        ...

    async def get_run(self, run_id: str) -> Run | None: ...

    async def list_runs(self, flt: RunFilter) -> list[Run]:
        """Newest first."""
        ...

    async def get_events(self, event_ids: list[str]) -> list[EventRecord]: ...

    async def heartbeat(self, worker: WorkerInfo) -> None:
        """Record that a worker is alive (insert or refresh its heartbeat)."""
        ...

    async def list_workers(self, since_ms: int) -> list[WorkerInfo]:
        """Workers whose last heartbeat is at or after `since_ms`; forget older ones."""
        ...

    def get_run_now(self, run_id: str) -> Run | None:
        """Blocking `get_run`, for short reads from synchronous code (tests, CLI)."""
        ...

    def list_runs_now(self, flt: RunFilter) -> list[Run]:
        """Blocking `list_runs`."""
        ...

    async def cancel_run(self, run_id: str, now_ms: int, reason: str = "cancelled by request") -> bool:
        """Cancel an active run; False when it is not active. Emits inngest/function.cancelled."""
        ...
