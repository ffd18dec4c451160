"""Ingest: store events and everything they cause, in the caller's transaction.

An event's consequences (waits it resolves, runs it cancels or starts, and the system events
those cause in turn) are processed as a work list, oldest first, within one transaction.
"""

from __future__ import annotations

import contextlib
from typing import Any

from outlast.core.collector import GC_PAUSE_MIN, gc_paused
from outlast.core.events import start_time
from outlast.core.models import EventRecord, RunPlan
from outlast.storage.base import Planner
from outlast.storage.sql import flow
from outlast.storage.sql.bulk_ingest import BULK_MIN, Batch
from outlast.storage.sql.dedupe import claim_key
from outlast.storage.sql.lookback import index_values
from outlast.storage.sql.pausing import paused_functions
from outlast.storage.sql.rows import EVENTS, RUNS, event_row, insert_rows, run_row, start_rows, wait_field
from outlast.storage.sql.tx import Tx, marks
from outlast.storage.sql.waits import add_wait_field, resolve_waits


def ingest(
    tx: Tx, planner: Planner, events: list[EventRecord], now: int, *, bulk: bool | None = None, fresh: bool = False
) -> list[str]:
    """Store the events and their consequences; a long list (or any, with `bulk`) takes a `Batch`
    for its common cases. `fresh`: the events were made in this transaction with new ids (a run's
    system events), so none can be stored already and a batch need not look."""
    if not (len(events) >= BULK_MIN if bulk is None else bulk):
        return _ingest(tx, planner, events, now, None)
    with gc_paused() if len(events) >= GC_PAUSE_MIN else contextlib.nullcontext():
        return _ingest(tx, planner, events, now, Batch(tx, now, fresh=fresh))


def _ingest(tx: Tx, planner: Planner, events: list[EventRecord], now: int, batch: Batch | None) -> list[str]:
    first_stored = None
    if len(names := {e.name for e in events}) <= PREFETCH_MAX:
        first_stored = prefetch(tx, names, store=events[0] if batch is None else None, now=now)
    admitted = batch.admit(events) if batch is not None else None
    work = list(events)
    for i, event in enumerate(work):  # grows while we go: the events each event causes
        if admitted is not None and i < len(events):
            if event.id not in admitted:
                continue  # stored before, or its dedupe id was taken
        elif not _admit(tx, event, now, stored=first_stored if i == 0 else None):
            continue
        index_values(tx, event)
        plans = None
        start = start_time(event, now)  # a delayed start: its runs are planned, queued and admitted as of then
        if batch is not None:
            if not batch.waited(event.name) and start == now:
                plans = planner.plan(event, now)  # it resolves no wait: planning first changes nothing
                if not _any_paused(tx, plans) and batch.add(plans):
                    continue
            batch.flush()
        work += resolve_waits(tx, planner, event, now)
        plans = planner.plan(event, start) if plans is None else plans
        if batch is not None:
            batch.note(plans)
        for plan in plans:
            work += create_run(tx, plan, start)
    if batch is not None:
        batch.flush()
    return [e.id for e in events]


#: up to this many event names (however many events: a group's run ends ingest dozens of one
#: name), what ingest reads per event name is read in one statement (`prefetch`)
PREFETCH_MAX = 16


def prefetch(tx: Tx, names: set[str], *, store: EventRecord | None = None, now: int = 0) -> bool | None:
    """Read, in one round trip, what ingest reads for these event names (their lookback and wait
    fields) and the paused functions, into the transaction's memo where `lookback`, `waits` and
    `pausing` look first: three statements fewer for a send on PostgreSQL.

    `store`: on PostgreSQL, an event to store in the same statement (as `_admit` does; the tables
    it reads are not the one it writes): whether it was stored, or None if it was not tried."""
    if not (ordered := unfetched(tx, names)):
        return None
    sql, params = prefetch_query(ordered)
    if store is None or tx.dialect != "postgresql":
        remember(tx, ordered, tx.all(sql, params))
        return None
    rows = tx.all(_STORE_AND_PREFETCH.format(prefetch=sql), (*event_row(store, now), *params))
    remember(tx, ordered, [r for r in rows if r[0] != "s"])
    return any(r[0] == "s" for r in rows)


#: PostgreSQL: an event stored (a row 's' if it was) and `prefetch_query`'s rows, in one statement
_STORE_AND_PREFETCH = (
    f"WITH stored AS ({EVENTS.insert_sql} ON CONFLICT (id) DO NOTHING RETURNING id)"
    " SELECT 's', NULL, NULL FROM stored UNION ALL {prefetch}"
)


def unfetched(tx: Tx, names: set[str]) -> list[str]:
    """The names whose fields the transaction has not read yet, sorted."""
    return sorted(n for n in names if ("wait_fields", n) not in tx.memo or ("lookback_fields", n) not in tx.memo)


def prefetch_query(ordered: list[str]) -> tuple[str, tuple[str, ...]]:
    """`prefetch`'s query (rows of kind, name or app, field or function), for a statement that
    reads it with others (`commit` ends a run with it)."""
    return (
        f"SELECT 'l', event_name, field FROM lookback_fields WHERE event_name IN ({marks(len(ordered))})"
        f" UNION ALL SELECT 'w', event_name, match_field FROM wait_fields WHERE event_name IN ({marks(len(ordered))})"
        " UNION ALL SELECT 'p', app_id, function_id FROM paused_functions",
        (*ordered, *ordered),
    )


def remember(tx: Tx, ordered: list[str], rows: list[Any]) -> None:
    """Keep what `prefetch_query` read in the transaction's memo."""
    found: dict[Any, list[Any]] = {("lookback_fields", n): [] for n in ordered}
    found.update({("wait_fields", n): [] for n in ordered})
    found["paused_functions"] = []
    for kind, a, b in rows:
        if kind == "p":
            found["paused_functions"].append((a, b))
        else:
            found[("lookback_fields" if kind == "l" else "wait_fields", a)].append(b)
    for key, values in found.items():
        tx.memo.setdefault(key, sorted(values))


def _admit(tx: Tx, event: EventRecord, now: int, *, stored: bool | None = None) -> bool:
    """Store the event; False when it was stored before (a retried ingest) or its dedupe id is
    taken. `stored`: whether `prefetch` stored it already (None: it did not try)."""
    if stored is None:
        stored = tx.run(EVENTS.insert_sql + " ON CONFLICT (id) DO NOTHING", event_row(event, now)) == 1
    return stored and (not event.dedupe_id or claim_key(tx, f"event:{event.dedupe_id}", now))


def create_run(tx: Tx, plan: RunPlan, now: int) -> list[EventRecord]:
    """Apply the plan's flow control, then insert the run, its item and its cancel waits.

    Returns the events this causes (a singleton in cancel mode ends the run it replaces).
    """
    follow_ups: list[EventRecord] = []
    if _any_paused(tx, [plan]):
        _insert_run(tx, plan, now, skip="paused")
    elif plan.rate_limit and not flow.rate_admitted(tx, plan.rate_limit, now):
        _insert_run(tx, plan, now, skip="rate_limit")
    elif plan.idempotency_key is not None and not claim_key(tx, f"run:{plan.idempotency_key}", now):
        _insert_run(tx, plan, now, skip="idempotency")
    elif plan.singleton and not flow.singleton_admitted(tx, plan, now, follow_ups):
        _insert_run(tx, plan, now, skip="singleton")
    elif not ((plan.debounce or plan.batch) and flow.gathered(tx, plan, now)):
        _start(tx, plan, now)
    return follow_ups


def _any_paused(tx: Tx, plans: list[RunPlan]) -> bool:
    if not plans:
        return False
    paused = paused_functions(tx)
    return bool(paused) and any((p.app_id, p.function_id) in paused for p in plans)


def _start(tx: Tx, plan: RunPlan, now: int) -> None:
    due = plan.due_at
    if plan.debounce:
        due = now + plan.debounce[1]
        flow.start_gathering(tx, plan.debounce[0], plan.run_id, now)
    elif plan.batch:
        due = now + plan.batch[2]
        flow.start_gathering(tx, plan.batch[0], plan.run_id, now)
    if plan.throttle:
        due = max(due, flow.throttled_start(tx, plan.throttle, now))
    insert_rows(tx, [(RUNS, run_row(plan, now, None)), *start_rows(plan, due, now)])
    for wait in plan.cancel_waits:
        add_wait_field(tx, *wait_field(wait))


def _insert_run(tx: Tx, plan: RunPlan, now: int, skip: str | None = None) -> None:
    tx.run(RUNS.insert_sql, run_row(plan, now, skip))
