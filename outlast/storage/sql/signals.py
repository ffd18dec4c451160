"""Signals: a name one run waits on at a time (`signal_waits`), and signals held for a wait that
has not begun yet (`held_signals`).

A signal is delivered in the transaction that takes its wait's row: the row is deleted and the
step resolved together, so of two senders racing (on PostgreSQL, in different processes) one
deletes the row and resumes the run, and the other finds no row. A wait takes a held signal the
same way: the held row is deleted in the transaction that resolves the step.
"""

from __future__ import annotations

from typing import Any

from outlast.core import jsonutil
from outlast.core.ids import new_ulid
from outlast.core.models import SignalWait
from outlast.core.signals import conflict_error
from outlast.storage.sql.tx import Tx
from outlast.storage.sql.waits import wake


def send_signal(tx: Tx, signal: str, data: dict[str, Any], now: int, hold_until: int | None) -> str | None:
    """Resume the run waiting on `signal` with `data` and return its id; else hold the signal until
    `hold_until` (when given) and return None."""
    taken = tx.one(
        "DELETE FROM signal_waits WHERE signal = ? AND expires_at > ? RETURNING run_id, step_key", (signal, now)
    )
    if taken is not None and _resolve(tx, taken[0], taken[1], {"signal": signal, "data": data}, now):
        return str(taken[0])
    if hold_until is not None:
        tx.run(
            "INSERT INTO held_signals (id, signal, data, expires_at, created_at) VALUES (?, ?, ?, ?, ?)",
            (new_ulid(now), signal, jsonutil.dumps(data), hold_until, now),
        )
    return None


def add_signal_wait(tx: Tx, run_id: str, w: SignalWait, now: int) -> None:
    """Store a signal wait whose step row this transaction wrote: resolved at once by the oldest
    signal held for its name, else it takes the name (or fails its step on a conflict)."""
    held = tx.one(
        "DELETE FROM held_signals WHERE id = (SELECT id FROM held_signals WHERE signal = ? AND expires_at > ?"
        f" ORDER BY id LIMIT 1 {tx.lock_suffix}) RETURNING data",
        (w.signal, now),
    )
    if held is not None:
        _resolve(tx, run_id, w.step_key, {"signal": w.signal, "data": jsonutil.loads(held[0])}, now)
        return
    taken = tx.one(
        "INSERT INTO signal_waits (signal, run_id, step_key, expires_at, created_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (signal) DO UPDATE SET run_id = excluded.run_id, step_key = excluded.step_key,"
        " expires_at = excluded.expires_at, created_at = excluded.created_at"
        " WHERE ? = 1 OR signal_waits.expires_at <= ? RETURNING run_id",
        (w.signal, run_id, w.step_key, w.expires_at, now, 1 if w.replace else 0, now),
    )
    if taken is None:
        _fail(tx, run_id, w.step_key, conflict_error(w.signal), now)


def _resolve(tx: Tx, run_id: str, step_key: str, output: dict[str, Any], now: int) -> bool:
    """Complete the waiting step with `output` (Inngest's shape, `{"signal", "data"}`) and wake its run."""
    changed = tx.run(
        "UPDATE steps SET status = 'completed', output = ?, ended_at = ?, deadline = NULL"
        " WHERE run_id = ? AND key = ? AND status = 'waiting'",
        (jsonutil.dumps(output), now, run_id, step_key),
    )
    if changed:
        wake(tx, run_id, now)
    return bool(changed)


def _fail(tx: Tx, run_id: str, step_key: str, error: dict[str, Any], now: int) -> None:
    changed = tx.run(
        "UPDATE steps SET status = 'failed', error = ?, ended_at = ?, deadline = NULL"
        " WHERE run_id = ? AND key = ? AND status = 'waiting'",
        (jsonutil.dumps(error), now, run_id, step_key),
    )
    if changed:
        wake(tx, run_id, now)


def prune_signals(tx: Tx, now: int, limit: int) -> int:
    """Delete up to `limit` held signals and up to `limit` signal waits that expired (an expired
    wait's row is ignored already: its step resolves at its deadline); return how many."""
    deleted = 0
    for table, key in (("held_signals", "id"), ("signal_waits", "signal")):
        deleted += tx.run(
            f"DELETE FROM {table} WHERE {key} IN"
            f" (SELECT {key} FROM {table} WHERE expires_at <= ? ORDER BY expires_at, {key} LIMIT ?)",
            (now, limit),
        )
    return deleted
