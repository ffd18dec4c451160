"""What a claim reads of the runs it leased: each run (started if it was queued), its trigger
events and its memo, as `RunState`s.

On PostgreSQL one statement does it all (an `UPDATE ... RETURNING` in a `WITH`, and the events
and steps aggregated as JSON per run): a claim's round trips are most of its time there, and
four statements became one. SQLite keeps a statement for each (a statement is a function call
there, not a round trip). Both read after the lease, in a statement of their own: a statement
sees what was committed before it began, and the lease may have waited for a transaction that
changed the run (a wait resolved while its item was due) to commit. On PostgreSQL that statement
also reads the claim's next due time when asked (`next_due`): the queue as the lease left it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from outlast.core import jsonutil
from outlast.core.models import PENDING_STEP_STATUSES, MemoEntry, RunState
from outlast.storage.sql.queue_items import enqueue
from outlast.storage.sql.read import EVENT_COLUMNS, event_from_row, get_events
from outlast.storage.sql.tx import Tx, marks

_loads = jsonutil.loads
_RUN_COLUMNS = (
    "id, app_id, function_id, status, event_ids, attempt, created_at, started_at, finish_timeout_ms, parent_run_id"
)
_STEP_COLUMNS = "key, step_id, kind, status, attempts, output, error, started_at, ended_at, deadline, seq"
_q = ", ".join
#: PostgreSQL: start the queued runs and read the runs, their events and their steps at once.
#: The SELECT sees the runs as they were before the UPDATE (one snapshot): `started` tells
#: which of them this statement started. A run's events are found by `= ANY(ARRAY(...))`, which
#: the planner looks up by the primary key; `IN (SELECT ...)` of the same ids it may hash-join
#: against a scan of every stored event, once per run.
_PG_STATES_SQL = (
    "WITH started AS (UPDATE runs SET status = 'running', started_at = ? WHERE id IN ({ids})"
    " AND status = 'queued' RETURNING id)"
    f" SELECT {_q('r.' + c for c in _RUN_COLUMNS.split(', '))}, r.id IN (SELECT id FROM started),"
    f" (SELECT json_agg(json_build_array({_q('e.' + c for c in EVENT_COLUMNS.split(', '))}))::text"
    " FROM events e WHERE e.id = ANY(ARRAY(SELECT jsonb_array_elements_text(r.event_ids::jsonb)))),"
    f" (SELECT json_agg(json_build_array({_q('s.' + c for c in _STEP_COLUMNS.split(', '))})"
    " ORDER BY s.seq, s.key)::text FROM steps s WHERE s.run_id = r.id), ({next_due}),"
    " txid_current_if_assigned() FROM runs r WHERE r.id IN ({ids}) ORDER BY r.id"
)
#: the transaction's id (`txid_current_if_assigned()`), read by a statement after a write of the
#: transaction (the lease): its COMMIT needs no statement of its own to learn it (see postgres.py)
XID = "xid"
#: what a run's states and their next due time come back as: the states by run id, and the
#: next due time read with them (in a 1-tuple: it may be None) or None if it was not read
States = tuple[dict[str, RunState], tuple[int | None] | None]


def load_states(
    tx: Tx,
    run_ids: list[str],
    now: int,
    with_pending: list[str],
    *,
    next_due: tuple[str, Sequence[Any]] | None = None,
) -> States:
    """The claimed runs that are running (queued ones start now); `with_pending` are those that
    ever stored a step with a deadline (their deadlines that passed are resolved first).

    `next_due`: a query of one value (the claim's next due time) that PostgreSQL reads in the same
    statement, unless a run started here has a finish timeout (its item is queued after it)."""
    if not run_ids:
        return {}, None
    if with_pending:
        _resolve_deadlines(tx, with_pending, now)
    if tx.dialect == "postgresql":
        return _pg_states(tx, run_ids, now, next_due)
    ids = marks(len(run_ids))
    runs = _start_runs(tx, tx.all(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id IN ({ids}) ORDER BY id", run_ids), now)
    events = {e.id: e for e in get_events(tx, [eid for r in runs for eid in _loads(r[4])])}
    memos: dict[str, dict[str, MemoEntry]] = {rid: {} for rid in run_ids}
    for row in tx.all(
        f"SELECT run_id, {_STEP_COLUMNS} FROM steps WHERE run_id IN ({ids}) ORDER BY run_id, seq, key", run_ids
    ):
        memos[row[0]][row[1]] = _memo_entry(row[1:])
    states = {
        r[0]: _state(r, [events[i] for i in _loads(r[4]) if i in events], memos[r[0]])
        for r in runs
        if r[3] == "running"
    }
    return states, None


def _pg_states(tx: Tx, run_ids: list[str], now: int, next_due: tuple[str, Sequence[Any]] | None) -> States:
    ids = marks(len(run_ids))
    due_sql, due_params = next_due or ("NULL", ())
    rows = tx.all(_PG_STATES_SQL.format(ids=ids, next_due=due_sql), (now, *run_ids, *due_params, *run_ids))
    runs = [(*r[:3], "running", *r[4:7], now, *r[8:10]) if r[10] else r[:10] for r in rows]
    timed = [run for run, row in zip(runs, rows, strict=True) if row[10] and run[8]]
    _time_finishes(tx, timed, now)
    due: tuple[int | None] | None = None
    if next_due is not None and rows and not timed:
        due = (None if rows[0][13] is None else int(rows[0][13]),)
    if rows and rows[0][14] is not None:
        tx.memo[XID] = rows[0][14]
    states = {}
    for run, row in zip(runs, rows, strict=True):
        if run[3] != "running":
            continue  # ended, or no longer queued when this statement came to start it
        events = {e.id: e for e in (event_from_row(e) for e in _loads(row[11]) or [])}
        memo = {s[0]: _memo_entry(s) for s in _loads(row[12]) or []}
        states[run[0]] = _state(run, [events[i] for i in _loads(run[4]) if i in events], memo)
    return states, due


def _state(r: Any, events: list[Any], memo: dict[str, MemoEntry]) -> RunState:
    return RunState(
        run_id=r[0],
        app_id=r[1],
        function_id=r[2],
        status=r[3],
        events=events,
        memo=memo,
        attempt=r[5],
        created_at=r[6],
        started_at=r[7],
        parent_run_id=r[9],
    )


def _memo_entry(row: Any) -> MemoEntry:
    """A step row (`_STEP_COLUMNS`) as the memo holds it."""
    return MemoEntry(
        key=row[0],
        step_id=row[1],
        kind=row[2],
        status=row[3],
        attempts=row[4],
        output=_loads(row[5]),
        error=_loads(row[6]),
        started_at=row[7],
        ended_at=row[8],
        deadline=row[9],
        seq=row[10],
    )


def _start_runs(tx: Tx, runs: list[Any], now: int) -> list[Any]:
    """Queued runs become running (rows updated to match); a finish timeout starts counting now."""
    starting = [r for r in runs if r[3] == "queued"]
    if not starting:
        return runs
    tx.run(
        f"UPDATE runs SET status = 'running', started_at = ? WHERE id IN ({marks(len(starting))})",
        (now, *[r[0] for r in starting]),
    )
    _time_finishes(tx, starting, now)
    return [(*r[:3], "running", *r[4:7], now, *r[8:]) if r[3] == "queued" else r for r in runs]


def _time_finishes(tx: Tx, started: list[Any], now: int) -> None:
    """The finish timeouts of runs that started now (`_RUN_COLUMNS` rows) count from now."""
    for row in started:
        if row[8]:
            enqueue(
                tx,
                app_id=row[1],
                function_id=row[2],
                kind="timeout",
                run_id=row[0],
                due=now + row[8],
                now=now,
                payload={"type": "finish"},
            )


def _resolve_deadlines(tx: Tx, run_ids: list[str], now: int) -> None:
    """Sleeps that ended and waits/invokes that timed out become final memo rows (an invoke fails
    with its timeout output as error), and the waits of those steps go: two statements for all."""
    ids, pending = marks(len(run_ids)), marks(len(PENDING_STEP_STATUSES))
    tx.run(
        f"DELETE FROM waits WHERE run_id IN ({ids}) AND step_key IN (SELECT s.key FROM steps s"
        f" WHERE s.run_id = waits.run_id AND s.deadline <= ? AND s.status IN ({pending}))",
        (*run_ids, now, *PENDING_STEP_STATUSES),
    )
    tx.run(
        "UPDATE steps SET status = CASE WHEN kind = 'invoke' THEN 'failed' ELSE 'completed' END,"
        " output = CASE WHEN kind = 'invoke' THEN NULL ELSE timeout_output END,"
        " error = CASE WHEN kind = 'invoke' THEN timeout_output END, ended_at = deadline, deadline = NULL"
        f" WHERE run_id IN ({ids}) AND deadline <= ? AND status IN ({pending})",
        (*run_ids, now, *PENDING_STEP_STATUSES),
    )
