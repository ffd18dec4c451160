"""Flow control applied when a run is created: rate limits and throttles (GCRA), singleton, and the
gathering of events into a debounced or batched run."""

from __future__ import annotations

from outlast.core import flow, jsonutil
from outlast.core.models import EventRecord, RunPlan
from outlast.storage.sql.run_end import cancel_run, record_effect
from outlast.storage.sql.tx import Tx


def _gcra_tat(tx: Tx, key: str) -> int | None:
    """The key's TAT, its row locked: created (TAT 0, the same as none) or locked by one upsert, so
    concurrent transactions queue on the row instead of each seeing none, even when retention
    deletes a stale row meanwhile (an upsert is atomic; a read after an insert was not)."""
    row = tx.one(
        "INSERT INTO gcra (key, tat) VALUES (?, 0) ON CONFLICT (key) DO UPDATE SET tat = gcra.tat RETURNING tat", (key,)
    )
    return None if row is None else int(row[0])


def _set_tat(tx: Tx, key: str, tat: int) -> None:
    tx.run("UPDATE gcra SET tat = ? WHERE key = ?", (tat, key))


def rate_admitted(tx: Tx, rule: tuple[str, int, int], now: int) -> bool:
    key, limit, period = rule
    admitted, tat = flow.rate_limit(_gcra_tat(tx, key), now, limit, period)
    if admitted:
        _set_tat(tx, key, tat)
    return admitted


def throttled_start(tx: Tx, rule: tuple[str, int, int, int], now: int) -> int:
    key, limit, period, burst = rule
    start, tat = flow.throttle(_gcra_tat(tx, key), now, limit, period, burst)
    _set_tat(tx, key, tat)
    return start


def singleton_admitted(tx: Tx, plan: RunPlan, now: int, follow_ups: list[EventRecord]) -> bool:
    """Skip mode: False while a run with the key is active. Cancel mode: cancel those runs, True."""
    assert plan.singleton is not None
    key, mode = plan.singleton
    active = [
        r[0]
        for r in tx.all(
            "SELECT id FROM runs WHERE singleton_key = ? AND status IN ('queued', 'running') ORDER BY id", (key,)
        )
    ]
    if active and mode == "skip":
        return False
    for run_id in active:
        follow_ups += cancel_run(tx, run_id, now, "replaced by a newer run (singleton)") or []
    return True


def gathered(tx: Tx, plan: RunPlan, now: int) -> bool:
    """Add the event to a debounced or batched run that has not started yet, if there is one."""
    key = (plan.debounce or plan.batch or ("",))[0]
    # Create or lock in one upsert, so that concurrent events for one key queue on the same row.
    run_id, first_at = tx.one(
        "INSERT INTO gathering (key, run_id, size, first_at) VALUES (?, '', 0, ?)"
        " ON CONFLICT (key) DO UPDATE SET size = gathering.size RETURNING run_id, first_at",
        (key, now),
    ) or ("", now)
    row = (
        tx.one(
            "SELECT q.id, r.event_ids FROM runs r JOIN queue q ON q.run_id = r.id AND q.kind = 'run'"
            " AND q.lease_token IS NULL WHERE r.id = ? AND r.status = 'queued'",
            (run_id,),
        )
        if run_id
        else None
    )
    if row is None:
        return False
    item_id, event_ids = row
    record_effect(tx, plan.event_ids[0], run_id, "started")
    if plan.debounce:
        record_effect(tx, jsonutil.loads(event_ids)[0], run_id, "started")  # the event it replaces
        _, period, timeout = plan.debounce
        due = now + period if timeout is None else min(now + period, first_at + timeout)
        tx.run(
            "UPDATE runs SET event_ids = ?, first_event_id = ? WHERE id = ?",
            (jsonutil.dumps(plan.event_ids), plan.event_ids[0], run_id),
        )
        tx.run("UPDATE queue SET due_at = ? WHERE id = ?", (due, item_id))
        return True
    assert plan.batch is not None
    events = jsonutil.loads(event_ids) + plan.event_ids
    tx.run("UPDATE runs SET event_ids = ? WHERE id = ?", (jsonutil.dumps(events), run_id))
    if len(events) >= plan.batch[1]:
        tx.run("DELETE FROM gathering WHERE key = ?", (key,))
        tx.run("UPDATE queue SET due_at = ? WHERE id = ?", (now, item_id))
    else:
        tx.run("UPDATE gathering SET size = ? WHERE key = ?", (len(events), key))
    return True


def start_gathering(tx: Tx, key: str, run_id: str, now: int) -> None:
    tx.run(
        "INSERT INTO gathering (key, run_id, size, first_at) VALUES (?, ?, 1, ?) ON CONFLICT (key) DO UPDATE"
        " SET run_id = excluded.run_id, size = 1, first_at = excluded.first_at",
        (key, run_id, now),
    )
