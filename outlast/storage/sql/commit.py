"""Commits: an attempt's step rows, waits, events, log lines and outcome, under its lease."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from outlast.core import jsonutil
from outlast.core.defers import DEFERRED_SCHEDULE
from outlast.core.events import FUNCTION_FAILED, FUNCTION_FINISHED
from outlast.core.models import Commit, CommitResult, EventRecord, Finish, LogLine, StepWrite, Suspend
from outlast.storage.base import MAX_LOGS_PER_RUN, Planner
from outlast.storage.sql.defers import ROWS_SQL, defer_row, defer_rows
from outlast.storage.sql.ingest import ingest, prefetch_query, remember, unfetched
from outlast.storage.sql.realtime import insert_messages
from outlast.storage.sql.run_end import ENDED_COLUMNS, end_run
from outlast.storage.sql.signals import add_signal_wait
from outlast.storage.sql.tx import Tx
from outlast.storage.sql.waits import add_wait

_dumps = jsonutil.dumps


def commit(tx: Tx, planner: Planner, c: Commit) -> CommitResult:
    if is_checkpoint(c):
        return checkpoint(tx, c)
    if tx.dialect == "postgresql" and not c.steps and is_plain_finish(c):
        return _end_at_once(tx, planner, c)
    if not _hold(tx, c):
        return CommitResult(ok=False, reason="lost")
    if c.messages:
        insert_messages(tx, c.messages)
    for write in c.steps:
        write_step(tx, c.run_id, write, c.now_ms)
    for wait in c.waits:
        add_wait(tx, c.run_id, wait, c.now_ms, planner)
    for signal_wait in c.signal_waits:
        add_signal_wait(tx, c.run_id, signal_wait, c.now_ms)
    if c.waits or c.signal_waits:
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
    return (
        tx.one(f"SELECT 1 FROM queue WHERE id = ? AND lease_token = ? {tx.row_lock}", (c.item_id, c.lease_token))
        is not None
    )


def is_checkpoint(c: Commit) -> bool:
    """Step results (one, or a local attempt's deferred few, none with a deadline but the first)
    and the messages a publish step sends, nothing else: the hot path, which group commit may batch."""
    extras = c.waits or c.signal_waits or c.events or c.logs or c.outcome
    return (
        bool(c.steps)
        and not extras
        and all(w.error is None for w in c.steps)
        and all(w.deadline is None for w in c.steps[1:])
    )


def checkpoint(tx: Tx, c: Commit) -> CommitResult:
    """The lease check and the memo write in one statement (a statement per step)."""
    written = [
        tx.run(_CHECKPOINT_SQL, (*_step_values(c.run_id, w, c.now_ms), c.item_id, c.lease_token)) for w in c.steps
    ]
    return _checkpointed(tx, c, all(written))


def checkpoints(tx: Tx, commits: Sequence[Commit]) -> list[CommitResult]:
    """Checkpoints of different runs, each under its own lease, in one statement (as many as
    `checkpoint` would run one by one: the same rows, the same outcome for each commit).

    The runs must differ: one statement may not write the same row twice.
    """
    rows = [(*_step_values(c.run_id, w, c.now_ms), c.item_id, c.lease_token) for c in commits for w in c.steps]
    written: set[tuple[str, str]] = set()
    for table, params in tx.tables(rows, _CHECKPOINT_TYPES):
        written.update(tx.all(_CHECKPOINTS_SQL.format(table=table), params))
    done = {c.run_id for c in commits if all((c.run_id, w.key) in written for w in c.steps)}
    results = [_checkpointed(tx, c, c.run_id in done, publish=False) for c in commits]
    insert_messages(tx, [m for c in commits if c.run_id in done for m in c.messages])
    return results


def is_plain_finish(c: Commit) -> bool:
    """The end of a run, with at most the results of steps that finished at once (a local
    attempt's deferred checkpoints), and nothing else: the common last commit, which group
    commit may batch."""
    return (
        isinstance(c.outcome, Finish)
        and not (c.waits or c.signal_waits or c.events or c.logs or c.messages)
        and all(w.error is None and w.deadline is None for w in c.steps)
    )


def finishes(tx: Tx, planner: Planner, commits: Sequence[Commit]) -> list[CommitResult]:
    """Plain finishes of different runs, each under its own lease, in a few statements: their items
    deleted in one, their steps written in another, their runs ended in a third, their system
    events ingested together (received at the latest of the commits' times). The same rows and
    outcomes as `commit` for each, one by one."""
    held: set[str] = set()
    for table, params in tx.tables([(c.item_id, c.lease_token) for c in commits], ("text", "text")):
        held.update(item_id for (item_id,) in tx.all(_END_ITEMS_SQL.format(table=table), params))
    ending = [c for c in commits if c.item_id in held]
    if steps := [_step_values(c.run_id, w, c.now_ms) for c in ending for w in c.steps]:
        tx.many(_STEP_SQL, steps)  # before the runs end, as `commit` writes them
    ended: dict[str, Any] = {}
    for table, params in tx.tables([(c.run_id, *_ended_values(c, _finish_of(c))) for c in ending], _END_TYPES):
        ended.update((row[0], row[1:]) for row in tx.all(_END_RUNS_SQL.format(table=table), params))
    events: list[EventRecord] = []
    defers = defer_rows(tx, list(ended)) if ended else {}
    for c in ending:
        if (run := ended.get(c.run_id)) is not None:
            f = _finish_of(c)
            events += end_run(
                tx,
                c.run_id,
                run,
                status=f.status,
                output=f.output,
                error=f.event_error or f.error,
                now=c.now_ms,
                known_events=f.trigger_events,
                defers=defers.get(c.run_id, []),
            )
    if events:
        ingest(tx, planner, events, max(c.now_ms for c in ending), bulk=True, fresh=True)
    return [CommitResult(ok=True) if c.item_id in held else CommitResult(ok=False, reason="lost") for c in commits]


def _finish_of(c: Commit) -> Finish:
    assert isinstance(c.outcome, Finish)
    return c.outcome


def _checkpointed(tx: Tx, c: Commit, written: bool, *, publish: bool = True) -> CommitResult:
    """When no row was written, a second look tells a lost lease from a memo row already final.
    A publish step's messages go with its memo row, and only then (the step's one sending);
    `checkpoints` publishes its commits' messages together instead."""
    if written and c.steps[0].deadline is not None:
        _mark_pending(tx, c.run_id)
    if publish and written and c.messages:
        insert_messages(tx, c.messages)
    if written or tx.one("SELECT 1 FROM queue WHERE id = ? AND lease_token = ?", (c.item_id, c.lease_token)):
        return CommitResult(ok=True)
    return CommitResult(ok=False, reason="lost")


_STEP_COLUMNS = (
    "run_id, key, step_id, kind, status, attempts, output, error, started_at, ended_at, deadline,"
    " timeout_output, detail, seq"
)
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
#: the columns of `_CHECKPOINTS_SQL`'s rows: a step row's (`_STEP_COLUMNS`), its item's id and lease token
_CHECKPOINT_TYPES = (
    "text",
    "text",
    "text",
    "text",
    "text",
    "integer",
    "text",
    "text",
    "bigint",
    "bigint",
    "bigint",
    "text",
    "text",
    "bigint",
    "text",
    "text",
)
_CHECKPOINTS_SQL = (
    (
        "WITH v (run_id, key, step_id, kind, status, attempts, output, error, started_at, ended_at, deadline,"
        " timeout_output, detail, seq, item_id, lease_token) AS ({table})"
        f" INSERT INTO steps ({_STEP_COLUMNS}) SELECT {_STEP_COLUMNS} FROM v WHERE EXISTS"
        " (SELECT 1 FROM queue WHERE queue.id = v.item_id AND queue.lease_token = v.lease_token)"
    )
    + _STEP_UPSERT
    + " RETURNING run_id, key"
)
_STEP_SQL = f"INSERT INTO steps ({_STEP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" + _STEP_UPSERT


def write_step(tx: Tx, run_id: str, w: StepWrite, now: int) -> None:
    tx.run(_STEP_SQL, _step_values(run_id, w, now))
    if w.deadline is not None:
        _mark_pending(tx, run_id)
    if w.error is not None:
        _record_failure(tx, run_id, w.key, w.attempts, w.error, w.started_at, w.ended_at)


def _record_failure(
    tx: Tx, run_id: str, key: str, attempt: int, error: Any, started: int | None, ended: int | None
) -> None:
    tx.run(
        "INSERT INTO step_failures (run_id, step_key, attempt, error, started_at, ended_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (run_id, key, attempt, _dumps(error), started, ended),
    )


def _mark_pending(tx: Tx, run_id: str) -> None:
    """The run has a step with a deadline: its claims must look for deadlines that passed."""
    tx.run("UPDATE queue SET pending = 1 WHERE run_id = ? AND kind = 'run' AND pending = 0", (run_id,))


def _step_values(run_id: str, w: StepWrite, now: int) -> tuple[Any, ...]:
    return (
        run_id,
        w.key,
        w.step_id,
        w.kind,
        w.status,
        w.attempts,
        _dumps(w.output),
        _dumps(w.error) if w.error is not None else None,
        w.started_at,
        w.ended_at,
        w.deadline,
        _dumps(w.timeout_output),
        None if w.detail is None else _dumps(w.detail),
        new_seq(now),
    )


_last_seq = 0
_seq_lock = threading.Lock()


def new_seq(now_ms: int) -> int:
    """Orders a run's steps in the trace by first write: strictly increasing in this process.

    The caller's time in microseconds (or one more than the last given out), so that rows written
    by different processes interleave in time order.
    """
    global _last_seq
    with _seq_lock:
        _last_seq = max(_last_seq + 1, now_ms * 1000)
        return _last_seq


def _keep_logs(tx: Tx, run_id: str, logs: list[LogLine]) -> None:
    """Keep the run's first MAX_LOGS_PER_RUN lines (a log flood cannot grow a run without bound)."""
    row = tx.one("UPDATE runs SET log_count = log_count + ? WHERE id = ? RETURNING log_count", (len(logs), run_id))
    if row is None:
        return
    first = row[0] - len(logs)
    room = max(0, MAX_LOGS_PER_RUN - first)
    tx.many(
        "INSERT INTO run_logs (run_id, seq, ts, level, message, step_id) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        [(run_id, first + i, line.ts, line.level, line.message, line.step_id) for i, line in enumerate(logs[:room])],
    )


def _suspend(tx: Tx, c: Commit, s: Suspend) -> None:
    tx.run(
        "UPDATE queue SET due_at = CASE WHEN woken = 1 THEN ? ELSE ? END, lease_token = NULL, owner = NULL,"
        " woken = 0, crashes = 0, crash_progress = NULL WHERE id = ?",
        (c.now_ms, s.due_at, c.item_id),
    )
    if s.attempt is not None:
        tx.run("UPDATE runs SET attempt = ? WHERE id = ?", (s.attempt, c.run_id))
        if s.error is not None:
            _record_failure(tx, c.run_id, "", s.attempt, s.error, None, c.now_ms)


def _finish(tx: Tx, c: Commit, f: Finish) -> list[EventRecord]:
    ended = tx.one(
        "UPDATE runs SET status = ?, output = ?, error = ?, ended_at = ? WHERE id = ?"
        f" AND status IN ('queued', 'running') RETURNING {ENDED_COLUMNS}",
        (*_ended_values(c, f), c.run_id),
    )
    if ended is None:
        return []
    return end_run(
        tx,
        c.run_id,
        ended,
        status=f.status,
        output=f.output,
        error=f.event_error or f.error,
        now=c.now_ms,
        known_events=f.trigger_events,
    )


def _end_at_once(tx: Tx, planner: Planner, c: Commit) -> CommitResult:
    """PostgreSQL: a plain finish without steps (the last commit of most runs) in one statement
    for its lease check, its run's end, its defer rows and what ingest reads for the events it
    sends (then one more to store them): two round trips where `commit` takes five. The same
    rows and outcome as `commit`."""
    f = _finish_of(c)
    fetch = unfetched(tx, {FUNCTION_FINISHED, FUNCTION_FAILED, DEFERRED_SCHEDULE})
    fields, fields_params = prefetch_query(fetch) if fetch else ("SELECT NULL, NULL, NULL WHERE FALSE", ())
    row = tx.one(
        _END_AT_ONCE_SQL.format(fields=fields),
        (c.item_id, c.lease_token, *_ended_values(c, f), c.run_id, c.run_id, *fields_params),
    )
    assert row is not None  # one row, whatever happened
    if not row[0]:
        return CommitResult(ok=False, reason="lost")
    if row[1] is None:
        return CommitResult(ok=True)  # the run had ended already (cancelled meanwhile)
    if fetch:
        remember(tx, fetch, jsonutil.loads(row[7]) or [])
    events = end_run(
        tx,
        c.run_id,
        row[1:6],
        status=f.status,
        output=f.output,
        error=f.event_error or f.error,
        now=c.now_ms,
        known_events=f.trigger_events,
        defers=[defer_row(*d) for d in jsonutil.loads(row[6]) or []],
    )
    if events:
        ingest(tx, planner, events, c.now_ms)
    return CommitResult(ok=True)


#: `_end_at_once`'s statement: the item deleted under its lease, then (only then) the run ended
#: if active; its defer rows; and `{fields}`, ingest's reads for the events the end sends
_END_AT_ONCE_SQL = (
    "WITH gone AS (DELETE FROM queue WHERE id = ? AND lease_token = ? RETURNING id),"
    " ended AS (UPDATE runs SET status = ?, output = ?, error = ?, ended_at = ? WHERE id = ?"
    f" AND status IN ('queued', 'running') AND EXISTS (SELECT 1 FROM gone) RETURNING {ENDED_COLUMNS})"
    f" SELECT (SELECT COUNT(*) FROM gone), {', '.join('ended.' + c for c in ENDED_COLUMNS.split(', '))},"
    f" (SELECT json_agg(json_build_array(key, kind, status, output)) FROM ({ROWS_SQL}) d)::text,"
    " (SELECT json_agg(json_build_array(k, a, b)) FROM ({fields}) p (k, a, b))::text"
    " FROM (SELECT 1) AS one LEFT JOIN ended ON TRUE"
)


def _ended_values(c: Commit, f: Finish) -> tuple[Any, ...]:
    """The run's status, output, error and ended_at once it ends."""
    return f.status, _dumps(f.output), _dumps(f.error) if f.error else None, c.now_ms


_END_ITEMS_SQL = (
    "WITH v (id, lease_token) AS ({table})"
    " DELETE FROM queue WHERE (id, lease_token) IN (SELECT id, lease_token FROM v) RETURNING id"
)
#: the columns of `_END_RUNS_SQL`'s rows: the run's id, then `_ended_values`
_END_TYPES = ("text", "text", "text", "text", "bigint")
#: The runs are found by id. Their status is checked in a form no index serves: given statistics
#: that count few active runs (most have ended), the planners would otherwise read every active
#: run through the status index for each batch, a cost that grows with the backlog.
_END_RUNS_SQL = (
    "WITH v (id, status, output, error, ended_at) AS ({table}) UPDATE runs SET (status, output, error, ended_at) ="
    " (SELECT status, output, error, ended_at FROM v WHERE v.id = runs.id) WHERE id IN (SELECT id FROM v)"
    f" AND (CASE WHEN status IN ('queued', 'running') THEN 1 ELSE 0 END) = 1 RETURNING id, {ENDED_COLUMNS}"
)
