"""Ingest: store events and everything they cause, in the caller's transaction.

An event's consequences (waits it resolves, runs it cancels or starts, and the system events
those cause in turn) are processed as a work list, oldest first, within one transaction.
"""

from __future__ import annotations

from outlast.core import jsonutil
from outlast.core.models import EventRecord, RunPlan
from outlast.storage.base import Planner
from outlast.storage.sql import flow
from outlast.storage.sql.queue_items import enqueue
from outlast.storage.sql.tx import Tx
from outlast.storage.sql.waits import add_wait, resolve_waits

DEDUPE_MS = 24 * 3_600_000


def ingest(tx: Tx, planner: Planner, events: list[EventRecord], now: int) -> list[str]:
    work = list(events)
    for event in work:  # grows while we go: the events each event causes
        if not _insert_event(tx, event, now):
            continue  # already stored: this is a retried ingest
        if event.dedupe_id and not claim_key(tx, f"event:{event.dedupe_id}", now):
            continue
        work += resolve_waits(tx, planner, event, now)
        for plan in planner.plan(event, now):
            work += create_run(tx, plan, now)
    return [e.id for e in events]


def _insert_event(tx: Tx, e: EventRecord, now: int) -> bool:
    return tx.run(
        "INSERT INTO events (id, name, data, user_data, ts, dedupe_id, received_at, trace)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        (e.id, e.name, jsonutil.dumps(e.data), jsonutil.dumps(e.user), e.ts, e.dedupe_id, now,
         None if e.trace is None else jsonutil.dumps(e.trace))) == 1


def claim_key(tx: Tx, key: str, now: int) -> bool:
    """Take an idempotency key for 24 h; False when it is already taken.

    Each call also drops a few expired keys, so the table stays about one day's worth.
    """
    tx.run("DELETE FROM dedupe WHERE key IN (SELECT key FROM dedupe WHERE expires_at <= ? ORDER BY expires_at, key"
           " LIMIT 8)", (now,))
    tx.run("DELETE FROM dedupe WHERE key = ? AND expires_at <= ?", (key, now))
    return tx.run("INSERT INTO dedupe (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                  (key, now + DEDUPE_MS)) == 1


def create_run(tx: Tx, plan: RunPlan, now: int) -> list[EventRecord]:
    """Apply the plan's flow control, then insert the run, its item and its cancel waits.

    Returns the events this causes (a singleton in cancel mode ends the run it replaces).
    """
    follow_ups: list[EventRecord] = []
    if plan.rate_limit and not flow.rate_admitted(tx, plan.rate_limit, now):
        _insert_run(tx, plan, now, skip="rate_limit")
    elif plan.idempotency_key is not None and not claim_key(tx, f"run:{plan.idempotency_key}", now):
        _insert_run(tx, plan, now, skip="idempotency")
    elif plan.singleton and not flow.singleton_admitted(tx, plan, now, follow_ups):
        _insert_run(tx, plan, now, skip="singleton")
    elif not ((plan.debounce or plan.batch) and flow.gathered(tx, plan, now)):
        _start(tx, plan, now)
    return follow_ups


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
    _insert_run(tx, plan, now)
    enqueue(tx, app_id=plan.app_id, function_id=plan.function_id, kind="run", run_id=plan.run_id, due=due,
            concurrency=plan.concurrency)
    for wait in plan.cancel_waits:
        add_wait(tx, plan.run_id, wait, now)
    if plan.start_deadline is not None:
        enqueue(tx, app_id=plan.app_id, function_id=plan.function_id, kind="timeout", run_id=plan.run_id,
                due=plan.start_deadline, payload={"type": "start"})


def _insert_run(tx: Tx, plan: RunPlan, now: int, skip: str | None = None) -> None:
    tx.run(
        "INSERT INTO runs (id, app_id, function_id, status, event_ids, first_event_id, created_at,"
        " parent_run_id, skip_reason, ended_at, finish_timeout_ms, singleton_key, has_waits, has_timeouts)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (plan.run_id, plan.app_id, plan.function_id, "skipped" if skip else "queued", jsonutil.dumps(plan.event_ids),
         plan.event_ids[0], plan.created_at, plan.parent_run_id, skip, now if skip else None,
         plan.finish_timeout_ms, plan.singleton[0] if plan.singleton and not skip else None,
         int(bool(plan.cancel_waits)), int(plan.start_deadline is not None or bool(plan.finish_timeout_ms))))
