"""Expression waits, matched after the ingest that brought their event (issue 28).

A wait whose `if` cannot be indexed (`||`, a comparison, a function: not an equality
conjunction) can only be found by evaluating its expression against each incoming event of its
name. Doing that inside the ingest transaction held every other sender for as long as it took
(a second per event with 20,000 such waits: SQLite has one writer). So ingest only records a
check (`waits.record_check`: the event, and the newest expression wait of its name then stored),
and the matcher does the rest in three parts, none of which holds the writer for long:

1. `pending`: read the checks, oldest first, with each name's candidate waits and their runs'
   trigger events (a read, served apart from the writes where the backend can);
2. `evaluate`: evaluate the expressions, outside any transaction (the caller runs it in a
   thread of its own);
3. `apply`: in one short write transaction, take each check (deleting it: two matchers never
   both apply one) and resolve the waits it matched, as ingest would have.

A wait resolves at most once: resolving it completes its step only while that step is still
pending (the same guard as an indexed wait's), so a wait that timed out, or that another event
resolved, in between is left alone. A wait stored after the event never matches it (`last_wait`),
and a check stays stored until it is applied: a matcher that dies midway leaves it to the next.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from outlast.core.models import EventRecord
from outlast.storage.base import Planner
from outlast.storage.sql.ingest import ingest
from outlast.storage.sql.read import get_events
from outlast.storage.sql.run_end import cancel_run, record_effect
from outlast.storage.sql.tx import Tx
from outlast.storage.sql.waits import _WAIT_COLUMNS, _event_row_dict, resolve_step

#: checks one pass takes on
BATCH = 100
#: evaluations between two hand-overs of the GIL (else another thread waits out the switch interval)
YIELD_EVERY = 200


@dataclass(slots=True)
class Check:
    """One event to match, its candidate waits (read), and what it matched (evaluated)."""

    event: EventRecord
    last_wait: str
    received_at: int
    #: (wait columns..., expression, trigger event columns...) of the name's expression waits
    candidates: list[Any] = field(default_factory=list)
    matched: list[Any] = field(default_factory=list)


def pending(tx: Tx, limit: int = BATCH) -> list[Check]:
    """The oldest checks, each with the expression waits of its name up to its `last_wait`."""
    rows = tx.all(
        "SELECT event_id, event_name, last_wait, received_at FROM wait_checks ORDER BY received_at, event_id LIMIT ?",
        (limit,),
    )
    if not rows:
        return []
    events = {e.id: e for e in get_events(tx, [r[0] for r in rows])}
    # an event retention already removed matches nothing (no wait id is <= ""): its check is dropped
    checks = [
        Check(event=events.get(r[0]) or _gone(r[0], r[1]), last_wait=r[2] if r[0] in events else "", received_at=r[3])
        for r in rows
    ]
    by_name: dict[str, list[Check]] = {}
    for check in checks:
        by_name.setdefault(check.event.name, []).append(check)
    for name, named in by_name.items():
        newest = max(c.last_wait for c in named)
        waits = tx.all(
            f"SELECT {_WAIT_COLUMNS}, w.expression, e.name, e.data, e.user_data, e.ts, e.dedupe_id, e.id"
            " FROM waits w JOIN runs r ON r.id = w.run_id JOIN events e ON e.id = r.first_event_id"
            " WHERE w.event_name = ? AND w.match_field IS NULL AND w.id <= ? ORDER BY w.id",
            (name, newest),
        )
        for check in named:
            check.candidates = [w for w in waits if w[0] <= check.last_wait]
    return checks


def evaluate(planner: Planner, checks: list[Check]) -> list[Check]:
    """Evaluate each check's candidates against its event (no transaction: pure computation)."""
    for check in checks:
        if not check.candidates:
            continue
        payload = check.event.to_dict()
        matched = []
        for i, w in enumerate(check.candidates):
            if i % YIELD_EVERY == YIELD_EVERY - 1:
                time.sleep(0)  # hand the GIL to the writer and the loop: they need it only briefly
            if planner.matches(w[5], _event_row_dict(w[6:]), payload):
                matched.append(w[:5])
        check.matched, check.candidates = matched, []
    return checks


def apply(tx: Tx, planner: Planner, checks: list[Check], now: int) -> int:
    """Take each check and resolve what it matched, oldest wait first; return how many were taken."""
    taken = 0
    follow_ups: list[EventRecord] = []
    for check in checks:
        if tx.run("DELETE FROM wait_checks WHERE event_id = ?", (check.event.id,)) != 1:
            continue  # another matcher applied it
        taken += 1
        payload = check.event.to_dict()
        for _wait_id, run_id, kind, step_key, expires_at in check.matched:
            if expires_at <= check.received_at:
                continue  # it had timed out when the event came: its run's claim resolves it
            if kind == "cancel":
                reason = "cancelled by event " + check.event.name
                follow_ups += cancel_run(tx, run_id, now, reason, by_event=check.event.id) or []
            elif resolve_step(tx, run_id, kind, step_key, payload, now):
                record_effect(tx, check.event.id, run_id, "resumed")
    if follow_ups:
        ingest(tx, planner, follow_ups, now)
    return taken


def _gone(event_id: str, name: str) -> EventRecord:
    return EventRecord(id=event_id, name=name, data={}, user={}, ts=0)
