"""Lookback: a wait resolved at once by an event that arrived before it was stored.

Equality waits (`match`, or `event.x == async.y`) are looked up by index. The first lookback wait
on a field of an event name registers the pair in `lookback_fields` and indexes the field's value
of that name's events of the last 7 days (once); from then on, ingest adds each event's value to
`event_values` (event name, field, value, event id), so a wait finds its candidates by one index
range, oldest first. Expression waits with lookback read the events of their name in the window,
by the `events_by_name_id` index (event name, then id: ids are ULIDs that start with their time).
An event a wait of the same run was resumed by (an `event_effects` row) is passed over, so two
waits of a run never return the same event.

On PostgreSQL, an event whose ingest transaction is still open when the wait's commit looks back
is seen by neither side (as with any wait: the event is not yet visible, the wait not yet
stored); SQLite serialises the two.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from outlast.core import jsonutil
from outlast.core.expressions import lookup
from outlast.core.ids import ulid_floor
from outlast.core.models import EventRecord, WaitSpec
from outlast.core.ops import MAX_LOOKBACK_MS
from outlast.storage.base import Planner
from outlast.storage.sql.tx import Tx

PAGE = 500
_EVENT_COLUMNS = "e.id, e.name, e.data, e.user_data, e.ts, e.dedupe_id, e.received_at"
#: keyset-paged candidate queries (`_pages` fills in `{op}`)
_BY_VALUE = (
    "SELECT " + _EVENT_COLUMNS + " FROM event_values v JOIN events e ON e.id = v.event_id"
    " WHERE v.event_name = ? AND v.field = ? AND v.value = ? AND v.event_id {op} ? ORDER BY v.event_id LIMIT ?"
)
_BY_NAME = "SELECT " + _EVENT_COLUMNS + " FROM events e WHERE e.name = ? AND e.id {op} ? ORDER BY e.id LIMIT ?"
_INSERT_VALUE = (
    "INSERT INTO event_values (event_name, field, value, event_id) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
)


def earliest_match(tx: Tx, planner: Planner, run_id: str, w: WaitSpec, now: int) -> tuple[str, dict[str, Any]] | None:
    """The (internal id, payload) of the earliest event the wait would have matched in its
    lookback window, or None."""
    assert w.lookback_ms is not None
    since = now - w.lookback_ms
    returned = {e for (e,) in tx.all("SELECT event_id FROM event_effects WHERE run_id = ?", (run_id,))}
    if w.match_field is not None:
        index_field(tx, w.event_name, w.match_field, now)
        rows = _pages(
            tx,
            _BY_VALUE,
            (w.event_name, w.match_field, w.match_value),
            ulid_floor(since),
        )
    else:
        rows = _pages(
            tx,
            _BY_NAME,
            (w.event_name,),
            ulid_floor(since),
        )
    trigger = _trigger(tx, run_id) if w.match_field is None and w.expression not in (None, "true") else {}
    for row in rows:
        if row[6] < since or row[0] in returned:
            continue
        payload = _payload(row)
        if _matches(planner, w, trigger, payload):
            return row[0], payload
    return None


def index_values(tx: Tx, event: EventRecord) -> None:
    """Keep the event's values of the fields lookback waits match on for its name (read once per
    transaction)."""
    fields = _lookback_fields(tx, event.name)
    if fields:
        payload = event.to_dict()
        tx.many(_INSERT_VALUE, [(event.name, f, jsonutil.dumps(lookup(payload, f)), event.id) for f in fields])


def index_field(tx: Tx, event_name: str, field: str, now: int) -> None:
    """Register a field lookback waits match on; the first time, index the values of that name's
    events of the longest lookback window (once: ingest keeps the index from then on)."""
    if (
        tx.run(
            "INSERT INTO lookback_fields (event_name, field) VALUES (?, ?) ON CONFLICT DO NOTHING", (event_name, field)
        )
        != 1
    ):
        return
    tx.memo.pop(("lookback_fields", event_name), None)
    values = [
        (event_name, field, jsonutil.dumps(lookup(_payload(row), field)), row[0])
        for row in _pages(
            tx,
            _BY_NAME,
            (event_name,),
            ulid_floor(now - MAX_LOOKBACK_MS),
        )
    ]
    if values:
        tx.many(_INSERT_VALUE, values)


def prune_values(tx: Tx, now: int, limit: int) -> int:
    """Delete up to `limit` indexed values of events older than the longest lookback window."""
    return tx.run(
        "DELETE FROM event_values WHERE event_id IN (SELECT event_id FROM event_values WHERE event_id < ?"
        " ORDER BY event_id LIMIT ?)",
        (ulid_floor(now - MAX_LOOKBACK_MS), limit),
    )


def _lookback_fields(tx: Tx, event_name: str) -> list[str]:
    key = ("lookback_fields", event_name)
    if (known := tx.memo.get(key)) is None:
        known = tx.memo[key] = [
            f for (f,) in tx.all("SELECT field FROM lookback_fields WHERE event_name = ? ORDER BY field", (event_name,))
        ]
    return list(known)


def _pages(tx: Tx, sql: str, params: tuple[Any, ...], first: str) -> Iterator[Any]:
    """The rows of a keyset-paged query (`{op}` and the last two parameters: the id to start from,
    the page size), oldest first, read a page at a time as the caller goes on."""
    after, op = first, ">="
    while True:
        rows = tx.all(sql.format(op=op), (*params, after, PAGE))
        yield from rows
        if len(rows) < PAGE:
            return
        after, op = rows[-1][0], ">"


def _matches(planner: Planner, w: WaitSpec, trigger: dict[str, Any], payload: dict[str, Any]) -> bool:
    if w.match_field is not None:
        return jsonutil.dumps(lookup(payload, w.match_field)) == w.match_value
    return w.expression in (None, "true") or planner.matches(str(w.expression), trigger, payload)


def _trigger(tx: Tx, run_id: str) -> dict[str, Any]:
    row = tx.one(
        f"SELECT {_EVENT_COLUMNS} FROM runs r JOIN events e ON e.id = r.first_event_id WHERE r.id = ?", (run_id,)
    )
    return {} if row is None else _payload(row)


def _payload(row: Any) -> dict[str, Any]:
    """An event row (`_EVENT_COLUMNS`) as expressions and handlers see it."""
    internal_id, name, data, user, ts, dedupe_id = row[:6]
    return {
        "id": dedupe_id or internal_id,
        "name": name,
        "data": jsonutil.loads(data),
        "user": jsonutil.loads(user),
        "ts": ts,
    }
