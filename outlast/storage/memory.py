"""The in-memory store (`memory://`): the reference backend, pure Python, one process.

It follows `outlast.storage.sql.logic` step for step, over dicts keyed like the SQL indexes.

Atomicity: one `threading.Lock` serialises every call, and a writing call keeps an undo journal.
Every change goes through `_set`/`_delete` (one dict slot) or `_pop_entry` (one heap entry), which
record how to reverse it; if the call raises anywhere (the planner, a value that is not JSON) the
journal is replayed backwards, leaving the state as it was. Rows are frozen dataclasses, replaced
and never mutated, so an undo only needs the old row.

Isolation: JSON values are stored as `jsonutil` text, as in SQL, and decoded into fresh objects on
the way out, so callers never share objects with the store, and values that are not JSON fail the
same way.

Due items: each app has a heap of `(due_at, item_id, version)`. Every write of an item gives it a
new version (from a counter that never goes back) and pushes an entry. Only the entry with the
item's current version is live; dead ones are dropped as they surface, or compacted after a write
once they dominate. Claiming k items costs O(k log n).
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar, cast

from outlast.core import jsonutil
from outlast.core.expressions import lookup
from outlast.core.ids import new_token, new_ulid
from outlast.core.registry import RunPlan, WaitSpec
from outlast.core.system_events import run_ended_events
from outlast.events import EventRecord
from outlast.models import ACTIVE_STATUSES, Run, StepRecord
from outlast.storage.base import (
    FINAL_STEP_STATUSES,
    PENDING_STEP_STATUSES,
    Claimed,
    Commit,
    CommitResult,
    Finish,
    MemoEntry,
    Planner,
    RunFilter,
    RunState,
    StepWrite,
    Suspend,
)
from outlast.storage.sql.logic import DEDUPE_MS

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")
_MISSING: Any = object()
_MIN_HEAP = 1024  # a heap is compacted when it grows past max(this, twice its live size)
_dumps, _loads = jsonutil.dumps, jsonutil.loads
Entry = tuple[int, str, int]  # (due_at, item id, version): ties on due_at go to the older item


@dataclass(frozen=True, slots=True)
class _Event:
    id: str
    name: str
    data: str
    user: str
    ts: int
    dedupe_id: str | None

    def record(self) -> EventRecord:
        return EventRecord(self.id, self.name, _loads(self.data), _loads(self.user), self.ts, self.dedupe_id)


@dataclass(frozen=True, slots=True)
class _Run:
    id: str
    app_id: str
    function_id: str
    status: str
    event_ids: tuple[str, ...]
    created_at: int
    parent_run_id: str | None
    skip_reason: str | None
    ended_at: int | None
    output: str | None = None
    error: str | None = None
    attempt: int = 0
    started_at: int | None = None

    def model(self) -> Run:
        return Run(self.id, self.app_id, self.function_id, self.status, list(self.event_ids), _loads(self.output),
                   _loads(self.error), self.created_at, self.started_at, self.ended_at, self.parent_run_id,
                   self.skip_reason)


@dataclass(frozen=True, slots=True)
class _Step:
    key: str
    step_id: str
    kind: str
    status: str
    attempts: int
    output: str | None
    error: str | None
    started_at: int | None
    ended_at: int | None
    deadline: int | None
    timeout_output: str | None
    seq: int  # first-write order


@dataclass(frozen=True, slots=True)
class _Item:
    id: str
    app_id: str
    kind: str
    run_id: str | None
    due_at: int
    payload: str | None
    version: int = 0
    lease_token: str | None = None
    owner: str | None = None
    woken: bool = False


@dataclass(frozen=True, slots=True)
class _Wait:
    id: str
    run_id: str
    created_at: int
    spec: WaitSpec  # frozen: safe to share with the caller


def _restore(table: dict[Any, Any], key: Any, old: Any) -> None:
    if old is _MISSING:
        table.pop(key, None)
    else:
        table[key] = old


class MemoryStore:
    def __init__(self) -> None:
        self._planner: Planner | None = None
        self._lock = threading.Lock()
        self._journal: list[Callable[[], None]] | None = None  # set while a writing call runs
        self._counter = itertools.count(1)  # item versions and step seqs; never rolled back
        self._meta: dict[str, int] = {"functions_version": 0}
        self._functions: dict[str, dict[str, str]] = {}  # app -> function id -> config text
        self._events: dict[str, _Event] = {}
        self._dedupe: dict[str, int] = {}  # key -> expires_at
        self._runs: dict[str, _Run] = {}
        self._run_ids: list[str] = []  # sorted
        self._runs_by_event: dict[str, dict[str, None]] = {}  # every event id of a run -> run ids
        self._steps: dict[str, dict[str, _Step]] = {}  # run -> key -> row
        self._items: dict[str, _Item] = {}
        self._items_by_run: dict[str, dict[str, None]] = {}
        self._due: dict[str, list[Entry]] = {}  # app -> heap
        self._heap_limit: dict[str, int] = {}
        self._waits: dict[str, _Wait] = {}
        self._waits_by_run: dict[str, dict[str, None]] = {}
        self._waits_by_value: dict[tuple[str, str, str | None], dict[str, None]] = {}
        self._waits_by_expr: dict[str, dict[str, None]] = {}  # event name -> expression waits
        self._wait_fields: dict[str, dict[str, None]] = {}  # event name -> indexed fields (never shrinks)

    # -- the Store protocol ---------------------------------------------------------------------

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def bind(self, planner: Planner) -> None:
        self._planner = planner

    @property
    def planner(self) -> Planner:
        if self._planner is None:
            raise RuntimeError("store used before an engine bound its planner")
        return self._planner

    async def sync_functions(self, app_id: str, configs: list[dict[str, Any]], now_ms: int) -> bool:
        return self._write(lambda: self._sync_functions(app_id, configs))

    async def load_functions(self) -> tuple[int, list[dict[str, Any]]]:
        return self._read(lambda: (self._meta["functions_version"],
                                   [_loads(t) for app in self._functions.values() for t in app.values()]))

    async def functions_version(self) -> int:
        return self._read(lambda: self._meta["functions_version"])

    async def ingest(self, events: list[EventRecord], now_ms: int) -> list[str]:
        return self._write(lambda: self._ingest(self.planner, events, now_ms))

    async def claim(self, app_id: str, owner: str, limit: int, now_ms: int, lease_ms: int) -> list[Claimed]:
        return self._write(lambda: self._claim(self.planner, app_id, owner, limit, now_ms, lease_ms))

    async def extend_leases(self, owner: str, tokens: dict[str, str], until_ms: int) -> set[str]:
        return self._write(lambda: {i for i, t in tokens.items() if not self._relet(i, t, due_at=until_ms)})

    async def commit(self, commit: Commit) -> CommitResult:
        return self._write(lambda: self._commit(self.planner, commit))

    async def release(self, item_id: str, lease_token: str, due_at: int) -> None:
        self._write(lambda: self._relet(item_id, lease_token, due_at=due_at, lease_token=None, owner=None))

    async def next_due_at(self, app_id: str) -> int | None:
        return self._read(lambda: None if (item := self._peek_due(app_id)) is None else item.due_at)

    async def get_run(self, run_id: str) -> Run | None:
        return self.get_run_now(run_id)

    async def list_runs(self, flt: RunFilter) -> list[Run]:
        return self.list_runs_now(flt)

    async def get_events(self, event_ids: list[str]) -> list[EventRecord]:
        return self._read(lambda: self._get_events(event_ids))

    def get_run_now(self, run_id: str) -> Run | None:
        return self._read(lambda: self._get_run(run_id))

    def list_runs_now(self, flt: RunFilter) -> list[Run]:
        return self._read(lambda: self._list_runs(flt))

    async def cancel_run(self, run_id: str, now_ms: int, reason: str = "cancelled by request") -> bool:
        return self._write(lambda: self._cancel_run(self.planner, run_id, now_ms, reason))

    # -- transactions and the journal ------------------------------------------------------------

    def _read(self, fn: Callable[[], T]) -> T:
        with self._lock:
            return fn()

    def _write(self, fn: Callable[[], T]) -> T:
        """Run `fn` all-or-nothing: on any exception, undo everything it changed."""
        with self._lock:
            journal: list[Callable[[], None]] = []
            self._journal = journal
            try:
                result = fn()
            except BaseException:
                for undo in reversed(journal):
                    undo()
                raise
            finally:
                self._journal = None
            self._compact_heaps()
            return result

    def _record(self, undo: Callable[[], None]) -> None:
        if self._journal is not None:
            self._journal.append(undo)

    def _set(self, table: dict[K, V], key: K, value: V) -> None:
        old = table.get(key, _MISSING)
        table[key] = value
        self._record(lambda: _restore(table, key, old))

    def _delete(self, table: dict[K, V], key: K) -> None:
        if key in table:
            old = table.pop(key)
            self._record(lambda: _restore(table, key, old))

    def _set_in(self, outer: dict[K, dict[str, V]], key: K, inner_key: str, value: V) -> None:
        """`outer[key][inner_key] = value`, creating the inner dict when needed."""
        inner = outer.get(key)
        if inner is None:
            self._set(outer, key, {inner_key: value})
        else:
            self._set(inner, inner_key, value)

    def _delete_in(self, outer: dict[K, dict[str, V]], key: K, inner_key: str) -> None:
        """Delete `outer[key][inner_key]`, and the inner dict once it is empty."""
        inner = outer.get(key)
        if inner is not None and inner_key in inner:
            self._delete(inner, inner_key)
            if not inner:
                self._delete(outer, key)

    # -- functions -------------------------------------------------------------------------------

    def _sync_functions(self, app_id: str, configs: list[dict[str, Any]]) -> bool:
        wanted = {c["id"]: _dumps(c) for c in configs}
        if self._functions.get(app_id, {}) == wanted:
            return False
        self._set(self._functions, app_id, wanted)
        self._set(self._meta, "functions_version", self._meta["functions_version"] + 1)
        return True

    # -- ingest ----------------------------------------------------------------------------------

    def _ingest(self, planner: Planner, events: list[EventRecord], now: int) -> list[str]:
        for event in events:
            if event.id in self._events:
                continue  # already stored: this is a retried ingest
            self._set(self._events, event.id, _Event(event.id, event.name, _dumps(event.data), _dumps(event.user),
                                                      event.ts, event.dedupe_id))
            if event.dedupe_id and not self._claim_key(f"event:{event.dedupe_id}", now):
                continue
            self._resolve_waits(planner, event, now)
            for plan in planner.plan(event, now):
                self._create_run(plan, now)
        return [e.id for e in events]

    def _claim_key(self, key: str, now: int) -> bool:
        """Take an idempotency key for 24 h; False when it is already taken."""
        expires = self._dedupe.get(key)
        if expires is not None and expires > now:
            return False
        self._set(self._dedupe, key, now + DEDUPE_MS)
        return True

    def _create_run(self, plan: RunPlan, now: int) -> None:
        if plan.run_id in self._runs:
            raise ValueError(f"run {plan.run_id!r} already exists")  # SQL: primary key violation
        skip = plan.idempotency_key is not None and not self._claim_key(f"run:{plan.idempotency_key}", now)
        if not plan.event_ids:
            raise ValueError(f"run {plan.run_id!r} has no event")  # SQL: first_event_id = event_ids[0] raises
        run = _Run(plan.run_id, plan.app_id, plan.function_id, "skipped" if skip else "queued",
                   tuple(plan.event_ids), plan.created_at, plan.parent_run_id, "idempotency" if skip else None,
                   now if skip else None)
        self._set(self._runs, run.id, run)
        self._insert_run_id(run.id)
        for event_id in run.event_ids:
            self._set_in(self._runs_by_event, event_id, run.id, None)
        if skip:
            return
        self._enqueue(plan.app_id, "run", plan.run_id, plan.due_at)
        for wait in plan.cancel_waits:
            self._add_wait(plan.run_id, wait, now)
        if plan.start_deadline is not None:
            self._enqueue(plan.app_id, "timeout", plan.run_id, plan.start_deadline, {"type": "start"})

    def _insert_run_id(self, run_id: str) -> None:
        ids = self._run_ids
        if ids and ids[-1] > run_id:
            bisect.insort(ids, run_id)
        else:
            ids.append(run_id)  # the usual case: ULIDs grow
        self._record(lambda: ids.remove(run_id))

    def _add_wait(self, run_id: str, w: WaitSpec, now: int) -> None:
        wait = _Wait(new_ulid(), run_id, now, w)
        self._set(self._waits, wait.id, wait)
        self._set_in(self._waits_by_run, run_id, wait.id, None)
        if w.match_field is None:
            self._set_in(self._waits_by_expr, w.event_name, wait.id, None)
        else:
            self._set_in(self._waits_by_value, (w.event_name, w.match_field, w.match_value), wait.id, None)
            self._set_in(self._wait_fields, w.event_name, w.match_field, None)

    def _delete_wait(self, wait_id: str) -> None:
        wait = self._waits.get(wait_id)
        if wait is None:
            return
        w = wait.spec
        self._delete(self._waits, wait_id)
        self._delete_in(self._waits_by_run, wait.run_id, wait_id)
        if w.match_field is None:
            self._delete_in(self._waits_by_expr, w.event_name, wait_id)
        else:
            self._delete_in(self._waits_by_value, (w.event_name, w.match_field, w.match_value), wait_id)

    def _delete_step_waits(self, run_id: str, step_key: str) -> None:
        for wait_id in list(self._waits_by_run.get(run_id, ())):
            if self._waits[wait_id].spec.step_key == step_key:
                self._delete_wait(wait_id)

    def _matching_waits(self, planner: Planner, event: EventRecord, payload: dict[str, Any]) -> list[_Wait]:
        """The waits an event matches, oldest first: by index, then by evaluating expressions."""
        found: list[_Wait] = []
        for field in self._wait_fields.get(event.name, {}):
            found += map(self._waits.__getitem__,
                         self._waits_by_value.get((event.name, field, _dumps(lookup(payload, field))), {}))
        for wait_id in list(self._waits_by_expr.get(event.name, {})):
            wait = self._waits[wait_id]
            run = self._runs.get(wait.run_id)
            trigger = self._events.get(run.event_ids[0]) if run else None
            if trigger is not None and planner.matches(cast(str, wait.spec.expression), trigger.record().to_dict(),
                                                       payload):
                found.append(wait)
        return sorted(found, key=lambda w: (w.created_at, w.id))

    def _resolve_waits(self, planner: Planner, event: EventRecord, now: int) -> None:
        payload = event.to_dict()
        for wait in self._matching_waits(planner, event, payload):  # a snapshot, as in SQL
            if wait.spec.expires_at <= now:
                continue  # timed out: its run's claim resolves it
            if wait.spec.kind == "cancel":
                self._cancel_run(planner, wait.run_id, now, "cancelled by event " + event.name)
            else:
                self._complete_wait(wait.run_id, wait.spec.kind, wait.spec.step_key, payload, now)

    def _complete_wait(self, run_id: str, kind: str, step_key: str | None, payload: dict[str, Any],
                       now: int) -> None:
        status, output, error = "completed", cast(Any, payload), cast(Any, None)
        if kind == "invoke":
            data = payload["data"]
            status = "failed" if "error" in data else "completed"
            output, error = (None, data["error"]) if status == "failed" else (data.get("result"), None)
        output_text, error_text = _dumps(output), _dumps(error) if error else None
        if step_key is None:
            return  # SQL: `key = NULL` matches nothing
        step = self._steps.get(run_id, {}).get(step_key)
        changed = step is not None and step.status in PENDING_STEP_STATUSES
        if step is not None and changed:
            self._set_in(self._steps, run_id, step_key, replace(
                step, status=status, output=output_text, error=error_text, ended_at=now, deadline=None))
        self._delete_step_waits(run_id, step_key)
        if changed:
            self._wake(run_id, now)

    def _wake(self, run_id: str, now: int) -> None:
        """Make a suspended run due now; a leased one resumes when its attempt ends."""
        for item_id in list(self._items_by_run.get(run_id, ())):
            item = self._items[item_id]
            if item.kind == "run":
                self._put_item(replace(item, woken=True, due_at=now if item.lease_token is None else item.due_at))

    # -- cancellation ----------------------------------------------------------------------------

    def _cancel_run(self, planner: Planner, run_id: str, now: int, reason: str) -> bool:
        error = {"name": "FunctionCancelled", "message": reason}
        run = self._runs.get(run_id)
        if run is None or run.status not in ACTIVE_STATUSES:
            return False
        self._set(self._runs, run_id, replace(run, status="cancelled", error=_dumps(error), ended_at=now))
        self._end_run(planner, run_id, "cancelled", None, error, now)
        return True

    def _end_run(self, planner: Planner, run_id: str, status: str, output: Any, error: Any, now: int) -> None:
        for item_id in list(self._items_by_run.get(run_id, ())):
            self._delete_item(item_id)
        for wait_id in list(self._waits_by_run.get(run_id, ())):
            self._delete_wait(wait_id)
        run = self._runs.get(run_id)
        app_id, function_id, event_ids = (run.app_id, run.function_id, list(run.event_ids)) if run else ("", "", [])
        triggers = [e.to_dict() for e in self._get_events(event_ids)]
        emitted = run_ended_events(app_id=app_id, function_id=function_id, run_id=run_id, trigger_events=triggers,
                                   status=status, output=output, error=error, now_ms=now)
        self._ingest(planner, emitted, now)

    # -- the queue -------------------------------------------------------------------------------

    def _enqueue(self, app_id: str, kind: str, run_id: str | None, due: int, payload: Any = None) -> None:
        self._put_item(_Item(new_ulid(), app_id, kind, run_id, due, None if payload is None else _dumps(payload)))

    def _put_item(self, item: _Item) -> None:
        """Insert or replace an item under a new version, with a live heap entry for it."""
        item = replace(item, version=next(self._counter))
        heapq.heappush(self._due.setdefault(item.app_id, []), (item.due_at, item.id, item.version))
        if item.id not in self._items and item.run_id is not None:
            self._set_in(self._items_by_run, item.run_id, item.id, None)
        self._set(self._items, item.id, item)  # rolled back, it gets its old version: the new entry dies

    def _delete_item(self, item_id: str) -> None:
        item = self._items.get(item_id)  # may be gone already: a timeout fired earlier in the claim
        if item is None:
            return
        self._delete(self._items, item_id)
        if item.run_id is not None:
            self._delete_in(self._items_by_run, item.run_id, item_id)

    def _live(self, entry: Entry) -> bool:
        item = self._items.get(entry[1])
        return item is not None and item.version == entry[2]

    def _pop_entry(self, heap: list[Entry]) -> None:
        entry = heapq.heappop(heap)
        self._record(lambda: heapq.heappush(heap, entry))

    def _peek_due(self, app_id: str) -> _Item | None:
        """The app's earliest item, dropping dead heap entries on the way."""
        heap = self._due.get(app_id, [])
        while heap and not self._live(heap[0]):
            self._pop_entry(heap)
        return self._items[heap[0][1]] if heap else None

    def _compact_heaps(self) -> None:
        """Drop dead entries once they dominate a heap (only between calls: rollbacks revive entries)."""
        for app_id, heap in self._due.items():
            if len(heap) > self._heap_limit.get(app_id, _MIN_HEAP):
                heap[:] = [e for e in heap if self._live(e)]
                heapq.heapify(heap)
                self._heap_limit[app_id] = max(_MIN_HEAP, 2 * len(heap))

    def _relet(self, item_id: str, token: str, **changes: Any) -> bool:
        """Change a leased item if `token` still holds its lease; False when it does not."""
        item = self._items.get(item_id)
        if item is None or item.lease_token is None or item.lease_token != token:
            return False
        self._put_item(replace(item, **changes))
        return True

    # -- claiming --------------------------------------------------------------------------------

    def _claim(self, planner: Planner, app_id: str, owner: str, limit: int, now: int,
               lease_ms: int) -> list[Claimed]:
        rows: list[_Item] = []
        while len(rows) != limit:  # a negative limit is no limit, as in SQLite
            item = self._peek_due(app_id)
            if item is None or item.due_at > now:
                break
            self._pop_entry(self._due[app_id])
            rows.append(item)
        if not rows:
            return []
        token = new_token()
        for item in rows:
            self._put_item(replace(item, lease_token=token, owner=owner, due_at=now + lease_ms, woken=False))
        claimed: list[Claimed] = []
        run_ids: list[str | None] = []
        for item in rows:
            if item.kind == "timeout":
                self._fire_timeout(planner, item, now)
                continue
            claimed.append(Claimed(item.id, item.kind, token))
            run_ids.append(item.run_id)
        states = self._load_states([r for r in run_ids if r is not None], now)
        for c, run_id in zip(claimed, run_ids, strict=True):
            c.run = states.get(run_id) if run_id is not None else None
        return [c for c in claimed if c.run is not None]

    def _fire_timeout(self, planner: Planner, item: _Item, now: int) -> None:
        self._delete_item(item.id)
        payload = _loads(item.payload)
        run = self._runs.get(item.run_id) if item.run_id is not None else None
        if run is not None and (payload["type"] == "finish" or run.status == "queued"):
            self._cancel_run(planner, run.id, now, f"{payload['type']} timeout reached")

    def _load_states(self, run_ids: list[str], now: int) -> dict[str, RunState]:
        self._resolve_deadlines(run_ids, now)
        states: dict[str, RunState] = {}
        for run_id in run_ids:
            run = self._runs.get(run_id)
            if run is not None and run.status == "queued":
                run = replace(run, status="running", started_at=now)
                self._set(self._runs, run_id, run)
            if run is None or run.status != "running":
                continue
            memo = {s.key: MemoEntry(s.key, s.step_id, s.kind, s.status, s.attempts, _loads(s.output),
                                     _loads(s.error), s.started_at, s.ended_at, s.deadline)
                    for s in self._steps_of(run_id)}
            states[run_id] = RunState(run_id, run.app_id, run.function_id, run.status,
                                      self._get_events(list(run.event_ids)), memo, run.attempt, run.created_at,
                                      run.started_at)
        return states

    def _resolve_deadlines(self, run_ids: list[str], now: int) -> None:
        """Sleeps that ended and waits/invokes that timed out become final memo rows."""
        for run_id in run_ids:
            for step in list(self._steps.get(run_id, {}).values()):
                if step.deadline is None or step.deadline > now or step.status not in PENDING_STEP_STATUSES:
                    continue
                failed = step.kind == "invoke"
                self._set_in(self._steps, run_id, step.key, replace(
                    step, status="failed" if failed else "completed", output=None if failed else step.timeout_output,
                    error=step.timeout_output if failed else None, ended_at=step.deadline, deadline=None))
                self._delete_step_waits(run_id, step.key)

    # -- committing ------------------------------------------------------------------------------

    def _commit(self, planner: Planner, c: Commit) -> CommitResult:
        if not self._relet(c.item_id, c.lease_token, due_at=c.lease_until):
            return CommitResult(False, "lost")
        for write in c.steps:
            self._write_step(c.run_id, write)
        for wait in c.waits:
            self._add_wait(c.run_id, wait, c.now_ms)
        if c.events:
            self._ingest(planner, c.events, c.now_ms)
        if isinstance(c.outcome, Suspend):
            self._suspend(c, c.outcome)
        elif isinstance(c.outcome, Finish):
            self._finish(planner, c, c.outcome)
        return CommitResult(True)

    def _write_step(self, run_id: str, w: StepWrite) -> None:
        """Upsert a memo row; a row in a final status is never overwritten."""
        row = _Step(w.key, w.step_id, w.kind, w.status, w.attempts, _dumps(w.output),
                    _dumps(w.error) if w.error is not None else None, w.started_at, w.ended_at, w.deadline,
                    _dumps(w.timeout_output), 0)
        old = self._steps.get(run_id, {}).get(w.key)
        if old is None:
            row = replace(row, seq=next(self._counter))
        elif old.status in FINAL_STEP_STATUSES:
            return
        else:  # the first write's identity, start time and place in the trace stay
            row = replace(row, step_id=old.step_id, kind=old.kind, started_at=old.started_at, seq=old.seq)
        self._set_in(self._steps, run_id, w.key, row)

    def _suspend(self, c: Commit, s: Suspend) -> None:
        item = self._items.get(c.item_id)
        if item is not None:  # gone when this commit's own events cancelled the run
            self._put_item(replace(item, due_at=c.now_ms if item.woken else s.due_at, lease_token=None,
                                   owner=None, woken=False))
        run = self._runs.get(c.run_id)
        if s.attempt is not None and run is not None:
            self._set(self._runs, run.id, replace(run, attempt=s.attempt))

    def _finish(self, planner: Planner, c: Commit, f: Finish) -> None:
        output, error = _dumps(f.output), _dumps(f.error) if f.error else None
        run = self._runs.get(c.run_id)
        if run is not None:
            self._set(self._runs, run.id, replace(run, status=f.status, output=output, error=error,
                                                  ended_at=c.now_ms))
        self._end_run(planner, c.run_id, f.status, f.output, f.error, c.now_ms)

    # -- reading ---------------------------------------------------------------------------------

    def _get_events(self, ids: list[str]) -> list[EventRecord]:
        return [self._events[i].record() for i in ids if i in self._events]

    def _steps_of(self, run_id: str) -> list[_Step]:
        return sorted(self._steps.get(run_id, {}).values(), key=lambda s: s.seq)

    def _get_run(self, run_id: str) -> Run | None:
        row = self._runs.get(run_id)
        if row is None:
            return None
        run = row.model()
        run.steps = [StepRecord(s.step_id, s.key, s.kind, s.status, s.attempts, _loads(s.output), _loads(s.error),
                                s.started_at, s.ended_at) for s in self._steps_of(run_id)]
        return run

    def _list_runs(self, f: RunFilter) -> list[Run]:
        """Newest first; an event filter starts from the event's index instead of every run."""
        candidates = (sorted(self._runs_by_event.get(f.event_id, ()), reverse=True) if f.event_id is not None
                      else reversed(self._run_ids))
        out: list[Run] = []
        for run_id in candidates:
            if len(out) == f.limit:
                break
            r = self._runs[run_id]
            if all(want is None or want == have for want, have in (
                    (f.app_id, r.app_id), (f.function_id, r.function_id), (f.status, r.status))):
                out.append(r.model())
        return out
