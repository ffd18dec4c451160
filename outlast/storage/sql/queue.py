"""Claiming due work: leases, concurrency keys, and what fires inside a claim (timeouts, crons,
run starts, deadlines that passed)."""

from __future__ import annotations

from typing import Any

from outlast.core import jsonutil
from outlast.core.cron_items import next_tick, tick_event
from outlast.core.ids import new_token
from outlast.core.models import PENDING_STEP_STATUSES, AppScope, Claimed, Claims, EventRecord, MemoEntry, RunState
from outlast.storage.base import Planner
from outlast.storage.sql import crashes
from outlast.storage.sql.ingest import ingest
from outlast.storage.sql.pausing import NOT_PAUSED
from outlast.storage.sql.queue_items import CLAIM_COLUMNS, Leased, enqueue
from outlast.storage.sql.read import get_events
from outlast.storage.sql.run_end import cancel_run
from outlast.storage.sql.tx import Tx, marks

_loads = jsonutil.loads
#: an expired lease is noted by the claim that takes the item over (SET sees the old row)
_TAKE = (
    "UPDATE queue SET lease_token = ?, owner = ?, due_at = ?, woken = 0,"
    " abandoned = CASE WHEN lease_token IS NULL THEN 0 ELSE 1 END"
)
#: CLAIM_COLUMNS as they will read once the item is taken
_CANDIDATE_COLUMNS = CLAIM_COLUMNS.replace("abandoned", "CASE WHEN lease_token IS NULL THEN 0 ELSE 1 END")


def claim(
    tx: Tx,
    planner: Planner,
    scope: AppScope,
    owner: str,
    limit: int,
    now: int,
    lease_ms: int,
    *,
    max_crashes: int,
    crash_backoff_scale: float = 1.0,
) -> Claims:
    """`Store.claim`. A claim that leased fewer than `limit` items and fired none also reads the
    scope's next due time (`Claims`), so the worker goes idle on what this transaction saw."""
    limited = planner.has_concurrency_limits()
    if limited and tx.claim_lock:
        tx.run(tx.claim_lock)  # concurrency counts must not race another claim
    token = new_token()
    where, params = _scope_filter(scope)
    leased = (
        _lease_within_limits(tx, where, params, owner, token, limit, now, lease_ms)
        if limited
        else _lease(tx, where, params, owner, token, limit, now, lease_ms)
    )
    if not leased:
        return Claims(next_due_at=next_due_at(tx, scope))
    full = len(leased) >= limit
    leased.sort(key=lambda i: i.id)  # RETURNING order is unspecified: item id order, on every backend
    follow_ups: list[EventRecord] = []
    if crashes.needs_care(leased):
        leased, follow_ups = crashes.settle(
            tx, leased, token=token, now=now, max_crashes=max_crashes, backoff_scale=crash_backoff_scale
        )
    run_items: list[tuple[str, str]] = []
    for item in leased:
        if item.kind == "timeout":
            follow_ups += _fire_timeout(tx, item.id, str(item.run_id), _loads(item.payload), now)
        elif item.kind == "cron":
            follow_ups += _fire_cron(tx, item.id, _loads(item.payload), now)
        elif item.run_id is not None:
            run_items.append((item.id, item.run_id))
    if follow_ups:
        ingest(tx, planner, follow_ups, now)
    pending = {i.run_id for i in leased if i.pending}
    states = _load_states(tx, [r for _, r in run_items], now, [r for _, r in run_items if r in pending])
    full = full or bool(follow_ups)  # runs the fired items started are due now: claim again
    return Claims(
        (
            Claimed(item_id=item_id, lease_token=token, run=states[run_id])
            for item_id, run_id in run_items
            if run_id in states
        ),
        full=full,
        next_due_at=None if full else next_due_at(tx, scope),
    )


def _scope_filter(scope: AppScope) -> tuple[str, list[Any]]:
    """`app_id = ?` plus, for a worker serving some functions only, which run items it may take."""
    if scope.functions is None:
        return "app_id = ?", [scope.app_id]
    served = f"function_id IN ({marks(len(scope.functions))})" if scope.functions else "1 = 0"
    params: list[Any] = [scope.app_id, *scope.functions]
    if scope.known is not None:
        orphan = f"function_id NOT IN ({marks(len(scope.known))})" if scope.known else "1 = 1"
        served = f"{served} OR {orphan}"
        params += scope.known
    return f"app_id = ? AND (kind <> 'run' OR {served})", params


def _lease(
    tx: Tx, where: str, params: list[Any], owner: str, token: str, limit: int, now: int, lease_ms: int
) -> list[Leased]:
    """Lease the earliest due items in one statement (no concurrency limits to respect)."""
    rows = tx.all(
        f"{_TAKE} WHERE id IN (SELECT id FROM queue WHERE {where} AND due_at <= ? AND {crashes.NOT_QUARANTINED}"
        f" AND {NOT_PAUSED}"
        f" ORDER BY due_at, id LIMIT ? {tx.lock_suffix}) RETURNING {CLAIM_COLUMNS}",
        (token, owner, now + lease_ms, *params, now, now, limit),
    )
    return [Leased(*r) for r in rows]


def _lease_within_limits(
    tx: Tx, where: str, params: list[Any], owner: str, token: str, limit: int, now: int, lease_ms: int
) -> list[Leased]:
    """Lease the earliest due items whose concurrency keys have free slots (the caller holds the
    claim lock)."""
    busy = _busy_keys(tx, now)
    full = [k for k, (count, most) in busy.items() if count >= most]
    skip_full = ""
    if full:
        skip_full = (
            f" AND (ck1 IS NULL OR ck1 NOT IN ({marks(len(full))}))"
            f" AND (ck2 IS NULL OR ck2 NOT IN ({marks(len(full))}))"
        )
    rows = tx.all(
        f"SELECT {_CANDIDATE_COLUMNS} FROM queue WHERE {where} AND due_at <= ?"
        f" AND {crashes.NOT_QUARANTINED} AND {NOT_PAUSED}{skip_full} ORDER BY due_at, id LIMIT ? {tx.lock_suffix}",
        (*params, now, now, *full, *full, limit * 2 if busy else limit),
    )
    taken = _within_limits([Leased(*r) for r in rows], busy, limit)
    if taken:
        tx.run(f"{_TAKE} WHERE id IN ({marks(len(taken))})", (token, owner, now + lease_ms, *[i.id for i in taken]))
    return taken


def _busy_keys(tx: Tx, now: int) -> dict[str, list[int]]:
    """Concurrency keys with leased (executing) items: key -> [count, limit] (one statement)."""
    busy: dict[str, list[int]] = {}
    counts = " UNION ALL ".join(
        f"SELECT {n}, {column}, COUNT(*), MAX({column}_limit) FROM queue WHERE lease_token IS NOT NULL"
        f" AND due_at > ? AND {column} IS NOT NULL GROUP BY {column}"
        for n, column in ((1, "ck1"), (2, "ck2"))
    )
    for _, key, count, most in tx.all(counts + " ORDER BY 1, 2", (now, now)):
        entry = busy.setdefault(key, [0, most])
        entry[0] += count
    return busy


def _within_limits(items: list[Leased], busy: dict[str, list[int]], limit: int) -> list[Leased]:
    """Take due items in order while each of their concurrency keys has a free slot."""
    taken = []
    for item in items:
        keys = [(item.ck1, item.ck1_limit), (item.ck2, item.ck2_limit)]
        if any(k is not None and most is not None and busy.get(k, [0, most])[0] >= most for k, most in keys):
            continue
        for k, most in keys:
            if k is not None and most is not None:
                busy.setdefault(k, [0, most])[0] += 1
        taken.append(item)
        if len(taken) == limit:
            break
    return taken


def _fire_cron(tx: Tx, item_id: str, payload: dict[str, Any], now: int) -> list[EventRecord]:
    """Start the scheduled run and move the item to the next tick after now (one catch-up at most)."""
    tx.run(
        "UPDATE queue SET due_at = ?, lease_token = NULL, owner = NULL WHERE id = ?", (next_tick(payload, now), item_id)
    )
    return [tick_event(payload, now)]


def _fire_timeout(tx: Tx, item_id: str, run_id: str, payload: dict[str, Any], now: int) -> list[EventRecord]:
    tx.run("DELETE FROM queue WHERE id = ?", (item_id,))
    status = tx.one("SELECT status FROM runs WHERE id = ?", (run_id,))
    if status and (payload["type"] == "finish" or status[0] == "queued"):
        return cancel_run(tx, run_id, now, f"{payload['type']} timeout reached") or []
    return []


def _load_states(tx: Tx, run_ids: list[str], now: int, with_pending: list[str]) -> dict[str, RunState]:
    """Load the claimed runs; `with_pending` are those that ever stored a step with a deadline."""
    if not run_ids:
        return {}
    ids = marks(len(run_ids))
    if with_pending:
        _resolve_deadlines(tx, with_pending, now)
    runs = _start_runs(
        tx,
        tx.all(
            "SELECT id, app_id, function_id, status, event_ids, attempt, created_at,"
            " started_at, finish_timeout_ms, parent_run_id FROM runs"
            f" WHERE id IN ({ids}) ORDER BY id",
            run_ids,
        ),
        now,
    )
    event_ids = [eid for r in runs for eid in _loads(r[4])]
    events = {e.id: e for e in get_events(tx, event_ids)}
    memos: dict[str, dict[str, MemoEntry]] = {rid: {} for rid in run_ids}
    for row in tx.all(
        "SELECT run_id, key, step_id, kind, status, attempts, output, error, started_at, ended_at,"
        f" deadline, seq FROM steps WHERE run_id IN ({ids}) ORDER BY run_id, seq, key",
        run_ids,
    ):
        memos[row[0]][row[1]] = MemoEntry(
            key=row[1],
            step_id=row[2],
            kind=row[3],
            status=row[4],
            attempts=row[5],
            output=_loads(row[6]),
            error=_loads(row[7]),
            started_at=row[8],
            ended_at=row[9],
            deadline=row[10],
            seq=row[11],
        )
    return {
        r[0]: RunState(
            run_id=r[0],
            app_id=r[1],
            function_id=r[2],
            status=r[3],
            events=[events[i] for i in _loads(r[4]) if i in events],
            memo=memos[r[0]],
            attempt=r[5],
            created_at=r[6],
            started_at=r[7],
            parent_run_id=r[9],
        )
        for r in runs
        if r[3] == "running"
    }


def _start_runs(tx: Tx, runs: list[Any], now: int) -> list[Any]:
    """Queued runs become running (rows updated to match); a finish timeout starts counting now."""
    starting = [r for r in runs if r[3] == "queued"]
    if not starting:
        return runs
    tx.run(
        f"UPDATE runs SET status = 'running', started_at = ? WHERE id IN ({marks(len(starting))})",
        (now, *[r[0] for r in starting]),
    )
    for row in starting:
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
    return [(*r[:3], "running", *r[4:7], now, *r[8:]) if r[3] == "queued" else r for r in runs]


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


def extend_leases(tx: Tx, tokens: dict[str, str], until: int) -> set[str]:
    """Extend the leases still ours; return the items that are not (gone, or leased again).

    An item another transaction holds is skipped, not waited for (PostgreSQL: SKIP LOCKED). The
    holder is almost always a commit of the same worker in another group, which may itself be
    waiting for an item this group holds: waiting would deadlock, and the deadlock detector
    needs a second to break it, long enough for leases to run out. A skipped item that is still
    ours is not lost; the next extension gets it."""
    ids = sorted(tokens)
    held = tx.all(f"SELECT id, lease_token FROM queue WHERE id IN ({marks(len(ids))}) {tx.lock_suffix}", ids)
    extended = [item_id for item_id, token in held if tokens[item_id] == token]
    if extended:
        tx.run(f"UPDATE queue SET due_at = ? WHERE id IN ({marks(len(extended))})", (until, *extended))
    skipped = sorted(set(ids) - {item_id for item_id, _ in held})
    busy = (
        {
            item_id
            for item_id, token in tx.all(
                f"SELECT id, lease_token FROM queue WHERE id IN ({marks(len(skipped))})", skipped
            )
            if tokens[item_id] == token
        }
        if skipped
        else set()
    )
    return set(ids) - set(extended) - busy


def release(tx: Tx, item_id: str, token: str, due_at: int) -> None:
    tx.run(
        "UPDATE queue SET lease_token = NULL, owner = NULL, due_at = ? WHERE id = ? AND lease_token = ?",
        (due_at, item_id, token),
    )


def next_due_at(tx: Tx, scope: AppScope) -> int | None:
    where, params = _scope_filter(scope)
    row = tx.one(f"SELECT MIN(due_at) FROM queue WHERE {where} AND {NOT_PAUSED}", params)
    return None if row is None or row[0] is None else int(row[0])
