"""The in-memory store's rows and tables, and the undo journal that makes each call atomic."""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from outlast.core import jsonutil
from outlast.core.registry import WaitSpec
from outlast.events import EventRecord
from outlast.models import Run
from outlast.storage.base import WorkerInfo

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")
_MISSING: Any = object()
MIN_HEAP = 1024  # a heap is compacted when it grows past max(this, twice its live size)
dumps, loads = jsonutil.dumps, jsonutil.loads
Entry = tuple[int, int, int, str]  # (due_at, rowid, version, item id): ties on due_at go to the older item


@dataclass(frozen=True, slots=True)
class EventRow:
    id: str
    name: str
    data: str
    user: str
    ts: int
    dedupe_id: str | None

    def record(self) -> EventRecord:
        return EventRecord(self.id, self.name, loads(self.data), loads(self.user), self.ts, self.dedupe_id)


@dataclass(frozen=True, slots=True)
class RunRow:
    id: str
    app_id: str
    function_id: str
    status: str
    event_ids: tuple[str, ...]  # event_ids[0] is SQL's first_event_id
    created_at: int
    parent_run_id: str | None
    skip_reason: str | None
    ended_at: int | None
    finish_timeout_ms: int | None = None
    singleton_key: str | None = None  # set while the run may be active
    output: str | None = None
    error: str | None = None
    attempt: int = 0
    started_at: int | None = None

    def model(self) -> Run:
        return Run(self.id, self.app_id, self.function_id, self.status, list(self.event_ids), loads(self.output),
                   loads(self.error), self.created_at, self.started_at, self.ended_at, self.parent_run_id,
                   self.skip_reason)


@dataclass(frozen=True, slots=True)
class StepRow:
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
class Item:
    id: str
    app_id: str
    kind: str  # run | timeout | cron
    run_id: str | None
    due_at: int
    payload: str | None
    keys: tuple[tuple[str, int], ...] = ()  # concurrency (key, limit): SQL's (ck1, ck1_limit), (ck2, ck2_limit)
    rowid: int = 0  # insertion order, kept by updates, as SQLite's rowid
    version: int = 0  # changes on every write: only the heap entry with the current version is live
    lease_token: str | None = None
    owner: str | None = None
    woken: bool = False

    def entry(self) -> Entry:
        return self.due_at, self.rowid, self.version, self.id


@dataclass(frozen=True, slots=True)
class WaitRow:
    id: str
    run_id: str
    created_at: int
    spec: WaitSpec  # frozen: safe to share with the caller


@dataclass(frozen=True, slots=True)
class Gathering:
    """The debounced or batched run that is still collecting events for a key."""

    run_id: str
    size: int
    first_at: int


class Heap:
    """Heap entries (some dead) with the size past which they are compacted."""

    __slots__ = ("entries", "limit")

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.limit = MIN_HEAP


def _restore(table: dict[Any, Any], key: Any, old: Any) -> None:
    if old is _MISSING:
        table.pop(key, None)
    else:
        table[key] = old


class Tables:
    """Every table of the store, and the journal through which writing calls change them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._journal: list[Callable[[], None]] | None = None  # set while a writing call runs
        self._counter = itertools.count(1)  # item rowids and versions, step seqs; never rolled back
        # functions
        self._meta: dict[str, int] = {"functions_version": 0}
        self._functions: dict[str, dict[str, str]] = {}  # app -> function id -> config text
        # events and idempotency keys
        self._events: dict[str, EventRow] = {}
        self._dedupe: dict[str, int] = {}  # key -> expires_at
        self._dedupe_expiry: list[tuple[int, str]] = []  # heap of (expires_at, key); stale entries skipped
        # runs and their memo
        self._runs: dict[str, RunRow] = {}
        self._run_ids: list[str] = []  # sorted
        self._runs_by_event: dict[str, dict[str, None]] = {}  # every event id of a run -> run ids
        self._singletons: dict[str, dict[str, None]] = {}  # key -> active runs, in insertion order
        self._steps: dict[str, dict[str, StepRow]] = {}  # run -> key -> row
        # flow control
        self._gcra: dict[str, int] = {}  # key -> theoretical arrival time
        self._gathering: dict[str, Gathering] = {}  # debounce or batch key -> its gathering run
        # the queue
        self._items: dict[str, Item] = {}
        self._items_by_run: dict[str, dict[str, None]] = {}
        self._crons: dict[str, dict[str, None]] = {}  # app -> cron item ids
        self._leased: dict[str, None] = {}  # items with a lease and a concurrency key
        self._due: dict[str, Heap] = {}  # app -> its items' heap, but for the parked ones
        self._parked: dict[str, dict[str, Heap]] = {}  # app -> concurrency key -> items set aside under it
        self._touched: set[tuple[str, str | None]] = set()  # (app, parked key or None) pushed or popped
        # waits
        self._waits: dict[str, WaitRow] = {}
        self._waits_by_run: dict[str, dict[str, None]] = {}
        self._waits_by_value: dict[tuple[str, str, str | None], dict[str, None]] = {}
        self._waits_by_expr: dict[str, dict[str, None]] = {}  # event name -> expression waits
        self._wait_fields: dict[str, dict[str, None]] = {}  # event name -> indexed fields (never shrinks)
        # workers
        self._workers: dict[str, WorkerInfo] = {}

    # -- calls ----------------------------------------------------------------------------------

    def _read(self, fn: Callable[[], T]) -> T:
        with self._lock:
            return fn()

    def _write(self, fn: Callable[[], T]) -> T:
        """Run `fn` all-or-nothing: on any exception, undo everything it changed."""
        with self._lock:
            journal: list[Callable[[], None]] = []
            self._journal = journal
            try:
                return fn()
            except BaseException:
                for undo in reversed(journal):
                    undo()
                raise
            finally:
                self._journal = None
                self._settle()

    def _settle(self) -> None:
        """Housekeeping between calls, when no undo can revive what it drops."""

    # -- journaled changes ----------------------------------------------------------------------

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

    def _heap_pop(self, heap: list[Any]) -> Any:
        """Pop a heap's smallest entry. Pushes are not journaled: whatever they point at is rolled
        back with the tables, leaving the entry stale, and every heap reader skips stale entries."""
        entry = heapq.heappop(heap)
        self._record(lambda: heapq.heappush(heap, entry))
        return entry
