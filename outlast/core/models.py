"""The domain types every layer shares: runs and their memo, what a claim hands out, what a
commit writes, and what reads return.

Plain data, no behaviour and no imports beyond the standard library, so storage, drivers, the
server and the SDK can all depend on this module without depending on each other. Wide types
are keyword-only: a call site names every field, so a reordered field cannot silently shift.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from outlast.core.realtime import MessageRecord

RunStatus = Literal["queued", "running", "completed", "failed", "cancelled", "skipped"]
StepKind = Literal["run", "sleep", "wait_for_event", "send_event", "invoke"]
ACTIVE_STATUSES = ("queued", "running")
FINAL_STATUSES = ("completed", "failed", "cancelled", "skipped")
#: a step row in one of these is the memo: never overwritten
FINAL_STEP_STATUSES = ("completed", "failed")
#: a step row in one of these waits for a deadline (or an event) and may be replaced
PENDING_STEP_STATUSES = ("sleeping", "waiting", "invoking")
#: a step whose last attempt failed and that will run again (its deadline is the retry time)
RETRYING = "retrying"


# -- events -------------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class EventRecord:
    """A validated, stored event. `id` is the internal ULID; `dedupe_id` the sender's `id`, if any.

    `trace` is the W3C trace context (`traceparent`, `tracestate`) of whoever sent it, when
    tracing is on, so the runs it starts continue that trace.
    """

    id: str
    name: str
    data: dict[str, Any]
    user: dict[str, Any]
    ts: int
    dedupe_id: str | None = None
    received_at: int | None = None
    trace: dict[str, str] | None = None

    def public_id(self) -> str:
        return self.dedupe_id or self.id

    def to_dict(self) -> dict[str, Any]:
        """The event as expressions and handlers see it (Inngest's shape)."""
        return {"id": self.public_id(), "name": self.name, "data": self.data, "user": self.user, "ts": self.ts}


# -- the memo and the queue ----------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class MemoEntry:
    """One step row of a run as an attempt sees it: a final result, or a pending/retrying step."""

    key: str
    step_id: str
    kind: str
    status: str
    attempts: int = 0
    output: Any = None
    error: dict[str, Any] | None = None
    started_at: int | None = None
    ended_at: int | None = None
    #: pending: when the sleep ends or the wait times out; retrying: when the step runs again
    deadline: int | None = None
    #: order of first write, for the trace
    seq: int = 0

    @property
    def final(self) -> bool:
        return self.status in FINAL_STEP_STATUSES


@dataclass(slots=True, kw_only=True)
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
    parent_run_id: str | None = None


@dataclass(slots=True, kw_only=True)
class Claimed:
    """A leased work item of kind `run`, with the run it belongs to."""

    item_id: str
    lease_token: str
    run: RunState


class Claims(list[Claimed]):
    """What a claim returns: the claimed run items, and what an idle worker needs to know about
    the rest of the scope, read in the claim's own transaction (no second one to go idle).

    `full`: the claim leased as many items as it was allowed (more may be due right now).
    `next_due_at`: unless `full`, the smallest `due_at` within the scope after the claim, as
    `Store.next_due_at` would read it then (None: no item); at or before the claim's `now_ms`,
    due items were passed over (flow control holds them back). None when `full` (not read)."""

    __slots__ = ("full", "next_due_at")

    def __init__(self, items: Iterable[Claimed] = (), *, full: bool = False, next_due_at: int | None = None) -> None:
        super().__init__(items)
        self.full = full
        self.next_due_at = next_due_at


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitSpec:
    """A stored wait: resumes (or cancels) a run when a matching event arrives.

    When the expression is an equality between a trigger field and an incoming field, the
    expected value is precomputed (`match_field`/`match_value`) so events find waits by index.
    """

    #: "wait", "invoke", "cancel"; "any" for a part of a wait_for_any, "all:<i>" for the i-th of a wait_for_all
    kind: str
    event_name: str
    expression: str | None
    match_field: str | None
    match_value: str | None
    expires_at: int
    step_key: str | None = None
    #: a wait with lookback is resolved at once by the earliest matching event received at most
    #: this long before it was stored (and not returned by an earlier wait of the run)
    lookback_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalWait:
    """A stored wait for the signal `signal`: one run waits on a name at a time. `replace` takes
    the name over from another run's wait; otherwise that wait makes this step fail."""

    signal: str
    step_key: str
    expires_at: int
    replace: bool = False


@dataclass(slots=True, kw_only=True)
class StepWrite:
    """A memo/trace row to write. Final rows are insert-once; pending and retrying ones may be
    replaced. A row with an `error` also adds the attempt to the step's failure history."""

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
    #: what a pending step resolves to at its deadline (a wait's None, an invoke's timeout error)
    timeout_output: Any = None
    #: kind-specific facts for the trace: what a wait waits for, which function an invoke runs
    detail: dict[str, Any] | None = None


@dataclass(slots=True, kw_only=True)
class LogLine:
    """A line the function logged through `ctx.logger`, kept with its run."""

    ts: int
    level: str
    message: str
    step_id: str | None = None


@dataclass(slots=True, kw_only=True)
class Suspend:
    """End the attempt; the run's item becomes due again at `due_at` (now, if an event woke it)."""

    due_at: int
    #: the new function-level attempt count, when a function error is retried
    attempt: int | None = None
    #: the function-level error being retried (kept in the run's attempt history)
    error: dict[str, Any] | None = None


@dataclass(slots=True, kw_only=True)
class Finish:
    """End the run. `status` is completed or failed."""

    status: Literal["completed", "failed"]
    output: Any = None
    error: dict[str, Any] | None = None
    #: the error `inngest/function.finished` and `.failed` carry when it is not `error` itself
    #: (for an app's error answer Inngest adds `"error": "invalid status code: N"`)
    event_error: dict[str, Any] | None = None
    #: the run's trigger events, when the caller has them (saves the store a read)
    trigger_events: list[EventRecord] | None = None


@dataclass(slots=True, kw_only=True)
class Commit:
    """The outcome of (part of) an attempt, applied atomically under the item's lease.

    `events` are ingested in the same transaction (step.send_event, invoke, system events), so
    nothing a step caused becomes visible before the commit that records it. A commit without an
    outcome (a checkpoint) leaves the lease as it is: the worker's keeper extends leases.
    """

    item_id: str
    lease_token: str
    run_id: str
    now_ms: int
    steps: list[StepWrite] = field(default_factory=list)
    waits: list[WaitSpec] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    logs: list[LogLine] = field(default_factory=list)
    #: realtime messages published by the commit's steps (`step.publish`), stored with their memo rows
    messages: list[MessageRecord] = field(default_factory=list)
    outcome: Suspend | Finish | None = None
    signal_waits: list[SignalWait] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class CommitResult:
    ok: bool
    reason: str | None = None  # lost: the lease is gone or the run was cancelled


# -- planning runs -------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class RunPlan:
    """A run an event starts, with its flow-control keys already evaluated for that event."""

    run_id: str
    app_id: str
    function_id: str
    event_ids: list[str]
    created_at: int
    due_at: int
    parent_run_id: str | None = None
    idempotency_key: str | None = None
    cancel_waits: list[WaitSpec] = field(default_factory=list)
    start_deadline: int | None = None
    finish_timeout_ms: int | None = None
    concurrency: list[tuple[str, int]] = field(default_factory=list)  # (key, limit), at most 2
    throttle: tuple[str, int, int, int] | None = None  # key, limit, period_ms, burst
    rate_limit: tuple[str, int, int] | None = None  # key, limit, period_ms
    debounce: tuple[str, int, int | None] | None = None  # key, period_ms, timeout_ms
    batch: tuple[str, int, int] | None = None  # key, max_size, timeout_ms
    singleton: tuple[str, str] | None = None  # key, mode


# -- claiming ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AppScope:
    """The items of one app a worker may claim.

    `functions` None means every function of the app (a server driving a served app). Otherwise
    run items are claimed only for these functions, plus, when `known` is given, for functions
    not among `known` (nobody serves them any more: the claimer fails those runs clearly).
    Timeout and cron items of the app are always claimable: firing them needs no user code.
    """

    app_id: str
    functions: tuple[str, ...] | None = None
    known: tuple[str, ...] | None = None


# -- reads ---------------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class AttemptRecord:
    """A failed attempt of a step (or of the function, for a step key of '')."""

    attempt: int
    error: dict[str, Any]
    started_at: int | None = None
    ended_at: int | None = None


@dataclass(slots=True, kw_only=True)
class StepRecord:
    """One step of a run: its memo and its trace (attempts, timings)."""

    id: str
    key: str
    kind: str
    status: str  # completed | failed | retrying | sleeping | waiting | invoking | cancelled
    attempts: int
    output: Any = None
    error: dict[str, Any] | None = None
    started_at: int | None = None
    ended_at: int | None = None
    deadline: int | None = None
    detail: dict[str, Any] | None = None
    failures: list[AttemptRecord] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class Run:
    id: str
    app_id: str
    function_id: str
    status: str
    event_ids: list[str]
    output: Any = None
    error: dict[str, Any] | None = None
    created_at: int = 0
    started_at: int | None = None
    ended_at: int | None = None
    parent_run_id: str | None = None
    skip_reason: str | None = None
    steps: list[StepRecord] = field(default_factory=list)
    #: function-level failed attempts (errors outside steps that were retried)
    failures: list[AttemptRecord] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class RunFilter:
    """Which runs to list, newest first. Times are creation times in ms; `before` is a cursor:
    the id of the last run of the previous page (runs with a smaller id come next)."""

    app_id: str | None = None
    function_id: str | None = None
    status: str | None = None
    #: runs this event started (or joined, for batches and debounces)
    event_id: str | None = None
    since: int | None = None
    until: int | None = None
    before: str | None = None
    limit: int = 100


@dataclass(slots=True, kw_only=True)
class EventFilter:
    """Which events to list, newest first (by id); `before` is a cursor as in `RunFilter`."""

    name: str | None = None
    since: int | None = None
    until: int | None = None
    before: str | None = None
    #: include `inngest/...` system events
    system: bool = True
    limit: int = 100


@dataclass(slots=True, kw_only=True)
class EventEffect:
    """What an event did to a run: `started` it (or joined its batch), `resumed` a wait, or `cancelled` it."""

    run_id: str
    effect: str
    app_id: str
    function_id: str
    status: str


@dataclass(slots=True, kw_only=True)
class WorkerInfo:
    """A worker process announcing itself (`outlast workers` lists them)."""

    id: str
    app_id: str
    host: str
    pid: int
    started_at: int
    heartbeat_at: int
    #: the app's functions this worker can run (its claims are limited to them)
    functions: list[str] = field(default_factory=list)
    in_flight: int = 0
    last_error: str | None = None
    #: a Connect worker's SDK language (`py`, `typescript`); None for Outlast's own worker processes
    sdk: str | None = None
    sdk_version: str | None = None
    #: a Connect worker's maxWorkerConcurrency (None: unbounded, or not a Connect worker)
    capacity: int | None = None

    @property
    def connected(self) -> bool:
        """Whether this is an Inngest SDK worker connected over Connect."""
        return self.sdk is not None


# -- apps on the official Inngest SDKs (synced over HTTP) -----------------------------------------


@dataclass(slots=True, kw_only=True)
class SyncedApp:
    """An app served over HTTP that synced its functions (`POST /fn/register`)."""

    id: str
    url: str | None
    sdk: str | None = None
    framework: str | None = None
    #: SHA-256 of the last accepted sync payload: an identical re-sync changes nothing
    checksum: str | None = None
    #: why the last sync attempt failed (None once a sync succeeds)
    error: str | None = None
    created_at: int = 0
    synced_at: int | None = None
    #: the app's function ids (filled by reads)
    functions: list[str] = field(default_factory=list)
