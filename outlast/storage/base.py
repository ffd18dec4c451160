"""The persistence seams, written as a specification: `Store` and `Reads`.

`Store` is the engine's seam: what the runtime needs to keep functions, take in events and run
them (claims, commits, leases, upkeep). `Reads` are the read models the dashboard, the JSON API,
Inngest's REST and GraphQL APIs, the CLI and the metrics show; the engine never needs them. Both
start from `Lookups` (a run, runs, events, an app), which both sides need. One SQL store
implements both (`Backend`, what `open_store` returns), over one database.

General rules
- Every method is atomic: it applies all of its effects or none. A method that raises
  `StoreError` applied nothing and may be repeated; its subclass `StoreDataError` says the
  database refused a value (a NUL character in text on PostgreSQL, a number out of range), so
  repeating the same call fails the same way. Every other exception is a bug or bad input
  that Outlast's own code rejected, and also applied nothing. No exception of a database
  driver (`sqlite3`, `psycopg`) ever leaves a store.
- Any method may be called from any thread and any event loop; a store serialises what it must.
- Times are integer milliseconds since the epoch, passed in by the caller: stores never read a
  clock. Events' and runs' ids are made by the caller (ULIDs); the ids a store makes itself
  (queue items, waits) are ULIDs of the caller's time, the order of a run's steps follows it
  too, and lease tokens are random. (Monotonic timers only pace a store's retries and time its
  group commits.)
- JSON values travel as Python values; stores serialise them with `outlast.core.jsonutil`.
- Every listing and every choice among rows is fully ordered (each method states its order, and
  ties are broken by a unique id), so SQLite and PostgreSQL give the same answer.

Work items. The queue holds three kinds of items: `run` (one per active run), `timeout` (a
run's start or finish timeout) and `cron` (one per cron trigger). An item is due when
`due_at <= now`. Claiming leases an item: a fresh `lease_token`, an owner, and
`due_at = now + lease_ms`, so an item whose lease expired is simply due again. Every write made
under a lease names the token; a write whose token no longer matches (the lease was lost, or
the run was cancelled and its item deleted) changes nothing and reports `lost`. A lease ends
when its attempt commits an outcome (`Suspend` releases the item, `Finish` deletes it), when
the item is `release`d, or when it expires.

Crashed attempts. A run item claimed while it still carries an expired lease was abandoned:
its attempt's process died (killed, `os._exit`, out of memory) or hung. The claim counts a
crash: one more if the run made no progress since the previous crash (no step row, step
attempt or function-level retry was committed), else 1 again; a `Suspend` resets the count.
When the count reaches the claim's `max_crashes` the run fails with `WorkerCrashedError` ("its
attempts stopped their worker N times in a row without progress: ...") instead of being
claimed. Below it, the run waits the retry backoff of its crash count (15 s, 30 s, ... scaled
like step retries) before it is claimed again, so that a burst of kills (a deploy, a node
drain) cannot exhaust the bound in seconds; each such crash is recorded on the run with the
time it runs again. A run with 2 crashes in a row is a suspect: at most one suspect is leased at a time
(claims pass over the others while one is), so a poison run cannot keep killing the runs that
share its worker: on its account they reach 2 crashes at most, so with `max_crashes >= 3` they
are not failed with it. (On PostgreSQL two claims racing may each take a suspect.)

Memo. `steps(run_id, key)` rows are the memo and the trace. A row in a final status
(`completed`, `failed`) is never overwritten; a pending row (`sleeping`, `waiting`, `invoking`)
or a `retrying` one may be. Pending rows resolve when their run is claimed at or after their
`deadline`: a sleep completes with no output, a wait completes with None, an invoke fails with
its `timeout_output` as error. A wait or invoke row also resolves when a matching event is
ingested (see `ingest`). A retrying row's deadline is when its step runs again; claims do not
touch it. Cancelling a run marks its pending and retrying rows `cancelled`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

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

SyncMode = Literal["merge", "replace", "provisional"]
MAX_LOGS_PER_RUN = 1000
#: crashed attempts in a row, without progress, after which a claim fails the run
DEFAULT_MAX_CRASHES = 3


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


class Lookups(Protocol):
    """Reads the engine needs as much as the dashboard: a run, runs, events, an app, live workers."""

    async def get_run(self, run_id: str, *, steps: bool = True) -> Run | None:
        """The run with its steps in first-write order (then by key) and their failure histories
        (by attempt), and its function-level failures (by attempt); None if unknown. With
        `steps=False`, the run alone (`steps` and `failures` empty): one row, for a caller that
        wants its status and outcome (a `RunHandle` waiting for the end)."""
        ...

    async def list_runs(self, flt: RunFilter) -> list[Run]:
        """Runs matching the filter, newest first (by id), at most `flt.limit`, without steps."""
        ...

    async def run_for_sender_id(self, *, app_id: str, function_id: str, sender_id: str, now_ms: int) -> str | None:
        """The id of the newest run of the function started by an event its sender gave the id
        `sender_id`, received within that id's dedupe window (the 24 h before `now_ms`); None if
        none. How an idempotent invoke finds the run of the event that took the id."""
        ...

    async def get_events(self, event_ids: list[str]) -> list[EventRecord]:
        """The stored events among `event_ids`, in the order given; unknown ids are left out."""
        ...

    async def get_app(self, app_id: str) -> SyncedApp | None:
        """The app with its function ids (sorted); None if no such app was ever synced."""
        ...

    async def list_workers(self, since_ms: int) -> list[WorkerInfo]:
        """Workers whose last heartbeat is at or after `since_ms`, by start time then id; older
        rows are forgotten."""
        ...


class Store(Lookups, Protocol):
    """The engine's seam: what the runtime needs to store functions, take in events and run them."""

    # -- lifecycle ----------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect and apply pending migrations. Safe when several processes open one database at
        once (a new one too); raises StoreError (saying where and why) when the database cannot
        be reached. Opening an open store does nothing."""
        ...

    async def close(self) -> None:
        """Disconnect. Calls made after `close` raise StoreError; closing twice does nothing."""
        ...

    def bind(self, planner: Planner) -> None:
        """Set the planner used by `ingest`, and by claims and commits that ingest events."""
        ...

    def add_listener(self, callback: Callable[[], None]) -> bool:
        """Call `callback()` (from a thread) whenever another process commits new or newly due
        work (or another store object on the same database in this process; this store's own
        commits are announced in-process by the engine, `Engine.wake`). False when it never
        will (in memory; a SQLite file where Unix sockets cannot be bound): the caller must
        poll."""
        ...

    async def check(self) -> None:
        """Raise StoreError (saying why) unless the database answers and every migration of this
        version is applied."""
        ...

    # -- functions ----------------------------------------------------------------------------

    async def sync_functions(
        self, app_id: str, configs: list[FunctionConfig], now_ms: int, *, mode: SyncMode = "merge"
    ) -> bool:
        """Store an app's function configurations; True when any stored configuration changed,
        appeared or was removed (the version then changes).

        `merge` (a worker of a local app starting): each given configuration replaces the stored
        one of the same id and is marked seen at `now_ms`; the app's other functions are kept
        (another version of the app may still serve them), except provisional ones, which are
        deleted. `replace` (a served app synced): the app's functions become exactly `configs`,
        never pruned (see `prune_functions`). `provisional` (a process that serves nothing, such
        as a script that only sends events): when the app has no stored function at all, store
        `configs` as provisional (never pruned; events start their runs until the first worker
        that serves the app replaces them); otherwise change nothing, so that a sender never
        changes what live workers serve. Each mode's cron items follow the stored functions: one per
        cron trigger; an unchanged one keeps its due time, a new or changed one is due at its
        next tick after `now_ms`, and those of functions gone are deleted.
        """
        ...

    async def load_functions(self) -> tuple[int, list[FunctionConfig]]:
        """(version, every stored configuration ordered by app id, function id). The version
        changes whenever the set or any configuration changes."""
        ...

    async def functions_version(self) -> int:
        """The version `load_functions` would return."""
        ...

    async def prune_functions(self, stale_before_ms: int) -> list[tuple[str, str]]:
        """Forget local-runtime functions last seen (synced or served by a live worker's heartbeat)
        before `stale_before_ms`, and their cron items; return their (app id, function id),
        ordered. Functions of served (http) apps are kept until their app re-syncs without them."""
        ...

    async def settle_provisional(self, app_id: str, served: set[str], now_ms: int) -> bool:
        """A live worker serves the app (its heartbeat): the app's provisional functions (see
        `sync_functions`) that some live worker serves (`served`) stop being provisional, seen
        at `now_ms`; the others are deleted with their cron items, as a starting worker's `merge`
        would. One transaction. True when any was deleted (the version then changes)."""
        ...

    # -- events -------------------------------------------------------------------------------

    async def ingest(self, events: list[EventRecord], now_ms: int) -> list[str]:
        """Store events and everything they cause, in one transaction; return their ids in order.

        For each event, in order, then for each event that causes (run ends, cancellations), in
        the order caused: store it (an id already stored makes this a retried ingest, and the
        event causes nothing again); if its `dedupe_id` was seen in the last 24 h it causes
        nothing more; resolve the waits on its name that it matches, oldest wait first (by wait id):
        only waits stored before it, and not those whose timeout passed (`expires_at <= now`;
        their run's claim resolves them). A `wait` or `invoke` step completes with the event
        (an invoke's `data.error` fails it) and its run becomes due now, or when its current
        attempt ends if it is leased; a `cancel` wait cancels its run (`cancel_run`). Equality
        waits are found by index (`match_field`/`match_value`), expression waits by evaluating
        `Planner.matches` with the run's first event as `event`. Each resolution is recorded as
        an effect of the event.

        Then create the runs the planner plans, in its order, each through flow control, first
        refusal wins (a refused run is stored as `skipped`, ended at now, with the reason):
        `rate_limit` (GCRA: `limit` runs per `period` per key), `idempotency` (one run per key
        per 24 h), `singleton` (skip mode: while an active run holds the key; cancel mode
        cancels the active runs holding it, oldest first, and starts). A debounced run gathers:
        while the key's run is queued and not leased, a new event replaces its events and moves
        it to `now + period` (never past its first event + `timeout`); else a new run starts,
        due at `now + period`. A batched run gathers: events join the key's queued, unleased run
        until it holds `max_size` (then it is due now), else a new one starts due at `now +
        timeout`. Throttle delays a run's due time to the key's next free slot (GCRA with
        `burst`), never skips it. A started run is `queued` with its run item (carrying its
        concurrency keys), its cancel waits and, with a start timeout, a `timeout` item.

        Cost: a long list (100,000 events) is stored with a few statements per table, not several
        per event, when its events resolve no wait and start runs without stored flow-control
        state; the effects and their order are the same (`outlast.storage.sql.bulk_ingest`).
        """
        ...

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
        """`ingest`, then `claim` within `scope` for `owner`, in one transaction: the runs the
        events start are leased as they are stored, for an idle worker of the sending process,
        which then needs no claim (no transaction) of its own to begin them."""
        ...

    # -- the queue ----------------------------------------------------------------------------

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
        """Lease up to `limit` due items within `scope`, the earliest due first (by due_at, then
        item id), and return the run items among them, ordered by item id, with their runs
        loaded (memo ordered by first write). Items whose concurrency keys are full (as many
        items with the key as its limit hold live leases) are passed over, as are suspects
        while a suspect is leased (see "Crashed attempts").

        Besides leasing, in the same transaction, in item id order: an abandoned run item
        counts a crash, and at `max_crashes` (`Settings.max_crashed_attempts`; 0 turns the
        bound off) its run fails and emits `inngest/function.failed` and `.finished`; below it,
        the crash is recorded on the run (a function-level failure named `WorkerCrashedError`
        with its `retry_at`) and the item is not leased but due again after the retry backoff
        of the crash count (`backoff_table_ms`, times `crash_backoff_scale`; at 0 it is leased
        at once); due
        `timeout` items fire (a start timeout cancels a run still queued, a finish timeout
        cancels a run not yet ended) and are deleted; due `cron` items ingest an
        `inngest/scheduled.timer` event for their function and move to their next tick after
        `now_ms` (so after downtime exactly one catch-up run, never a burst). Then claimed runs
        still `queued` become `running` (`started_at = now`; their finish timeout starts
        counting), and pending steps of claimed runs whose deadline passed are resolved.
        Fired and failed items count toward `limit` but are not returned; nor are run items
        whose run is no longer active. The result also says (`Claims`) whether the claim leased
        `limit` items or fired some (`full`: more may be due now) and, if not, the scope's next
        due time as `next_due_at` reads it at the end of the same transaction.
        """
        ...

    async def extend_leases(self, owner: str, tokens: dict[str, str], until_ms: int) -> set[str]:
        """Extend leases (item id -> token) to `until_ms`; return the ids whose lease was lost
        (token no longer matches, or item gone). `owner` is informational."""
        ...

    async def commit(self, commit: Commit) -> CommitResult:
        """Apply an attempt's writes if the lease token still matches; else change nothing and
        report `lost`.

        In one transaction: write the step rows (final rows insert-once; a row with an error
        is added to that step's failure history), store the waits, ingest the events (as
        `ingest` does), keep the log lines (the run's first `MAX_LOGS_PER_RUN`; later ones are
        dropped), then apply the outcome. No outcome (a checkpoint): the lease is left as it
        is (neither extended nor released: the worker's keeper extends it). `Suspend`: the item
        is released (no lease, crash count reset) and due at `due_at`, or now if an event
        resolved one of the run's waits while it was leased; a new function-level attempt
        count is recorded with its error in the run's failure history. `Finish`: the run
        ends with its status, output and error, its item, timeout items and waits are deleted,
        and `inngest/function.finished` (plus `.failed`) is ingested. A run already cancelled
        keeps its cancellation.
        """
        ...

    async def release(self, item_id: str, lease_token: str, due_at: int) -> None:
        """Give a leased item back unprocessed, due at `due_at` (a worker shutting down, or one
        that claimed an item it cannot run). Nothing happens if the token no longer matches."""
        ...

    async def start_held_run(
        self, plan: RunPlan, event: EventRecord, *, lease_token: str, owner: str, until_ms: int, now_ms: int
    ) -> str | None:
        """In one transaction: store `event` (as `ingest` does) and start the run `plan`
        describes already `running`, its item leased with `lease_token` until `until_ms` (a
        Durable Endpoint's request runs the first attempt itself); return the item's id. None,
        and nothing written, when a run with that id exists; None when the run is skipped
        (its function is paused)."""
        ...

    async def next_due_at(self, scope: AppScope) -> int | None:
        """The smallest `due_at` among items within `scope` (a leased item's is its lease expiry);
        None if there is none."""
        ...

    async def cancel_run(self, run_id: str, now_ms: int, reason: str = "cancelled by request") -> bool:
        """Cancel an active run: status `cancelled` with a `FunctionCancelled` error naming the
        reason, its pending and retrying steps marked cancelled, its items and waits deleted, and
        `inngest/function.cancelled` (plus `.finished`) ingested. False when it is not active
        (finished, or no such run); then nothing changes."""
        ...

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
        """In one transaction: check that `origin_run_id` exists and has ended (else raise
        `RerunError` and write nothing); create the run `plan` describes (its item,
        cancel waits and start timeout; no idempotency, rate limit, debounce, batch or singleton);
        copy the origin's final memo rows whose keys are in `keep_keys`; write `edited` (the step
        the rerun starts from, completed with an edited output); record the link to the origin."""
        ...

    # -- coordination: signals and paused functions ----------------------------------------------

    async def send_signal(self, signal: str, data: dict[str, Any], now_ms: int, hold_until: int | None) -> str | None:
        """Deliver a signal, atomically: the wait on `signal` that has not expired is deleted and its
        step (`wait_for_signal`, status `waiting`) completes with `{"signal": signal, "data": data}`
        as output (Inngest's shape), its run woken
        (as an event wakes a wait); returns that run's id. Of two calls racing for one wait, one
        resumes it and the other finds none. With no such wait: held until `hold_until` (when
        given) for the first signal wait on the name that a commit stores, and None is returned.

        Signal waits are stored by `commit` (`Commit.signal_waits`, after the step rows): the
        oldest signal held for the name and not expired is consumed and completes the step at
        once; else the wait takes the name unless another unexpired wait holds it, which it takes
        over only with `replace` (the other's step keeps waiting to its deadline); a refused wait
        fails its step with `SignalConflictError`. Either way the run is woken. A run's signal
        waits go when it ends; a timed-out one's step resolves at its deadline like any wait."""
        ...

    async def set_paused(self, app_id: str, function_id: str, paused: bool, now_ms: int) -> bool:
        """Pause or resume a function; True when that changed anything. While it is paused,
        `ingest` records each run it would start as `skipped` with the reason "paused", and claims
        (and `next_due_at`) pass over its run items, so its runs in flight run no step; once
        resumed, those items are due as before. Kept across restarts, shared by every process."""
        ...

    async def paused_functions(self) -> list[tuple[str, str]]:
        """The paused functions as (app id, function id), in that order."""
        ...

    # -- apps served over HTTP (official Inngest SDKs) ----------------------------------------

    async def sync_app(self, app: SyncedApp, configs: list[FunctionConfig], now_ms: int) -> bool:
        """In one transaction: store the app's row (url, sdk, framework, checksum; error cleared;
        `synced_at = now_ms`, `created_at` kept) and make its functions exactly `configs`, as
        `sync_functions(mode="replace")` does (cron items follow). True when any function changed."""
        ...

    async def record_app_error(self, app_id: str, url: str | None, error: str, now_ms: int) -> None:
        """Remember why the app's last sync failed (the row is created if new); its functions stay."""
        ...

    async def remove_app(self, app_id: str, now_ms: int) -> bool:
        """Forget the app and its functions (and their cron items), in one transaction; runs are
        left as they are. False when no such app was stored."""
        ...

    # -- workers ------------------------------------------------------------------------------

    async def heartbeat(self, worker: WorkerInfo) -> None:
        """Record that a worker is alive (insert or refresh its row), and mark the functions it
        serves as seen at its `heartbeat_at`."""
        ...

    async def forget_worker(self, worker_id: str) -> None:
        """Remove a worker that stopped cleanly, at once."""
        ...

    # -- upkeep: retention and vacuum ---------------------------------------------------------
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
        `now_ms` (never earlier, whatever `before_ms`); up to `limit` rate-limit and throttle keys
        whose next free time passed before `before_ms`, and up to `limit` debounce and batch
        gatherings begun before it whose run is no longer queued (neither does anything any
        more: the key behaves as new, as it did before).
        Events are examined from a cursor kept with the chore, so a batch may remove none while
        older events remain: call until nothing was removed and `more` is false (`more` is also
        true after a full batch of runs)."""
        ...

    async def vacuum(self, tables: tuple[str, ...]) -> bool:
        """Reclaim the dead rows of `tables` where the database would not do it by itself
        (PostgreSQL with autovacuum off; the queue alone leaves thousands a second), and there
        refresh the planner's statistics of every Outlast table that changed enough since. True
        when it vacuumed. Not a transaction; never blocks reads or writes of the tables."""
        ...

    async def match_expression_waits(self, now_ms: int) -> int:
        """Match events left for the expression waits of their name (waits an index cannot find)
        against those waits, oldest first, a batch at a time; return how many events were matched
        (0: none was left). Evaluating happens outside any write transaction, so ingest of other
        events goes on meanwhile; each wait resolves at most once, and only waits stored before
        the event can match it. Atomic per batch: the matches are applied in one transaction."""
        ...

    def expression_checks(self) -> int:
        """How many events this process has left for expression waits so far: a matcher that saw
        this count has nothing new of this process's to match (other processes' events come with
        a wake-up, see `add_listener`)."""
        ...

    async def shrink_wait_fields(self) -> int:
        """Forget `wait_fields` entries that no stored wait needs; return how many. A wait stored
        concurrently keeps (or gets back) its entry."""
        ...

    # -- realtime messages (storage/sql/realtime.py) --------------------------------------------

    async def publish(self, messages: list[MessageRecord]) -> None:
        """Publish messages outside any run's commit (Inngest's publish route), in one transaction,
        in order. A step's messages are written by `commit` with its memo row instead."""
        ...

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
        """Up to `limit` kept messages with ids above `after_id` (and up to `until_id`), oldest
        first, of `channels` (None: all) and `topics` (None: any), published by `run_id` (None: any;
        a run's own channel is written with its id). Ids increase in commit order, so
        reading on from the last id seen misses nothing committed later."""
        ...

    async def last_message_id(self) -> int:
        """The highest message id published so far (0 when none is kept); on a backend where
        transactions commit out of id order, the highest id below which none can still commit."""
        ...

    async def watch_run(self, run_id: str, *, until_ms: int) -> bool:
        """Write run `run_id`'s own channel (`run:<id>`: status changes, step ends) until
        `until_ms`, or longer; a run not watched until now gets its story so far written at once.
        True when the run was not watched. Runs nobody watches have no such messages."""
        ...

    async def prune_messages(self, *, before_ms: int, limit: int) -> int:
        """Delete up to `limit` messages published before `before_ms`; return how many."""
        ...

    def add_message_listener(self, callback: Callable[[], None]) -> bool:
        """Call `callback()` (from a thread) once messages are committed, by this process or another.
        False when other processes' messages will not be heard of (the caller must poll)."""
        ...


class Reads(Lookups, Protocol):
    """Read models: what the dashboard, the JSON API, Inngest's REST and GraphQL APIs, the CLI and
    the metrics show. The engine never needs them."""

    # -- events -------------------------------------------------------------------------------

    async def list_events(self, flt: EventFilter) -> list[EventRecord]:
        """Events matching the filter, newest first (by id), at most `flt.limit`."""
        ...

    async def event_effects(self, event_id: str) -> list[EventEffect]:
        """What the event did: the runs it started (or joined), resumed or cancelled, ordered by
        run id then effect; empty for an unknown event."""
        ...

    async def event_names(self, recent: int = 500) -> list[str]:
        """Event names worth suggesting: those of the newest `recent` events and every stored
        function's event triggers, sorted."""
        ...

    # -- runs ---------------------------------------------------------------------------------

    async def count_runs(self, flt: RunFilter, cap: int) -> StatusCounts:
        """How many runs match the filter (its status, cursor and limit ignored) in each status,
        each count stopping at `cap`."""
        ...

    async def runs_with_triggers(self, flt: RunFilter) -> list[tuple[Run, EventRecord | None]]:
        """`list_runs`, each run with its first trigger event (None if that event is gone)."""
        ...

    async def run_logs(self, run_id: str) -> list[LogLine]:
        """The lines the run's function logged, in the order logged (at most MAX_LOGS_PER_RUN)."""
        ...

    async def run_links(self, run_id: str) -> RerunLinks:
        """The run this one reran (if any), its own reruns, and the runs it invoked."""
        ...

    async def runs_for_events(self, event_ids: list[str], limit_per_event: int = 100) -> dict[str, list[Run]]:
        """For each event id, the runs it started (or joined, for batches and debounces), oldest
        first, without steps, at most `limit_per_event` each; an event that started nothing (or
        is unknown) maps to an empty list."""
        ...

    async def run_jobs(self, run_id: str, limit: int = 100) -> list[QueueJob]:
        """The run's queue items by due time (empty when it has none, e.g. it ended)."""
        ...

    async def active_runs_with_triggers(
        self, *, app_id: str, function_id: str, since: int | None, until: int, after: str | None, limit: int
    ) -> list[tuple[str, EventRecord | None]]:
        """Queued or running runs of a function created in [since, until) whose id is above
        `after` (a cursor), by id, at most `limit`, each with its first trigger event (None if
        that event was deleted)."""
        ...

    async def child_runs(self, run_id: str, limit: int = 1000) -> list[tuple[str, EventRecord]]:
        """The runs this run invoked, by id, each with the `inngest/function.invoked` event that started it."""
        ...

    # -- functions, apps, workers and the queue -----------------------------------------------

    async def function_stats(self, now_ms: int, functions: list[tuple[str, str]]) -> list[FunctionStats]:
        """For each (app id, function id), in the order given: runs and failures over the last hour
        and day (in buckets, by creation time), p50/p95 durations of the newest completed runs, and
        the backlog (run items due at `now_ms` and not leased)."""
        ...

    async def list_apps(self) -> list[SyncedApp]:
        """Every synced app, by id, with its function ids."""
        ...

    async def queue_stats(self, now_ms: int) -> QueueStats:
        """Work items per (app, function): due at `now_ms`, leased, scheduled later, and the due
        time of the oldest due one; stored waits by kind. Ordered by app id, function id."""
        ...


class Backend(Store, Reads, Protocol):
    """Both seams over one database: what `open_store` returns (`SqlStore` implements it). The
    engine keeps it as its `store` and hands it to readers as its `reads`."""
