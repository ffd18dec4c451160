"""Lookback: a wait resolved at once by an event that arrived before it was stored.

The candidates are read through the `events_by_name_id` index (event name, then id: ids are
ULIDs whose first characters are the time they were made), from the start of the window, in
pages, oldest first; nothing outside the window of that one name is read. An event a wait of the
same run was resumed by (an `event_effects` row) is passed over, so two waits of a run with
lookback never return the same event.

On PostgreSQL, an event whose ingest transaction is still open when the wait's commit looks
back is seen by neither side (as with any wait, the event is not yet visible and the wait not
yet stored); SQLite serialises the two.
"""

from __future__ import annotations

from typing import Any

from outlast.core import jsonutil
from outlast.core.expressions import lookup
from outlast.core.ids import ulid_floor
from outlast.core.models import WaitSpec
from outlast.storage.base import Planner
from outlast.storage.sql.tx import Tx

PAGE = 500


def earliest_match(tx: Tx, planner: Planner, run_id: str, w: WaitSpec, now: int) -> tuple[str, dict[str, Any]] | None:
    """The (internal id, payload) of the earliest event the wait would have matched in its
    lookback window, or None."""
    assert w.lookback_ms is not None
    since = now - w.lookback_ms
    returned = {e for (e,) in tx.all("SELECT event_id FROM event_effects WHERE run_id = ?", (run_id,))}
    trigger = _trigger(tx, run_id) if w.match_field is None and w.expression not in (None, "true") else {}
    after, op = ulid_floor(since), ">="
    while True:
        rows = tx.all(
            "SELECT id, name, data, user_data, ts, dedupe_id, received_at FROM events"
            f" WHERE name = ? AND id {op} ? ORDER BY id LIMIT ?",
            (w.event_name, after, PAGE),
        )
        for internal_id, name, data, user, ts, dedupe_id, received_at in rows:
            if received_at < since or internal_id in returned:
                continue
            payload = {
                "id": dedupe_id or internal_id,
                "name": name,
                "data": jsonutil.loads(data),
                "user": jsonutil.loads(user),
                "ts": ts,
            }
            if _matches(planner, w, trigger, payload):
                return internal_id, payload
        if len(rows) < PAGE:
            return None
        after, op = rows[-1][0], ">"


def _matches(planner: Planner, w: WaitSpec, trigger: dict[str, Any], payload: dict[str, Any]) -> bool:
    if w.match_field is not None:
        return jsonutil.dumps(lookup(payload, w.match_field)) == w.match_value
    return w.expression in (None, "true") or planner.matches(str(w.expression), trigger, payload)


def _trigger(tx: Tx, run_id: str) -> dict[str, Any]:
    row = tx.one(
        "SELECT e.name, e.data, e.user_data, e.ts, e.dedupe_id, e.id FROM runs r"
        " JOIN events e ON e.id = r.first_event_id WHERE r.id = ?",
        (run_id,),
    )
    if row is None:
        return {}
    name, data, user, ts, dedupe_id, internal_id = row
    return {
        "id": dedupe_id or internal_id,
        "name": name,
        "data": jsonutil.loads(data),
        "user": jsonutil.loads(user),
        "ts": ts,
    }
