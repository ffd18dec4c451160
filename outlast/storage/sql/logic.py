"""The Store's semantics in SQL, written once for SQLite and PostgreSQL.

Every function here runs inside one transaction opened by the backend (`tx`); see
`outlast.storage.base` for what each intent guarantees.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from outlast.core import flow, jsonutil
from outlast.core.cron_items import cron_items, next_tick, tick_event
from outlast.core.expressions import lookup
from outlast.core.ids import new_token, new_ulid
from outlast.core.registry import RunPlan, WaitSpec
from outlast.core.system_events import run_ended_events
from outlast.events import EventRecord
from outlast.models import Run, StepRecord
from outlast.storage.base import (
    PENDING_STEP_STATUSES,
    Claimed,
    Commit,
    CommitResult,
    Finish,
    MemoEntry,
    Planner,
    RunFilter,
    RunState,
    StepWrite,
    Suspend,
    WorkerInfo,
)
from outlast.storage.sql.tx import Tx, marks

DEDUPE_MS = 24 * 3_600_000
#: the `wait_fields` entry that says "expression waits exist for this event name"
EXPRESSION_FIELD = ""
_dumps, _loads = jsonutil.dumps, jsonutil.loads


# -- functions ---------------------------------------------------------------------------------

def sync_functions(tx: Tx, app_id: str, configs: list[dict[str, Any]], now: int) -> bool:
    sync_crons(tx, app_id, configs, now)
    stored = {r[0]: r[1] for r in tx.all("SELECT function_id, config FROM functions WHERE app_id = ?", (app_id,))}
    wanted = {c["id"]: _dumps(c) for c in configs}
    if stored == wanted:
        return False
    tx.run("DELETE FROM functions WHERE app_id = ?", (app_id,))
    tx.many("INSERT INTO functions (app_id, function_id, config, updated_at) VALUES (?, ?, ?, ?)",
            [(app_id, fid, text, now) for fid, text in wanted.items()])
    tx.run("UPDATE meta SET value = value + 1 WHERE name = 'functions_version'")
    return True


def functions_version(tx: Tx) -> int:
    row = tx.one("SELECT value FROM meta WHERE name = 'functions_version'")
    return int(row[0]) if row else 0


def load_functions(tx: Tx) -> tuple[int, list[dict[str, Any]]]:
    return functions_version(tx), [_loads(r[0]) for r in tx.all("SELECT config FROM functions")]


# -- ingest ------------------------------------------------------------------------------------

def ingest(tx: Tx, planner: Planner, events: list[EventRecord], now: int) -> list[str]:
    for event in events:
        if not _insert_event(tx, event, now):
            continue  # already stored: this is a retried ingest
        if event.dedupe_id and not _claim_key(tx, f"event:{event.dedupe_id}", now):
            continue
        _resolve_waits(tx, planner, event, now)
        for plan in planner.plan(event, now):
            create_run(tx, planner, plan, now)
    return [e.id for e in events]


def _insert_event(tx: Tx, e: EventRecord, now: int) -> bool:
    return tx.run(
        "INSERT INTO events (id, name, data, user_data, ts, dedupe_id, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO NOTHING",
        (e.id, e.name, _dumps(e.data), _dumps(e.user), e.ts, e.dedupe_id, now)) == 1


def _claim_key(tx: Tx, key: str, now: int) -> bool:
    """Take an idempotency key for 24 h; False when it is already taken.

    Each call also drops a few expired keys, so the table stays about one day's worth.
    """
    tx.run("DELETE FROM dedupe WHERE key IN (SELECT key FROM dedupe WHERE expires_at <= ? LIMIT 8)", (now,))
    tx.run("DELETE FROM dedupe WHERE key = ? AND expires_at <= ?", (key, now))
    return tx.run("INSERT INTO dedupe (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                  (key, now + DEDUPE_MS)) == 1


def create_run(tx: Tx, planner: Planner, plan: RunPlan, now: int) -> None:
    """Apply the plan's flow control, then insert the run, its item and its cancel waits."""
    if plan.rate_limit and not _rate_admitted(tx, plan.rate_limit, now):
        return _insert_run(tx, plan, now, skip="rate_limit")
    if plan.idempotency_key is not None and not _claim_key(tx, f"run:{plan.idempotency_key}", now):
        return _insert_run(tx, plan, now, skip="idempotency")
    if plan.singleton and not _singleton_admitted(tx, planner, plan, now):
        return _insert_run(tx, plan, now, skip="singleton")
    if (plan.debounce or plan.batch) and _gathered(tx, plan, now):
        return None
    due = plan.due_at
    if plan.debounce:
        due = now + plan.debounce[1]
        _start_gathering(tx, plan.debounce[0], plan.run_id, now)
    elif plan.batch:
        due = now + plan.batch[2]
        _start_gathering(tx, plan.batch[0], plan.run_id, now)
    if plan.throttle:
        due = max(due, _throttled_start(tx, plan.throttle, now))
    _insert_run(tx, plan, now)
    _enqueue(tx, plan.app_id, "run", plan.run_id, due, concurrency=plan.concurrency)
    for wait in plan.cancel_waits:
        add_wait(tx, plan.run_id, wait, now)
    if plan.start_deadline is not None:
        _enqueue(tx, plan.app_id, "timeout", plan.run_id, plan.start_deadline, {"type": "start"})
    return None


def _insert_run(tx: Tx, plan: RunPlan, now: int, skip: str | None = None) -> None:
    tx.run(
        "INSERT INTO runs (id, app_id, function_id, status, event_ids, first_event_id, created_at,"
        " parent_run_id, skip_reason, ended_at, finish_timeout_ms, singleton_key, has_waits, has_timeouts)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (plan.run_id, plan.app_id, plan.function_id, "skipped" if skip else "queued", _dumps(plan.event_ids),
         plan.event_ids[0], plan.created_at, plan.parent_run_id, skip, now if skip else None,
         plan.finish_timeout_ms, plan.singleton[0] if plan.singleton and not skip else None,
         int(bool(plan.cancel_waits)), int(plan.start_deadline is not None or bool(plan.finish_timeout_ms))))


def _gcra_tat(tx: Tx, key: str) -> int | None:
    """The key's TAT, its row locked. The row is created first (TAT 0, the same as none) so that
    concurrent transactions queue on it instead of each seeing no row."""
    tx.run("INSERT INTO gcra (key, tat) VALUES (?, 0) ON CONFLICT (key) DO NOTHING", (key,))
    row = tx.one(f"SELECT tat FROM gcra WHERE key = ? {tx.row_lock}", (key,))
    return None if row is None else int(row[0])


def _set_tat(tx: Tx, key: str, tat: int) -> None:
    tx.run("INSERT INTO gcra (key, tat) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET tat = excluded.tat",
           (key, tat))


def _rate_admitted(tx: Tx, rule: tuple[str, int, int], now: int) -> bool:
    key, limit, period = rule
    admitted, tat = flow.rate_limit(_gcra_tat(tx, key), now, limit, period)
    if admitted:
        _set_tat(tx, key, tat)
    return admitted


def _throttled_start(tx: Tx, rule: tuple[str, int, int, int], now: int) -> int:
    key, limit, period, burst = rule
    start, tat = flow.throttle(_gcra_tat(tx, key), now, limit, period, burst)
    _set_tat(tx, key, tat)
    return start


def _singleton_admitted(tx: Tx, planner: Planner, plan: RunPlan, now: int) -> bool:
    assert plan.singleton is not None
    key, mode = plan.singleton
    active = [r[0] for r in tx.all("SELECT id FROM runs WHERE singleton_key = ? AND status IN ('queued', 'running')",
                                   (key,))]
    if active and mode == "skip":
        return False
    for run_id in active:
        cancel_run(tx, planner, run_id, now, "replaced by a newer run (singleton)")
    return True


def _gathered(tx: Tx, plan: RunPlan, now: int) -> bool:
    """Add the event to a debounced or batched run that has not started yet, if there is one."""
    key = (plan.debounce or plan.batch or ("",))[0]
    # Create-then-lock, so that concurrent events for one key queue on the same row.
    tx.run("INSERT INTO gathering (key, run_id, size, first_at) VALUES (?, '', 0, ?) ON CONFLICT (key) DO NOTHING",
           (key, now))
    run_id, first_at = tx.one(f"SELECT run_id, first_at FROM gathering WHERE key = ? {tx.row_lock}", (key,)) \
        or ("", now)
    row = tx.one("SELECT q.id, r.event_ids FROM runs r JOIN queue q ON q.run_id = r.id AND q.kind = 'run'"
                 " AND q.lease_token IS NULL WHERE r.id = ? AND r.status = 'queued'", (run_id,)) if run_id else None
    if row is None:
        return False
    item_id, event_ids = row
    if plan.debounce:
        _, period, timeout = plan.debounce
        due = now + period if timeout is None else min(now + period, first_at + timeout)
        tx.run("UPDATE runs SET event_ids = ?, first_event_id = ? WHERE id = ?",
               (_dumps(plan.event_ids), plan.event_ids[0], run_id))
        tx.run("UPDATE queue SET due_at = ? WHERE id = ?", (due, item_id))
        return True
    assert plan.batch is not None
    events = _loads(event_ids) + plan.event_ids
    tx.run("UPDATE runs SET event_ids = ? WHERE id = ?", (_dumps(events), run_id))
    if len(events) >= plan.batch[1]:
        tx.run("DELETE FROM gathering WHERE key = ?", (key,))
        tx.run("UPDATE queue SET due_at = ? WHERE id = ?", (now, item_id))
    else:
        tx.run("UPDATE gathering SET size = ? WHERE key = ?", (len(events), key))
    return True


def _start_gathering(tx: Tx, key: str, run_id: str, now: int) -> None:
    tx.run("INSERT INTO gathering (key, run_id, size, first_at) VALUES (?, ?, 1, ?) ON CONFLICT (key) DO UPDATE"
           " SET run_id = excluded.run_id, size = 1, first_at = excluded.first_at", (key, run_id, now))


def _enqueue(tx: Tx, app_id: str, kind: str, run_id: str | None, due: int, payload: Any = None,
             concurrency: list[tuple[str, int]] = (), item_id: str | None = None) -> None:  # type: ignore[assignment]
    (ck1, lim1), (ck2, lim2) = [*concurrency, (None, None), (None, None)][:2]
    tx.run("INSERT INTO queue (id, app_id, kind, run_id, due_at, payload, ck1, ck1_limit, ck2, ck2_limit)"
           " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
           (item_id or new_ulid(), app_id, kind, run_id, due, None if payload is None else _dumps(payload),
            ck1, lim1, ck2, lim2))


def add_wait(tx: Tx, run_id: str, w: WaitSpec, now: int) -> None:
    tx.run(
        "INSERT INTO waits (id, run_id, kind, step_key, event_name, match_field, match_value, expression,"
        " created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (new_ulid(), run_id, w.kind, w.step_key, w.event_name, w.match_field, w.match_value, w.expression,
         now, w.expires_at))
    tx.run("INSERT INTO wait_fields (event_name, match_field) VALUES (?, ?) ON CONFLICT DO NOTHING",
           (w.event_name, EXPRESSION_FIELD if w.match_field is None else w.match_field))


_WAIT_COLS = "w.id, w.run_id, w.kind, w.step_key, w.expires_at"


def _resolve_waits(tx: Tx, planner: Planner, event: EventRecord, now: int) -> None:
    """Find the waits an event resolves: by index for equality waits, by evaluation for the rest.

    `wait_fields` lists, per event name, the incoming fields equality waits index on, plus
    EXPRESSION_FIELD when any expression wait was ever stored; one read tells what to look up.
    """
    payload = event.to_dict()
    found: list[Any] = []
    for (field,) in tx.all("SELECT match_field FROM wait_fields WHERE event_name = ?", (event.name,)):
        if field == EXPRESSION_FIELD:
            found += _expression_waits(tx, planner, event.name, payload)
            continue
        found += tx.all(
            f"SELECT {_WAIT_COLS}, w.created_at FROM waits w WHERE w.event_name = ? AND w.match_field = ?"
            " AND w.match_value = ?", (event.name, field, _dumps(lookup(payload, field))))
    for _wait_id, run_id, kind, step_key, expires_at, _created in sorted(found, key=lambda r: r[5]):
        if expires_at <= now:
            continue  # timed out: its run's claim resolves it
        if kind == "cancel":
            cancel_run(tx, planner, run_id, now, "cancelled by event " + event.name)
        else:
            _complete_wait(tx, run_id, kind, step_key, payload, now)


def _expression_waits(tx: Tx, planner: Planner, name: str, payload: dict[str, Any]) -> list[Any]:
    matched = []
    for row in tx.all(
        f"SELECT {_WAIT_COLS}, w.created_at, w.expression, e.name, e.data, e.user_data, e.ts, e.dedupe_id, e.id"
        " FROM waits w JOIN runs r ON r.id = w.run_id JOIN events e ON e.id = r.first_event_id"
        " WHERE w.event_name = ? AND w.match_field IS NULL", (name,)):
        if planner.matches(row[6], _event_row_dict(row[7:]), payload):
            matched.append(row[:6])
    return matched


def _complete_wait(tx: Tx, run_id: str, kind: str, step_key: str, payload: dict[str, Any], now: int) -> None:
    status, error = "completed", None
    output_or_none: Any = payload
    if kind == "invoke":
        data = payload["data"]
        status = "failed" if "error" in data else "completed"
        output_or_none, error = (None, data["error"]) if status == "failed" else (data.get("result"), None)
    changed = tx.run(
        "UPDATE steps SET status = ?, output = ?, error = ?, ended_at = ?, deadline = NULL"
        f" WHERE run_id = ? AND key = ? AND status IN ({marks(len(PENDING_STEP_STATUSES))})",
        (status, _dumps(output_or_none), _dumps(error) if error else None, now, run_id, step_key,
         *PENDING_STEP_STATUSES))
    tx.run("DELETE FROM waits WHERE run_id = ? AND step_key = ?", (run_id, step_key))
    if changed:
        _wake(tx, run_id, now)


def _wake(tx: Tx, run_id: str, now: int) -> None:
    """Make a suspended run due now; a leased one resumes when its attempt ends."""
    tx.run("UPDATE queue SET woken = 1, due_at = CASE WHEN lease_token IS NULL THEN ? ELSE due_at END"
           " WHERE run_id = ? AND kind = 'run'", (now, run_id))


def _event_row_dict(row: Any) -> dict[str, Any]:
    name, data, user, ts, dedupe_id, internal_id = row
    return {"id": dedupe_id or internal_id, "name": name, "data": _loads(data), "user": _loads(user), "ts": ts}


# -- cancellation ------------------------------------------------------------------------------

def cancel_run(tx: Tx, planner: Planner, run_id: str, now: int, reason: str) -> bool:
    error = {"name": "FunctionCancelled", "message": reason}
    ended = tx.one("UPDATE runs SET status = 'cancelled', error = ?, ended_at = ?"
                   f" WHERE id = ? AND status IN ('queued', 'running') RETURNING {_ENDED_COLS}",
                   (_dumps(error), now, run_id))
    if ended is None:
        return False
    tx.run("DELETE FROM queue WHERE run_id = ?", (run_id,))
    _end_run(tx, planner, run_id, ended, "cancelled", None, error, now)
    return True


_ENDED_COLS = "app_id, function_id, event_ids, has_waits, has_timeouts"


def _end_run(tx: Tx, planner: Planner, run_id: str, run: Any, status: str, output: Any, error: Any,
             now: int, known_events: list[EventRecord] | None = None) -> None:
    """Clear the ended run's timeout items and waits, and emit its system events.

    `run` holds _ENDED_COLS. The run's own item is already gone (cancelled, or deleted by the
    finishing commit's lease check); the flags spare two deletes for runs that never had more.
    """
    app_id, function_id, event_ids, has_waits, has_timeouts = run
    if has_timeouts:
        tx.run("DELETE FROM queue WHERE run_id = ?", (run_id,))
    if has_waits:
        tx.run("DELETE FROM waits WHERE run_id = ?", (run_id,))
    events = known_events if known_events is not None else get_events(tx, _loads(event_ids))
    triggers = [e.to_dict() for e in events]
    emitted = run_ended_events(app_id=app_id, function_id=function_id, run_id=run_id, trigger_events=triggers,
                               status=status, output=output, error=error, now_ms=now)
    ingest(tx, planner, emitted, now)


# -- claiming ----------------------------------------------------------------------------------

_CLAIM_COLS = "id, kind, run_id, payload, ck1, ck1_limit, ck2, ck2_limit, pending"


def claim(tx: Tx, planner: Planner, app_id: str, owner: str, limit: int, now: int, lease_ms: int) -> list[Claimed]:
    limited = planner.has_concurrency_limits()
    if limited and tx.claim_lock:
        tx.run(tx.claim_lock)  # concurrency counts must not race another claim
    token = new_token()
    rows = _lease_within_limits(tx, app_id, owner, token, limit, now, lease_ms) if limited \
        else _lease(tx, app_id, owner, token, limit, now, lease_ms)
    if not rows:
        return []
    claimed: list[Claimed] = []
    run_ids = []
    pending = {r[2] for r in rows if r[8]}
    for item_id, kind, run_id, payload, *_ in rows:
        if kind == "timeout":
            _fire_timeout(tx, planner, item_id, run_id, _loads(payload), now)
        elif kind == "cron":
            _fire_cron(tx, planner, item_id, _loads(payload), now)
        else:
            claimed.append(Claimed(item_id, kind, token))
            run_ids.append(run_id)
    states = _load_states(tx, run_ids, now, [r for r in run_ids if r in pending])
    for c, run_id in zip(claimed, run_ids, strict=True):
        c.run = states.get(run_id)
    return [c for c in claimed if c.run is not None]


def _lease(tx: Tx, app_id: str, owner: str, token: str, limit: int, now: int, lease_ms: int) -> list[Any]:
    """Lease the oldest due items in one statement (no concurrency limits to respect)."""
    return tx.all(
        "UPDATE queue SET lease_token = ?, owner = ?, due_at = ?, woken = 0 WHERE id IN ("
        f" SELECT id FROM queue WHERE app_id = ? AND due_at <= ? ORDER BY due_at LIMIT ? {tx.lock_suffix})"
        f" RETURNING {_CLAIM_COLS}", (token, owner, now + lease_ms, app_id, now, limit))


def _lease_within_limits(tx: Tx, app_id: str, owner: str, token: str, limit: int, now: int,
                         lease_ms: int) -> list[Any]:
    """Lease due items whose concurrency keys have free slots (the caller holds the claim lock)."""
    busy = _busy_keys(tx, now)
    full = [k for k, (count, most) in busy.items() if count >= most]
    skip_full = ""
    if full:
        skip_full = (f" AND (ck1 IS NULL OR ck1 NOT IN ({marks(len(full))}))"
                     f" AND (ck2 IS NULL OR ck2 NOT IN ({marks(len(full))}))")
    rows = tx.all(f"SELECT {_CLAIM_COLS} FROM queue WHERE app_id = ? AND due_at <= ?{skip_full}"
                  f" ORDER BY due_at LIMIT ? {tx.lock_suffix}",
                  (app_id, now, *full, *full, limit * 2 if busy else limit))
    rows = _within_limits(rows, busy, limit)
    if rows:
        tx.run(f"UPDATE queue SET lease_token = ?, owner = ?, due_at = ?, woken = 0 WHERE id IN ({marks(len(rows))})",
               (token, owner, now + lease_ms, *[r[0] for r in rows]))
    return rows


def _busy_keys(tx: Tx, now: int) -> dict[str, list[int]]:
    """Concurrency keys with leased (executing) items: key -> [count, limit]."""
    busy: dict[str, list[int]] = {}
    for column in ("ck1", "ck2"):
        for key, count, most in tx.all(
                f"SELECT {column}, COUNT(*), MAX({column}_limit) FROM queue WHERE lease_token IS NOT NULL"
                f" AND due_at > ? AND {column} IS NOT NULL GROUP BY {column}", (now,)):
            entry = busy.setdefault(key, [0, most])
            entry[0] += count
    return busy


def _within_limits(rows: list[Any], busy: dict[str, list[int]], limit: int) -> list[Any]:
    """Take due items in order while each of their concurrency keys has a free slot."""
    taken = []
    for row in rows:
        keys = [(row[4], row[5]), (row[6], row[7])]
        if any(k is not None and busy.get(k, [0, most])[0] >= most for k, most in keys):
            continue
        for k, most in keys:
            if k is not None:
                busy.setdefault(k, [0, most])[0] += 1
        taken.append(row)
        if len(taken) == limit:
            break
    return taken


def _fire_cron(tx: Tx, planner: Planner, item_id: str, payload: dict[str, Any], now: int) -> None:
    """Start the scheduled run and move the item to the next tick after now (one catch-up at most)."""
    ingest(tx, planner, [tick_event(payload, now)], now)
    tx.run("UPDATE queue SET due_at = ?, lease_token = NULL, owner = NULL WHERE id = ?",
           (next_tick(payload, now), item_id))


def sync_crons(tx: Tx, app_id: str, configs: list[dict[str, Any]], now: int) -> None:
    """One queue item per cron trigger; kept when unchanged, so restarts never add ticks."""
    wanted = cron_items(app_id, configs)
    existing: dict[str, str] = dict(
        tx.all("SELECT id, payload FROM queue WHERE app_id = ? AND kind = 'cron'", (app_id,)))
    for item_id, text in existing.items():
        if item_id not in wanted or _loads(text) != wanted[item_id]:
            tx.run("DELETE FROM queue WHERE id = ?", (item_id,))
    for item_id, payload in wanted.items():
        if item_id not in existing or _loads(existing[item_id]) != payload:
            _enqueue(tx, app_id, "cron", None, next_tick(payload, now), payload, item_id=item_id)


def _fire_timeout(tx: Tx, planner: Planner, item_id: str, run_id: str, payload: dict[str, Any], now: int) -> None:
    tx.run("DELETE FROM queue WHERE id = ?", (item_id,))
    status = tx.one("SELECT status FROM runs WHERE id = ?", (run_id,))
    if status and (payload["type"] == "finish" or status[0] == "queued"):
        cancel_run(tx, planner, run_id, now, f"{payload['type']} timeout reached")


def _load_states(tx: Tx, run_ids: list[str], now: int, with_pending: list[str]) -> dict[str, RunState]:
    """Load the claimed runs; `with_pending` are those that ever stored a step with a deadline."""
    if not run_ids:
        return {}
    ids = marks(len(run_ids))
    if with_pending:
        _resolve_deadlines(tx, with_pending, now)
    runs = _start_runs(tx, tx.all("SELECT id, app_id, function_id, status, event_ids, attempt, created_at,"
                                  f" started_at, finish_timeout_ms FROM runs WHERE id IN ({ids})", run_ids), now)
    event_ids = [eid for r in runs for eid in _loads(r[4])]
    events = {e.id: e for e in get_events(tx, event_ids)}
    memos: dict[str, dict[str, MemoEntry]] = {rid: {} for rid in run_ids}
    for row in tx.all("SELECT run_id, key, step_id, kind, status, attempts, output, error, started_at, ended_at,"
                      f" deadline FROM steps WHERE run_id IN ({ids})", run_ids):
        memos[row[0]][row[1]] = MemoEntry(row[1], row[2], row[3], row[4], row[5], _loads(row[6]),
                                          _loads(row[7]), row[8], row[9], row[10])
    return {r[0]: RunState(r[0], r[1], r[2], r[3], [events[i] for i in _loads(r[4]) if i in events],
                           memos[r[0]], r[5], r[6], r[7]) for r in runs if r[3] == "running"}


def _start_runs(tx: Tx, runs: list[Any], now: int) -> list[Any]:
    """Queued runs become running (rows updated to match); a finish timeout starts counting now."""
    starting = [r for r in runs if r[3] == "queued"]
    if not starting:
        return runs
    tx.run(f"UPDATE runs SET status = 'running', started_at = ? WHERE id IN ({marks(len(starting))})",
           (now, *[r[0] for r in starting]))
    for row in starting:
        if row[8]:
            _enqueue(tx, row[1], "timeout", row[0], now + row[8], {"type": "finish"})
    return [(*r[:3], "running", *r[4:7], now, r[8]) if r[3] == "queued" else r for r in runs]


def _resolve_deadlines(tx: Tx, run_ids: list[str], now: int) -> None:
    """Sleeps that ended and waits/invokes that timed out become final memo rows."""
    due = tx.all("SELECT run_id, key, kind, timeout_output, deadline FROM steps"
                 f" WHERE run_id IN ({marks(len(run_ids))}) AND deadline <= ?"
                 f" AND status IN ({marks(len(PENDING_STEP_STATUSES))})",
                 (*run_ids, now, *PENDING_STEP_STATUSES))
    for run_id, key, kind, timeout_output, deadline in due:
        failed = kind == "invoke"
        tx.run("UPDATE steps SET status = ?, output = ?, error = ?, ended_at = ?, deadline = NULL"
               " WHERE run_id = ? AND key = ?",
               ("failed" if failed else "completed", None if failed else timeout_output,
                timeout_output if failed else None, deadline, run_id, key))
        tx.run("DELETE FROM waits WHERE run_id = ? AND step_key = ?", (run_id, key))


def extend_leases(tx: Tx, owner: str, tokens: dict[str, str], until: int) -> set[str]:
    lost = set()
    for item_id, token in tokens.items():
        if not tx.run("UPDATE queue SET due_at = ? WHERE id = ? AND lease_token = ?", (until, item_id, token)):
            lost.add(item_id)
    return lost


def release(tx: Tx, item_id: str, token: str, due_at: int) -> None:
    tx.run("UPDATE queue SET lease_token = NULL, owner = NULL, due_at = ? WHERE id = ? AND lease_token = ?",
           (due_at, item_id, token))


def next_due_at(tx: Tx, app_id: str) -> int | None:
    row = tx.one("SELECT MIN(due_at) FROM queue WHERE app_id = ?", (app_id,))
    return None if row is None or row[0] is None else int(row[0])


# -- committing --------------------------------------------------------------------------------

def commit(tx: Tx, planner: Planner, c: Commit) -> CommitResult:
    if _is_checkpoint(c):
        return _checkpoint(tx, c)
    if isinstance(c.outcome, Finish):  # the lease check also removes the item of the ending run
        held = tx.run("DELETE FROM queue WHERE id = ? AND lease_token = ?", (c.item_id, c.lease_token))
    else:
        held = tx.run("UPDATE queue SET due_at = ? WHERE id = ? AND lease_token = ?",
                      (c.lease_until, c.item_id, c.lease_token))
    if not held:
        return CommitResult(False, "lost")
    for write in c.steps:
        _write_step(tx, c.run_id, write)
    for wait in c.waits:
        add_wait(tx, c.run_id, wait, c.now_ms)
    if c.waits:
        tx.run("UPDATE runs SET has_waits = 1 WHERE id = ? AND has_waits = 0", (c.run_id,))
    if c.events:
        ingest(tx, planner, c.events, c.now_ms)
    if isinstance(c.outcome, Suspend):
        _suspend(tx, c, c.outcome)
    elif isinstance(c.outcome, Finish):
        _finish(tx, planner, c, c.outcome)
    return CommitResult(True)


def _is_checkpoint(c: Commit) -> bool:
    return len(c.steps) == 1 and not c.waits and not c.events and c.outcome is None


def _checkpoint(tx: Tx, c: Commit) -> CommitResult:
    """The hot path, one step's result: the lease check and the memo write in one statement.

    The lease is not extended here (the worker's keeper does that); when no row was written,
    a second look tells a lost lease from a memo row that was already final.
    """
    w = c.steps[0]
    written = tx.run(_CHECKPOINT_SQL, (*_step_values(c.run_id, w), c.item_id, c.lease_token))
    if written and w.deadline is not None:
        _mark_pending(tx, c.run_id)
    if written or tx.one("SELECT 1 FROM queue WHERE id = ? AND lease_token = ?", (c.item_id, c.lease_token)):
        return CommitResult(True)
    return CommitResult(False, "lost")


_STEP_COLUMNS = ("run_id, key, step_id, kind, status, attempts, output, error, started_at, ended_at, deadline,"
                 " timeout_output, seq")
_STEP_UPSERT = (
    " ON CONFLICT (run_id, key) DO UPDATE SET status = excluded.status, attempts = excluded.attempts,"
    " output = excluded.output, error = excluded.error, ended_at = excluded.ended_at,"
    " deadline = excluded.deadline, timeout_output = excluded.timeout_output"
    " WHERE steps.status NOT IN ('completed', 'failed')"
)
_CHECKPOINT_SQL = (
    f"INSERT INTO steps ({_STEP_COLUMNS}) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
    " WHERE EXISTS (SELECT 1 FROM queue WHERE id = ? AND lease_token = ?)" + _STEP_UPSERT
)
_STEP_SQL = f"INSERT INTO steps ({_STEP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" + _STEP_UPSERT


def _write_step(tx: Tx, run_id: str, w: StepWrite) -> None:
    tx.run(_STEP_SQL, _step_values(run_id, w))
    if w.deadline is not None:
        _mark_pending(tx, run_id)


def _mark_pending(tx: Tx, run_id: str) -> None:
    """The run has a step with a deadline: its claims must look for deadlines that passed."""
    tx.run("UPDATE queue SET pending = 1 WHERE run_id = ? AND kind = 'run' AND pending = 0", (run_id,))


def _step_values(run_id: str, w: StepWrite) -> tuple[Any, ...]:
    return (run_id, w.key, w.step_id, w.kind, w.status, w.attempts, _dumps(w.output),
            _dumps(w.error) if w.error is not None else None, w.started_at, w.ended_at, w.deadline,
            _dumps(w.timeout_output), new_seq())


_last_seq = 0
_seq_lock = threading.Lock()


def new_seq() -> int:
    """Orders a run's steps in the trace by first write: wall-clock µs, strictly increasing per process."""
    global _last_seq
    with _seq_lock:
        _last_seq = max(_last_seq + 1, time.time_ns() // 1000)
        return _last_seq


def _suspend(tx: Tx, c: Commit, s: Suspend) -> None:
    tx.run("UPDATE queue SET due_at = CASE WHEN woken = 1 THEN ? ELSE ? END, lease_token = NULL, owner = NULL,"
           " woken = 0 WHERE id = ?", (c.now_ms, s.due_at, c.item_id))
    if s.attempt is not None:
        tx.run("UPDATE runs SET attempt = ? WHERE id = ?", (s.attempt, c.run_id))


def _finish(tx: Tx, planner: Planner, c: Commit, f: Finish) -> None:
    ended = tx.one("UPDATE runs SET status = ?, output = ?, error = ?, ended_at = ? WHERE id = ?"
                   f" AND status IN ('queued', 'running') RETURNING {_ENDED_COLS}",
                   (f.status, _dumps(f.output), _dumps(f.error) if f.error else None, c.now_ms, c.run_id))
    if ended is not None:
        _end_run(tx, planner, c.run_id, ended, f.status, f.output, f.error, c.now_ms, f.trigger_events)


# -- reading -----------------------------------------------------------------------------------

_RUN_COLS = ("id, app_id, function_id, status, event_ids, output, error, created_at, started_at, ended_at,"
             " parent_run_id, skip_reason")


def get_events(tx: Tx, ids: list[str]) -> list[EventRecord]:
    if not ids:
        return []
    rows = tx.all(f"SELECT id, name, data, user_data, ts, dedupe_id FROM events WHERE id IN ({marks(len(ids))})", ids)
    by_id = {r[0]: EventRecord(r[0], r[1], _loads(r[2]), _loads(r[3]), r[4], r[5]) for r in rows}
    return [by_id[i] for i in ids if i in by_id]


def get_run(tx: Tx, run_id: str) -> Run | None:
    row = tx.one(f"SELECT {_RUN_COLS} FROM runs WHERE id = ?", (run_id,))
    if row is None:
        return None
    run = _run(row)
    run.steps = [StepRecord(r[0], r[1], r[2], r[3], r[4], _loads(r[5]), _loads(r[6]), r[7], r[8]) for r in tx.all(
        "SELECT step_id, key, kind, status, attempts, output, error, started_at, ended_at FROM steps"
        " WHERE run_id = ? ORDER BY seq", (run_id,))]
    return run


def list_runs(tx: Tx, f: RunFilter) -> list[Run]:
    where, params = [], []
    for column, value in (("app_id", f.app_id), ("function_id", f.function_id), ("status", f.status)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if f.event_id is not None:  # LIKE narrows the rows; the exact test is below
        where.append("(first_event_id = ? OR event_ids LIKE ? ESCAPE '!')")
        escaped = f.event_id.replace("!", "!!").replace("%", "!%").replace("_", "!_")
        params += [f.event_id, f'%"{escaped}"%']
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = tx.all(f"SELECT {_RUN_COLS} FROM runs {clause} ORDER BY id DESC LIMIT ?", (*params, f.limit))
    runs = [_run(r) for r in rows]
    return runs if f.event_id is None else [r for r in runs if f.event_id in r.event_ids]


def _run(r: Any) -> Run:
    return Run(r[0], r[1], r[2], r[3], _loads(r[4]), _loads(r[5]), _loads(r[6]), r[7], r[8], r[9], r[10], r[11])


# -- workers -----------------------------------------------------------------------------------

def heartbeat(tx: Tx, w: WorkerInfo) -> None:
    tx.run("INSERT INTO workers (id, app_id, host, pid, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?)"
           " ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
           (w.id, w.app_id, w.host, w.pid, w.started_at, w.heartbeat_at))


def list_workers(tx: Tx, since_ms: int) -> list[WorkerInfo]:
    """Workers seen since `since_ms`; older rows are forgotten."""
    tx.run("DELETE FROM workers WHERE heartbeat_at < ?", (since_ms,))
    return [WorkerInfo(*r) for r in tx.all(
        "SELECT id, app_id, host, pid, started_at, heartbeat_at FROM workers ORDER BY started_at")]
