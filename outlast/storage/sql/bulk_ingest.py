"""The common case of a large ingest, stored a few statements per table instead of several per event.

`ingest` uses a `Batch` for a list of `BULK_MIN` events or more. The batch stores every event of
the list and claims their dedupe ids first (`admit`); then, event by event, oldest first, it takes
the runs of an event whose consequences are only new rows (`add`): no wait is stored for the
event's name, so it resolves and cancels nothing, and no run it starts needs flow-control state
of the database besides an idempotency key (no rate limit, throttle, singleton, debounce or
batch). Any other event is processed the ordinary way, after the runs taken so far are stored
(`flush`), so every effect happens in the same order as when events are processed one by one.
"""

from __future__ import annotations

from outlast.core.ids import new_ulids
from outlast.core.models import EventRecord, RunPlan
from outlast.storage.sql.dedupe import claim_keys
from outlast.storage.sql.rows import EVENTS, RUNS, Row, Table, event_row, run_row, start_rows, wait_field
from outlast.storage.sql.tx import Tx
from outlast.storage.sql.waits import add_wait_field, waited_for

#: lists shorter than this are ingested one event at a time (a batch's set-up costs a few statements)
BULK_MIN = 32


class Batch:
    """The runs taken from the events of one ingest, not stored yet."""

    def __init__(self, tx: Tx, now: int, *, fresh: bool = False) -> None:
        self.tx, self.now = tx, now
        #: the events have ids made in this transaction (`ingest`'s `fresh`): none is stored yet
        self.fresh = fresh
        self.plans: list[RunPlan] = []
        #: per event name: whether a wait may be stored for it (read once, then kept up to date)
        self._waited: dict[str, bool] = {}

    def admit(self, events: list[EventRecord]) -> set[str]:
        """Store the events not stored yet (a retried ingest finds them stored) and claim their
        dedupe ids (the first event with an id takes it); return the ids of the events to process."""
        seen = set() if self.fresh else self.tx.stored("events", "id", [e.id for e in events])
        new = []
        for e in events:
            if e.id not in seen:
                seen.add(e.id)
                new.append(e)
        self.tx.insert_many(EVENTS.name, EVENTS.columns, [event_row(e, self.now) for e in new])
        keys: dict[str, str] = {}  # dedupe key: the first new event with it
        for e in new:
            if e.dedupe_id:
                keys.setdefault(f"event:{e.dedupe_id}", e.id)
        claimed = claim_keys(self.tx, list(keys), self.now)
        return {e.id for e in new if not e.dedupe_id} | {keys[k] for k in claimed}

    def waited(self, event_name: str) -> bool:
        """Whether an event of this name may resolve a wait (it must then be processed alone)."""
        if (known := self._waited.get(event_name)) is None:
            known = self._waited[event_name] = waited_for(self.tx, event_name)
        return known

    def note(self, plans: list[RunPlan]) -> None:
        """The runs of an event processed alone: their cancel waits make their events' names waited."""
        for plan in plans:
            for wait in plan.cancel_waits:
                self._waited[wait.event_name] = True

    def add(self, plans: list[RunPlan]) -> bool:
        """Take the runs an event starts, if none needs flow control stored in the database."""
        if not all(_plain(plan) for plan in plans):
            return False
        self.note(plans)
        self.plans += plans
        return True

    def flush(self) -> None:
        """Store the runs taken so far: skipped when their idempotency key was taken, else queued."""
        if not self.plans:
            return
        plans, self.plans = self.plans, []
        keyed = [f"run:{p.idempotency_key}" for p in plans if p.idempotency_key is not None]
        claimed = claim_keys(self.tx, keyed, self.now) if keyed else set()
        rows: dict[Table, list[Row]] = {RUNS: []}
        fields: set[tuple[str, str]] = set()
        item_ids = new_ulids(len(plans), self.now)
        for plan, item_id in zip(plans, item_ids, strict=True):
            key = None if plan.idempotency_key is None else f"run:{plan.idempotency_key}"
            if key is not None and key not in claimed:
                rows[RUNS].append(run_row(plan, self.now, skip="idempotency"))
                continue
            claimed.discard(key or "")  # taken by this run: later runs with the key are skipped
            rows[RUNS].append(run_row(plan, self.now))
            for table, row in start_rows(plan, plan.due_at, self.now, item_id):
                rows.setdefault(table, []).append(row)
            fields.update(wait_field(w) for w in plan.cancel_waits)
        for table, table_rows in rows.items():
            self.tx.insert_many(table.name, table.columns, table_rows)
        for event_name, match_field in sorted(fields):
            add_wait_field(self.tx, event_name, match_field)


def _plain(plan: RunPlan) -> bool:
    return not (plan.rate_limit or plan.throttle or plan.singleton or plan.debounce or plan.batch)
