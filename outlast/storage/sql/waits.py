"""Waits: stored by steps and cancel rules, found by incoming events (by index when they can be).

`wait_fields` lists, per event name, the incoming fields equality waits index on (a conjunction's
several fields joined by ','), plus
EXPRESSION_FIELD when any expression wait was ever stored; one read tells an event what to
look up. Indexed waits are resolved in the ingest's transaction; expression waits (no index can
find them) are matched after it, outside any write (`expression_waits`).
"""

from __future__ import annotations

import threading
from typing import Any

from outlast.core import jsonutil
from outlast.core.expressions import incoming_values
from outlast.core.models import PENDING_STEP_STATUSES, EventRecord, WaitSpec
from outlast.storage.base import Planner
from outlast.storage.sql.lookback import earliest_match
from outlast.storage.sql.rows import EXPRESSION_FIELD, WAITS, wait_field, wait_row
from outlast.storage.sql.run_end import cancel_run, record_effect
from outlast.storage.sql.tx import Tx, marks

_WAIT_COLUMNS = "w.id, w.run_id, w.kind, w.step_key, w.expires_at"
#: the wait kinds that are parts of one step (wait_for_any's "any"; wait_for_all's "all:<i>")
PART_KINDS = ("any",)


def add_wait(tx: Tx, run_id: str, w: WaitSpec, now: int, planner: Planner | None = None) -> None:
    """Store a wait; one with lookback whose event already came resolves its step (written by
    this transaction) at once instead. A part of a wait_for_any/all whose step another part
    already resolved is not stored."""
    if (w.kind in PART_KINDS or w.kind.startswith("all:")) and not _pending(tx, run_id, str(w.step_key)):
        return
    found = earliest_match(tx, planner, run_id, w, now) if w.lookback_ms and w.step_key and planner else None
    if found is not None and w.step_key is not None:
        if resolve_step(tx, run_id, w.kind, w.step_key, found[1], now):
            record_effect(tx, found[0], run_id, "resumed")
        if w.kind.startswith("all:") or not _pending(tx, run_id, w.step_key):
            return
    tx.run(WAITS.insert_sql, wait_row(run_id, w, now))
    add_wait_field(tx, *wait_field(w))


def _pending(tx: Tx, run_id: str, step_key: str) -> bool:
    return (
        tx.one("SELECT 1 FROM steps WHERE run_id = ? AND key = ? AND status = 'waiting'", (run_id, step_key))
        is not None
    )


def resolve_step(tx: Tx, run_id: str, kind: str, step_key: str, payload: Any, now: int) -> bool:
    """Resolve the step a wait belongs to with the event that matched it (a wait_for_all part
    records its match, and resolves the step once every part has one)."""
    if kind.startswith("all:"):
        return complete_part(tx, run_id, step_key, int(kind[4:]), payload, now)
    return complete_wait(tx, run_id, kind, step_key, payload, now)


def complete_part(tx: Tx, run_id: str, step_key: str, index: int, payload: Any, now: int) -> bool:
    """Keep the first match of part `index` of a wait_for_all (in the step's timeout output, so a
    timeout returns the matches so far); the last part to match completes the step."""
    row = tx.one(
        f"SELECT timeout_output FROM steps WHERE run_id = ? AND key = ? AND status = 'waiting' {tx.row_lock}",
        (run_id, step_key),
    )
    parts = jsonutil.loads(row[0]) if row is not None else None
    if not isinstance(parts, list) or not 0 <= index < len(parts) or parts[index] is not None:
        return False
    parts[index] = payload
    tx.run("DELETE FROM waits WHERE run_id = ? AND step_key = ? AND kind = ?", (run_id, step_key, f"all:{index}"))
    if all(p is not None for p in parts):
        return complete_wait(tx, run_id, "all", step_key, parts, now)
    tx.run(
        "UPDATE steps SET timeout_output = ? WHERE run_id = ? AND key = ?", (jsonutil.dumps(parts), run_id, step_key)
    )
    return True


def add_wait_field(tx: Tx, event_name: str, match_field: str) -> None:
    tx.run(
        "INSERT INTO wait_fields (event_name, match_field) VALUES (?, ?) ON CONFLICT DO NOTHING",
        (event_name, match_field),
    )
    known = tx.memo.get(("wait_fields", event_name))
    if known is not None and match_field not in known:
        known.append(match_field)
        known.sort()


def wait_fields(tx: Tx, event_name: str) -> list[str]:
    """The fields waits for events of this name index on (EXPRESSION_FIELD: expression waits exist).

    Read once per transaction: a group commit ends many runs, and each run's end ingests an
    `inngest/function.finished` event, so the read is worth keeping (`add_wait_field` keeps it
    current). Requests of a group were all submitted before its transaction began, so a wait
    committed before an event was sent is always seen; a wait another process commits during the
    transaction is seen by the next one, as it would be by an event read a moment earlier.
    """
    key = ("wait_fields", event_name)
    if (known := tx.memo.get(key)) is None:
        known = tx.memo[key] = [
            f
            for (f,) in tx.all(
                "SELECT match_field FROM wait_fields WHERE event_name = ? ORDER BY match_field", (event_name,)
            )
        ]
    return list(known)


def waited_for(tx: Tx, event_name: str) -> bool:
    """Whether any wait may be stored for events of this name (so an event may resolve one)."""
    return bool(wait_fields(tx, event_name))


def resolve_waits(tx: Tx, planner: Planner, event: EventRecord, now: int) -> list[EventRecord]:
    """Resolve the waits the event matches, oldest first; return the events that causes."""
    payload = event.to_dict()
    found: list[Any] = []
    for field in wait_fields(tx, event.name):
        if field == EXPRESSION_FIELD:
            record_check(tx, event, now)  # matched after this transaction (`expression_waits`)
        else:
            found += _indexed_waits(tx, planner, event.name, field, payload)
    follow_ups: list[EventRecord] = []
    for _wait_id, run_id, kind, step_key, expires_at in sorted(found, key=lambda r: r[0]):
        if expires_at <= now:
            continue  # timed out: its run's claim resolves it
        if kind == "cancel":
            follow_ups += cancel_run(tx, run_id, now, "cancelled by event " + event.name, by_event=event.id) or []
        elif resolve_step(tx, run_id, kind, step_key, payload, now):
            record_effect(tx, event.id, run_id, "resumed")
    return follow_ups


def _indexed_waits(tx: Tx, planner: Planner, name: str, field: str, payload: dict[str, Any]) -> list[Any]:
    """The waits the index finds for this field's value; a wait whose expression says more than
    its indexed equalities (`expression` kept) must also match it, evaluated with its trigger."""
    values = incoming_values(field, payload)
    rows = tx.all(
        f"SELECT {_WAIT_COLUMNS}, w.expression FROM waits w"
        f" WHERE w.event_name = ? AND w.match_field = ? AND w.match_value IN ({marks(len(values))})",
        (name, field, *values),
    )
    return [row[:5] for row in rows if row[5] is None or _matches(tx, planner, row[1], row[5], payload)]


def _matches(tx: Tx, planner: Planner, run_id: str, expression: str, payload: dict[str, Any]) -> bool:
    trigger = tx.one(
        "SELECT e.name, e.data, e.user_data, e.ts, e.dedupe_id, e.id"
        " FROM runs r JOIN events e ON e.id = r.first_event_id WHERE r.id = ?",
        (run_id,),
    )
    return trigger is not None and planner.matches(expression, _event_row_dict(trigger), payload)


#: how many expression checks this process's transactions recorded and committed
#: (`expression_waits`): a matcher that saw this number has nothing new of this process's to look
#: at. Counted once the transaction has committed (`count_committed_checks`), never before: a
#: matcher that read the number mid-transaction, and so found nothing, is woken again by the commit
checks_recorded = 0
_COUNTING = threading.Lock()
#: the checks a transaction recorded so far (in its memo, which lives for one transaction)
_RECORDED = "expression checks recorded"


def record_check(tx: Tx, event: EventRecord, now: int) -> None:
    """Leave the event to the matcher (`expression_waits`), naming the newest expression wait of
    its name stored now: only waits up to it may match the event, as if it were matched here."""
    row = tx.one("SELECT MAX(id) FROM waits WHERE event_name = ? AND match_field IS NULL", (event.name,))
    if row is None or row[0] is None:
        return
    tx.run(
        "INSERT INTO wait_checks (event_id, event_name, last_wait, received_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (event.id, event.name, row[0], now),
    )
    tx.memo[_RECORDED] = tx.memo.get(_RECORDED, 0) + 1


def count_committed_checks(tx: Tx) -> None:
    """Once `tx` has committed: count the checks it recorded (see `checks_recorded`)."""
    global checks_recorded
    if recorded := tx.memo.pop(_RECORDED, 0):
        with _COUNTING:
            checks_recorded += recorded


def complete_wait(tx: Tx, run_id: str, kind: str, step_key: str, payload: Any, now: int) -> bool:
    """Resolve a wait or invoke step with the event that matched it, and wake its run."""
    status, error = "completed", None
    output: Any = payload
    if kind == "invoke":
        data = payload["data"]
        status = "failed" if "error" in data else "completed"
        output, error = (None, data["error"]) if status == "failed" else (data.get("result"), None)
    changed = tx.run(
        "UPDATE steps SET status = ?, output = ?, error = ?, ended_at = ?, deadline = NULL"
        f" WHERE run_id = ? AND key = ? AND status IN ({marks(len(PENDING_STEP_STATUSES))})",
        (
            status,
            jsonutil.dumps(output),
            jsonutil.dumps(error) if error else None,
            now,
            run_id,
            step_key,
            *PENDING_STEP_STATUSES,
        ),
    )
    tx.run("DELETE FROM waits WHERE run_id = ? AND step_key = ?", (run_id, step_key))
    if changed:
        wake(tx, run_id, now)
    return bool(changed)


def wake(tx: Tx, run_id: str, now: int) -> None:
    """Make a suspended run due now; a leased one resumes when its attempt ends."""
    tx.run(
        "UPDATE queue SET woken = 1, due_at = CASE WHEN lease_token IS NULL THEN ? ELSE due_at END"
        " WHERE run_id = ? AND kind = 'run'",
        (now, run_id),
    )


def _event_row_dict(row: Any) -> dict[str, Any]:
    name, data, user, ts, dedupe_id, internal_id = row
    return {
        "id": dedupe_id or internal_id,
        "name": name,
        "data": jsonutil.loads(data),
        "user": jsonutil.loads(user),
        "ts": ts,
    }
