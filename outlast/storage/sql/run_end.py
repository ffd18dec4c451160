"""How a run ends (finished or cancelled): its leftovers go, and its system events are made.

Nothing here ingests: the events a run's end causes are returned to the caller, which ingests
them (so ingest, cancellation and commits have no import cycle, and an event's consequences
are processed as a work list, not by recursion).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from outlast.core import jsonutil
from outlast.core.defers import DeferRow
from outlast.core.models import PENDING_STEP_STATUSES, EventRecord
from outlast.core.system_events import run_ended_events
from outlast.storage.sql.defers import deferred_events
from outlast.storage.sql.read import get_events
from outlast.storage.sql.tx import Tx, marks

ENDED_COLUMNS = "app_id, function_id, event_ids, has_waits, has_timeouts"


def cancel_run(tx: Tx, run_id: str, now: int, reason: str, *, by_event: str | None = None) -> list[EventRecord] | None:
    """Cancel an active run (see `Store.cancel_run`); return the events to ingest, or None if the
    run was not active."""
    error = {"name": "FunctionCancelled", "message": reason}
    ended = tx.one(
        "UPDATE runs SET status = 'cancelled', error = ?, ended_at = ?"
        f" WHERE id = ? AND status IN ('queued', 'running') RETURNING {ENDED_COLUMNS}",
        (jsonutil.dumps(error), now, run_id),
    )
    if ended is None:
        return None
    tx.run("DELETE FROM queue WHERE run_id = ?", (run_id,))
    tx.run(
        f"UPDATE steps SET status = 'cancelled', ended_at = ?, deadline = NULL WHERE run_id = ?"
        f" AND status IN ('retrying', {marks(len(PENDING_STEP_STATUSES))})",
        (now, run_id, *PENDING_STEP_STATUSES),
    )
    if by_event is not None:
        record_effect(tx, by_event, run_id, "cancelled")
    return end_run(tx, run_id, ended, status="cancelled", output=None, error=error, now=now)


def fail_run(tx: Tx, run_id: str, now: int, error: dict[str, Any]) -> list[EventRecord]:
    """Fail an active run from outside its attempts (its item is deleted); return the events to
    ingest, none if the run was not active."""
    ended = tx.one(
        "UPDATE runs SET status = 'failed', error = ?, ended_at = ?"
        f" WHERE id = ? AND status IN ('queued', 'running') RETURNING {ENDED_COLUMNS}",
        (jsonutil.dumps(error), now, run_id),
    )
    if ended is None:
        return []
    tx.run("DELETE FROM queue WHERE run_id = ? AND kind = 'run'", (run_id,))
    return end_run(tx, run_id, ended, status="failed", output=None, error=error, now=now)


def end_run(
    tx: Tx,
    run_id: str,
    run: Any,
    *,
    status: str,
    output: Any,
    error: Any,
    now: int,
    known_events: list[EventRecord] | None = None,
    defers: Sequence[DeferRow] | None = None,
) -> list[EventRecord]:
    """Clear the ended run's timeout items and waits, and return its system events (with the
    `inngest/deferred.schedule` events of its defers, whatever its status, as Inngest's finalizer).

    `run` holds ENDED_COLUMNS; `defers`, the run's defer rows when the caller read them already.
    The run's own item is already gone (cancelled, or deleted by the
    finishing commit's lease check); the flags spare two deletes for runs that never had more.
    """
    app_id, function_id, event_ids, has_waits, has_timeouts = run
    if has_timeouts:
        tx.run("DELETE FROM queue WHERE run_id = ?", (run_id,))
    if has_waits:
        tx.run("DELETE FROM waits WHERE run_id = ?", (run_id,))
        tx.run("DELETE FROM signal_waits WHERE run_id = ?", (run_id,))
    events = known_events if known_events is not None else get_events(tx, jsonutil.loads(event_ids))
    deferred = deferred_events(tx, run_id, app_id=app_id, function_id=function_id, now=now, rows=defers)
    return deferred + run_ended_events(
        app_id=app_id,
        function_id=function_id,
        run_id=run_id,
        trigger_events=[e.to_dict() for e in events],
        status=status,
        output=output,
        error=error,
        now_ms=now,
    )


def record_effect(tx: Tx, event_id: str, run_id: str, effect: str) -> None:
    """Remember that an event resumed or cancelled a run (the dashboard shows both ways)."""
    tx.run(
        "INSERT INTO event_effects (event_id, run_id, effect) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        (event_id, run_id, effect),
    )
