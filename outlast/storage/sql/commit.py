"""Commits: an attempt's step rows, waits, events, log lines and outcome, under its lease."""

from __future__ import annotations

import threading
import time
from typing import Any

from outlast.core import jsonutil
from outlast.core.models import Commit, CommitResult, EventRecord, Finish, LogLine, StepWrite, Suspend
from outlast.storage.base import MAX_LOGS_PER_RUN, Planner
from outlast.storage.sql.ingest import ingest
from outlast.storage.sql.run_end import ENDED_COLUMNS, end_run
from outlast.storage.sql.tx import Tx
from outlast.storage.sql.waits import add_wait

_dumps = jsonutil.dumps


def commit(tx: Tx, planner: Planner, c: Commit) -> CommitResult:
    if _is_checkpoint(c):
        return _checkpoint(tx, c)
    if not _hold(tx, c):
        return CommitResult(ok=False, reason="lost")
    for write in c.steps:
        write_step(tx, c.run_id, write)
    for wait in c.waits:
        add_wait(tx, c.run_id, wait, c.now_ms)
    if c.waits:
        tx.run("UPDATE runs SET has_waits = 1 WHERE id = ? AND has_waits = 0", (c.run_id,))
    if c.logs:
        _keep_logs(tx, c.run_id, c.logs)
    events = list(c.events)
    if isinstance(c.outcome, Suspend):
        _suspend(tx, c, c.outcome)
    elif isinstance(c.outcome, Finish):
        events += _finish(tx, c, c.outcome)
    if events:
        ingest(tx, planner, events, c.now_ms)
    return CommitResult(ok=True)


def _hold(tx: Tx, c: Commit) -> bool:
    """The lease check. A finishing commit deletes the run's item with it; others lock the item's row
    so no claim can take it over before this transaction ends (the lease itself is not extended)."""
    if isinstance(c.outcome, Finish):
        return tx.run("DELETE FROM queue WHERE id = ? AND lease_token = ?", (c.item_id, c.lease_token)) == 1
    return tx.one(f"SELECT 1 FROM queue WHERE id = ? AND lease_token = ? {tx.row_lock}",
                  (c.item_id, c.lease_token)) is not None


def _is_checkpoint(c: Commit) -> bool:
    return len(c.steps) == 1 and not (c.waits or c.events or c.logs or c.outcome) and c.steps[0].error is None


def _checkpoint(tx: Tx, c: Commit) -> CommitResult:
    """The hot path, one step's result: the lease check and the memo write in one statement.

    When no row was written, a second look tells a lost lease from a memo row already final.
    """
    w = c.steps[0]
    written = tx.run(_CHECKPOINT_SQL, (*_step_values(c.run_id, w), c.item_id, c.lease_token))
    if written and w.deadline is not None:
        _mark_pending(tx, c.run_id)
    if written or tx.one("SELECT 1 FROM queue WHERE id = ? AND lease_token = ?", (c.item_id, c.lease_token)):
        return CommitResult(ok=True)
    return CommitResult(ok=False, reason="lost")


_STEP_COLUMNS = ("run_id, key, step_id, kind, status, attempts, output, error, started_at, ended_at, deadline,"
                 " timeout_output, detail, seq")
_STEP_UPSERT = (
    " ON CONFLICT (run_id, key) DO UPDATE SET status = excluded.status, attempts = excluded.attempts,"
    " output = excluded.output, error = excluded.error, ended_at = excluded.ended_at,"
    " deadline = excluded.deadline, timeout_output = excluded.timeout_output, detail = excluded.detail"
    " WHERE steps.status NOT IN ('completed', 'failed', 'cancelled')"
)
_CHECKPOINT_SQL = (
    f"INSERT INTO steps ({_STEP_COLUMNS}) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
    " WHERE EXISTS (SELECT 1 FROM queue WHERE id = ? AND lease_token = ?)" + _STEP_UPSERT
)
_STEP_SQL = f"INSERT INTO steps ({_STEP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" + _STEP_UPSERT


def write_step(tx: Tx, run_id: str, w: StepWrite) -> None:
    tx.run(_STEP_SQL, _step_values(run_id, w))
    if w.deadline is not None:
        _mark_pending(tx, run_id)
    if w.error is not None:
        _record_failure(tx, run_id, w.key, w.attempts, w.error, w.started_at, w.ended_at)


def _record_failure(tx: Tx, run_id: str, key: str, attempt: int, error: Any, started: int | None,
                    ended: int | None) -> None:
    tx.run("INSERT INTO step_failures (run_id, step_key, attempt, error, started_at, ended_at)"
           " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", (run_id, key, attempt, _dumps(error), started, ended))


def _mark_pending(tx: Tx, run_id: str) -> None:
    """The run has a step with a deadline: its claims must look for deadlines that passed."""
    tx.run("UPDATE queue SET pending = 1 WHERE run_id = ? AND kind = 'run' AND pending = 0", (run_id,))


def _step_values(run_id: str, w: StepWrite) -> tuple[Any, ...]:
    return (run_id, w.key, w.step_id, w.kind, w.status, w.attempts, _dumps(w.output),
            _dumps(w.error) if w.error is not None else None, w.started_at, w.ended_at, w.deadline,
            _dumps(w.timeout_output), None if w.detail is None else _dumps(w.detail), new_seq())


_last_seq = 0
_seq_lock = threading.Lock()


def new_seq() -> int:
    """Orders a run's steps in the trace by first write: strictly increasing in this process.

    Wall-clock microseconds, so that rows written by different processes interleave in time order.
    """
    global _last_seq
    with _seq_lock:
        _last_seq = max(_last_seq + 1, time.time_ns() // 1000)
        return _last_seq


def _keep_logs(tx: Tx, run_id: str, logs: list[LogLine]) -> None:
    """Keep the run's first MAX_LOGS_PER_RUN lines (a log flood cannot grow a run without bound)."""
    row = tx.one("UPDATE runs SET log_count = log_count + ? WHERE id = ? RETURNING log_count", (len(logs), run_id))
    if row is None:
        return
    first = row[0] - len(logs)
    room = max(0, MAX_LOGS_PER_RUN - first)
    tx.many("INSERT INTO run_logs (run_id, seq, ts, level, message, step_id) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            [(run_id, first + i, line.ts, line.level, line.message, line.step_id)
             for i, line in enumerate(logs[:room])])


def _suspend(tx: Tx, c: Commit, s: Suspend) -> None:
    tx.run("UPDATE queue SET due_at = CASE WHEN woken = 1 THEN ? ELSE ? END, lease_token = NULL, owner = NULL,"
           " woken = 0, crashes = 0, crash_progress = NULL WHERE id = ?", (c.now_ms, s.due_at, c.item_id))
    if s.attempt is not None:
        tx.run("UPDATE runs SET attempt = ? WHERE id = ?", (s.attempt, c.run_id))
        if s.error is not None:
            _record_failure(tx, c.run_id, "", s.attempt, s.error, None, c.now_ms)


def _finish(tx: Tx, c: Commit, f: Finish) -> list[EventRecord]:
    ended = tx.one("UPDATE runs SET status = ?, output = ?, error = ?, ended_at = ? WHERE id = ?"
                   f" AND status IN ('queued', 'running') RETURNING {ENDED_COLUMNS}",
                   (f.status, _dumps(f.output), _dumps(f.error) if f.error else None, c.now_ms, c.run_id))
    if ended is None:
        return []
    return end_run(tx, c.run_id, ended, status=f.status, output=f.output, error=f.error, now=c.now_ms,
                   known_events=f.trigger_events)
