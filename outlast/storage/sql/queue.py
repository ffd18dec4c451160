"""Claiming due work: leases, concurrency keys, and what fires inside a claim (timeouts, crons,
run starts, deadlines that passed)."""

from __future__ import annotations

from typing import Any

from outlast.core import jsonutil
from outlast.core.cron_items import next_tick, tick_event
from outlast.core.ids import new_token
from outlast.core.models import AppScope, Claimed, Claims, EventRecord
from outlast.storage.base import Planner
from outlast.storage.sql import crashes
from outlast.storage.sql.ingest import ingest
from outlast.storage.sql.pausing import NOT_PAUSED
from outlast.storage.sql.queue_items import CLAIM_COLUMNS, Leased
from outlast.storage.sql.run_end import cancel_run
from outlast.storage.sql.run_states import load_states
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
    """Lease up to `limit` due items of the scope, fire the timeouts and crons among them, and
    return the runs of the others, started; short of `limit` and firing none, also the scope's
    next due time (`Claims`): the worker goes idle on what this transaction saw.

    Concurrency keys are counted, under the claim lock, only when an item with a key is among
    the first due: claims of other work neither wait for the lock nor read every key's leases
    (two statements of the three an empty claim cost on PostgreSQL). Their items count towards
    no limit, so they need neither."""
    token = new_token()
    where, params = _scope_filter(scope)
    lease = (tx, where, params, owner, token, limit, now, lease_ms)
    if not planner.has_concurrency_limits():
        leased = _lease(*lease)
    elif (unkeyed := _lease_unkeyed(*lease)) is not None:
        leased = unkeyed
    else:
        leased = _lease_within_limits(*lease)
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
    full = full or bool(follow_ups)  # runs the fired items started are due now: claim again
    return _claimed(tx, scope, run_items, token, now, pending=pending, full=full)


def _claimed(
    tx: Tx, scope: AppScope, run_items: list[tuple[str, str]], token: str, now: int, *, pending: set[Any], full: bool
) -> Claims:
    """The leased run items' runs, started, and unless `full` the scope's next due time (read
    with them on PostgreSQL)."""
    run_ids = [r for _, r in run_items]
    states, due = load_states(
        tx, run_ids, now, [r for r in run_ids if r in pending], next_due=None if full else _next_due_query(scope)
    )
    return Claims(
        (
            Claimed(item_id=item_id, lease_token=token, run=states[run_id])
            for item_id, run_id in run_items
            if run_id in states
        ),
        full=full,
        next_due_at=None if full else due[0] if due is not None else next_due_at(tx, scope),
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


def _lease_unkeyed(
    tx: Tx, where: str, params: list[Any], owner: str, token: str, limit: int, now: int, lease_ms: int
) -> list[Leased] | None:
    """Lease the earliest due items, none with a concurrency key, as `_lease` does (without the
    claim lock: they count towards no limit); or None, leasing nothing, when an item with a key
    is among the first `limit` due (then the claim counts keys, `_lease_within_limits`; on
    PostgreSQL this statement has taken the claim lock for it, before any row lock).

    One statement on PostgreSQL; on SQLite one when it leases, and a second to tell an empty
    queue from one with keyed items first."""
    due = f"{where} AND due_at <= ? AND {crashes.NOT_QUARANTINED} AND {NOT_PAUSED}"
    head = (
        f"EXISTS (SELECT 1 FROM (SELECT ck1, ck2 FROM queue WHERE {due} ORDER BY due_at, id LIMIT ?) h"
        " WHERE h.ck1 IS NOT NULL OR h.ck2 IS NOT NULL)"
    )
    head_params = (*params, now, now, limit)
    take_params = (token, owner, now + lease_ms, *params, now, now)

    def lease(limit_sql: str) -> str:
        return (
            f"{_TAKE} WHERE id IN (SELECT id FROM queue WHERE {due} AND ck1 IS NULL AND ck2 IS NULL"
            f" ORDER BY due_at, id LIMIT {limit_sql} {tx.lock_suffix}) RETURNING {CLAIM_COLUMNS}"
        )

    if tx.dialect == "postgresql":
        marker = ", ".join(["NULL"] * (len(CLAIM_COLUMNS.split(",")) - 1))
        rows = tx.all(
            f"WITH keyed AS (SELECT {head} AS k),"
            f" taken AS ({lease('(SELECT CASE WHEN k THEN 0 ELSE ? END FROM keyed)')})"
            f" SELECT {CLAIM_COLUMNS} FROM taken UNION ALL"
            f" SELECT {marker}, CASE WHEN {tx.claim_lock} IS NULL THEN 0 END FROM keyed WHERE k",
            (*head_params, *take_params, limit),
        )
        return None if any(r[0] is None for r in rows) else [Leased(*r) for r in rows]
    rows = tx.all(lease(f"(SELECT CASE WHEN {head} THEN 0 ELSE ? END)"), (*take_params, *head_params, limit))
    if rows:
        return [Leased(*r) for r in rows]
    keyed = tx.one(f"SELECT CASE WHEN {head} THEN 1 ELSE 0 END", head_params)
    return None if keyed and keyed[0] else []


def _lease_within_limits(
    tx: Tx, where: str, params: list[Any], owner: str, token: str, limit: int, now: int, lease_ms: int
) -> list[Leased]:
    """Lease the earliest due items whose concurrency keys have free slots (the caller holds the
    claim lock: `_lease_unkeyed` took it)."""
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
    sql, params = _next_due_query(scope)
    row = tx.one(sql, params)
    return None if row is None or row[0] is None else int(row[0])


def _next_due_query(scope: AppScope) -> tuple[str, list[Any]]:
    """The scope's smallest `due_at` (one row, NULL for no item), as a query and its parameters."""
    where, params = _scope_filter(scope)
    return f"SELECT MIN(due_at) FROM queue WHERE {where} AND {NOT_PAUSED}", params
