"""Retention and upkeep: pruning finished runs and unreferenced events in small batches, the lease
that lets one process at a time do it, the unused `wait_fields` entries, the queue's shape for
metrics, and whether the schema is current.

What refers to an event: the run it started (`runs.first_event_id`), and the runs it joined,
resumed or cancelled (`event_effects`: every event of a batched or debounced run other than the
first has such a row). A waiting run's expressions read its trigger event through
`first_event_id`, and waits belong to active runs, so "no run refers to it" covers them too.
Events are therefore deleted only once every run that refers to them is gone.
"""

from __future__ import annotations

from outlast.core import jsonutil
from outlast.core.ids import ulid_floor
from outlast.core.models import FINAL_STATUSES
from outlast.core.upkeep import PruneResult, QueueStat, QueueStats
from outlast.storage.sql.lookback import prune_values
from outlast.storage.sql.migrations import MIGRATIONS
from outlast.storage.sql.signals import prune_signals
from outlast.storage.sql.tx import Tx, marks

#: rows that belong to a run and go with it (each has an index leading with its run id)
RUN_ROWS = ("steps", "step_failures", "run_logs", "event_effects")
_FINAL = marks(len(FINAL_STATUSES))


def take_chore(tx: Tx, name: str, owner: str, now: int, lease_ms: int) -> bool:
    """Take or renew the lease on a chore; False while another owner's lease runs."""
    return (
        tx.run(
            "UPDATE chores SET owner = ?, lease_until = ? WHERE name = ?"
            " AND (owner IS NULL OR owner = ? OR lease_until <= ?)",
            (owner, now + lease_ms, name, owner, now),
        )
        == 1
    )


def prune(tx: Tx, before: int, now: int, limit: int) -> PruneResult:
    """One batch: up to `limit` finished runs that ended before `before` with their rows and their
    trigger events, up to `limit` other events received before it that nothing refers to, up to
    `limit` expired dedupe keys, and stale flow-control keys (`_prune_flow_state`), expired held
    signals, signal waits and lookback's indexed values of events older than 7 days counted with them."""
    runs, steps, triggers = _prune_runs(tx, before, limit)
    events, more = _prune_events(tx, before, limit)
    return PruneResult(
        runs=runs,
        steps=steps,
        events=triggers + events,
        dedupe_keys=_prune_dedupe(tx, now, limit),
        flow_keys=_prune_flow_state(tx, before, limit) + prune_signals(tx, now, limit) + prune_values(tx, now, limit),
        more=more or runs == limit,
    )


def _prune_runs(tx: Tx, before: int, limit: int) -> tuple[int, int, int]:
    """Delete a batch of finished runs with their rows, then their trigger events that nothing else
    refers to (so an event the cursor passed while its run was still kept is not left behind);
    return (runs, steps, events) deleted."""
    rows = tx.all(
        f"SELECT id, event_ids FROM runs WHERE ended_at < ? AND status IN ({_FINAL})"
        f" ORDER BY ended_at, id LIMIT ? {tx.lock_suffix}",
        (before, *FINAL_STATUSES, limit),
    )
    if not rows:
        return 0, 0, 0
    ids = [r[0] for r in rows]
    these = f"run_id IN ({marks(len(ids))})"
    steps = tx.run(f"DELETE FROM steps WHERE {these}", ids)
    for table in RUN_ROWS[1:]:
        tx.run(f"DELETE FROM {table} WHERE {these}", ids)
    runs = tx.run(f"DELETE FROM runs WHERE id IN ({marks(len(ids))}) AND status IN ({_FINAL})", (*ids, *FINAL_STATUSES))
    triggers = sorted({e for r in rows for e in jsonutil.loads(r[1])})
    return runs, steps, _delete_unreferenced(tx, [e for e in triggers if e < ulid_floor(before)])


def _delete_unreferenced(tx: Tx, event_ids: list[str]) -> int:
    if not event_ids:
        return 0
    return tx.run(
        f"DELETE FROM events WHERE id IN ({marks(len(event_ids))})"
        " AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.first_event_id = events.id)"
        " AND NOT EXISTS (SELECT 1 FROM event_effects x WHERE x.event_id = events.id)",
        event_ids,
    )


def _prune_events(tx: Tx, before: int, limit: int) -> tuple[int, bool]:
    """Examine the next `limit` events (by id, from the chore's cursor) received before `before`;
    delete those no run refers to. Events still referred to are skipped, and met again once the
    cursor wraps around, so long-lived runs' events do not slow every batch down."""
    row = tx.one(f"SELECT cursor FROM chores WHERE name = 'retention' {tx.row_lock}")
    cursor = row[0] if row else ""
    ids = [
        r[0]
        for r in tx.all(
            "SELECT id FROM events WHERE id > ? AND id < ? ORDER BY id LIMIT ?", (cursor, ulid_floor(before), limit)
        )
    ]
    more = len(ids) == limit
    tx.run("UPDATE chores SET cursor = ? WHERE name = 'retention'", (ids[-1] if more else "",))
    return _delete_unreferenced(tx, ids), more


def _prune_dedupe(tx: Tx, now: int, limit: int) -> int:
    """Dedupe and idempotency keys whose 24 h are over (ingest also drops a few as it goes)."""
    return tx.run(
        "DELETE FROM dedupe WHERE key IN (SELECT key FROM dedupe WHERE expires_at <= ?"
        " ORDER BY expires_at, key LIMIT ?)",
        (now, limit),
    )


def _prune_flow_state(tx: Tx, before: int, limit: int) -> int:
    """Flow-control state that no longer does anything: rate-limit and throttle keys whose TAT
    passed before `before` (such a key admits as if it had no row), and gatherings older than it
    whose run is no longer waiting for events (the next event of their key starts a new one).
    Rows another transaction holds are left for the next batch."""
    gcra = tx.run(
        f"DELETE FROM gcra WHERE key IN (SELECT key FROM gcra WHERE tat < ? LIMIT ? {tx.lock_suffix})", (before, limit)
    )
    return gcra + tx.run(
        "DELETE FROM gathering WHERE key IN (SELECT g.key FROM gathering g WHERE g.first_at < ? AND NOT EXISTS"
        " (SELECT 1 FROM runs r WHERE r.id = g.run_id AND r.status = 'queued')"
        f" LIMIT ? {tx.lock_suffix})",
        (before, limit),
    )


def shrink_wait_fields(tx: Tx, lock: tuple[str, ...] = ()) -> int:
    """Forget the `wait_fields` entries no stored wait needs any more (an event of that name then
    skips its lookup). `lock` (PostgreSQL) first waits out every transaction that is adding a wait,
    so the check below sees their waits: a wait stored just now keeps its entry."""
    for statement in lock:
        tx.run(statement)
    return tx.run(
        "DELETE FROM wait_fields WHERE NOT EXISTS (SELECT 1 FROM waits w"
        " WHERE w.event_name = wait_fields.event_name AND (w.match_field = wait_fields.match_field"
        " OR (w.match_field IS NULL AND wait_fields.match_field = '')))"
    )


def queue_stats(tx: Tx, now: int) -> QueueStats:
    rows = tx.all(
        "SELECT app_id, COALESCE(function_id, ''),"
        " SUM(CASE WHEN due_at <= ? THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN due_at > ? AND lease_token IS NOT NULL THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN due_at > ? AND lease_token IS NULL THEN 1 ELSE 0 END),"
        " MIN(CASE WHEN due_at <= ? THEN due_at END)"
        " FROM queue GROUP BY app_id, COALESCE(function_id, '') ORDER BY 1, 2",
        (now, now, now, now),
    )
    waits = {kind: int(n) for kind, n in tx.all("SELECT kind, COUNT(*) FROM waits GROUP BY kind ORDER BY kind")}
    return QueueStats(
        functions=[
            QueueStat(
                app_id=r[0],
                function_id=r[1],
                due=int(r[2]),
                leased=int(r[3]),
                scheduled=int(r[4]),
                oldest_due_at=None if r[5] is None else int(r[5]),
            )
            for r in rows
        ],
        waits=waits,
    )


def schema_problem(tx: Tx) -> str | None:
    """Why the schema is not the one this version needs (migrations not applied), or None."""
    done = {r[0] for r in tx.all("SELECT version FROM schema_migrations")}
    missing = sorted(v for v, _ in MIGRATIONS if v not in done)
    return f"migrations not applied: {missing}" if missing else None
