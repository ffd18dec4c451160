"""Realtime messages: published with the commit that records them, read by id, pruned by age.

A reader that has seen id n must never later find a smaller id committed. SQLite: one writer at
a time, so ids increase in commit order. PostgreSQL: ids come from a sequence without a lock, so
transactions may commit out of id order; each message-writing transaction holds a shared
advisory lock keyed by the sequence's value *before* it took its ids (migration 15), and readers
only look up to the horizon: below every such lock still held, and no further than the sequence
had reached before the locks were read. Ids up to the horizon are committed or never will be.

A run's own channel (`run:<id>`: its status changes and step ends) is written by triggers, but
only for runs in `watched_runs`: a run nobody watches costs nothing. Watching a run writes the
story so far (`watch_run`), then the triggers carry on. Why not the alternatives: messages
synthesised at read time from runs and steps would need ids that interleave with published ones
and a run row keeps only its current status; writing them in the batched statements still costs
every app a row and three index entries per step end. A watch costs an indexed look-up in an
(almost always empty) table per step end.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from outlast.core import jsonutil
from outlast.core.realtime import Message, MessageRecord
from outlast.storage.sql.migrations import MESSAGE_ID_FLOOR, RUN_WATCH_BUCKETS, RUN_WATCH_LOCKS
from outlast.storage.sql.tx import Row, Tx, marks

_COLUMNS = "id, channel, topic, data, run_id, ts"


def insert_messages(tx: Tx, messages: Sequence[MessageRecord]) -> None:
    """Publish messages in the caller's transaction, in order (their ids follow that order)."""
    if not messages:
        return
    tx.many(
        "INSERT INTO messages (channel, topic, data, run_id, ts) VALUES (?, ?, ?, ?, ?)",
        [(m.channel, m.topic, jsonutil.dumps(m.data), m.run_id, m.ts) for m in messages],
    )


def read_messages(
    tx: Tx,
    *,
    channels: Sequence[str] | None,
    after_id: int,
    topics: Sequence[str] | None,
    limit: int,
    until_id: int | None = None,
    run_id: str | None = None,
) -> list[Message]:
    """Messages with ids above `after_id` (and up to `until_id`), oldest first: of `channels`
    (None: every channel), with one of `topics` (None: any), published by run `run_id` (None: by
    anyone)."""
    if _interleaved(tx):
        horizon = _horizon(tx)
        until_id = horizon if until_id is None else min(until_id, horizon)
    where: list[str] = ["id > ?"]
    params: list[object] = [after_id]
    if run_id is not None:
        where.append("run_id = ?")
        params.append(run_id)
    if until_id is not None:
        where.append("id <= ?")
        params.append(until_id)
    if channels is not None:
        where.append(f"channel IN ({marks(len(channels))})")
        params += channels
    if topics is not None:
        where.append(f"topic IN ({marks(len(topics))})")
        params += topics
    rows = tx.all(f"SELECT {_COLUMNS} FROM messages WHERE {' AND '.join(where)} ORDER BY id LIMIT ?", (*params, limit))
    return [_message(r) for r in rows]


def last_message_id(tx: Tx) -> int:
    """The highest id published so far (0 if none is kept); PostgreSQL: the horizon, the highest
    id below which nothing can still commit."""
    if _interleaved(tx):
        return _horizon(tx)
    row = tx.one("SELECT MAX(id) FROM messages")
    return int(row[0]) if row is not None and row[0] is not None else 0


def prune_messages(tx: Tx, *, before_ms: int, limit: int) -> int:
    """Delete up to `limit` of the oldest messages published before `before_ms`, and the watches
    of runs nobody has watched since; how many messages went."""
    tx.run("DELETE FROM watched_runs WHERE until_ms < ?", (before_ms,))
    return tx.run(
        "DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE ts < ? ORDER BY ts LIMIT ?)",
        (before_ms, limit),
    )


def _interleaved(tx: Tx) -> bool:
    """PostgreSQL (the backend that locks rows): transactions may commit out of id order."""
    return bool(tx.row_lock)


#: the in-flight writers' locks (`MESSAGE_ID_FLOOR` + a sequence value) in this database
_IN_FLIGHT_SQL = (
    "SELECT MIN(classid::bigint * 4294967296 + objid::bigint) FROM pg_locks"
    " WHERE locktype = 'advisory' AND objsubid = 1 AND classid::bigint >= ?"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def _horizon(tx: Tx) -> int:
    """PostgreSQL: the highest id a reader may deliver. Three statements, in this order, each
    with its own snapshot (READ COMMITTED): the sequence's value, then the writers' locks, then
    (the caller) the messages. An id at or below the sequence's value was taken before it was
    read; a writer still holding it also held its lock when the locks were read."""
    row = tx.one("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM messages_ids")
    reached = int(row[0]) if row is not None else 0
    lowest = tx.one(_IN_FLIGHT_SQL, (MESSAGE_ID_FLOOR >> 32,))
    if lowest is None or lowest[0] is None:
        return reached
    return min(reached, int(lowest[0]) - MESSAGE_ID_FLOOR - 1)


def watch_run(tx: Tx, run_id: str, *, until_ms: int) -> bool:
    """Keep writing run `run_id`'s own channel until `until_ms`. A run not watched until now gets
    its story so far written at once (what its channel would hold had it been watched from the
    start and is not kept already), after anything it published itself. True when it was new.

    PostgreSQL: the run's watch lock (its bucket's), held to commit, waits for every transaction
    that changed the run without seeing the watch, so the catch-up sees what they wrote."""
    if _interleaved(tx):
        tx.run(f"SELECT pg_advisory_xact_lock({RUN_WATCH_LOCKS}, hashtext(?) & {RUN_WATCH_BUCKETS - 1})", (run_id,))
    if tx.run("UPDATE watched_runs SET until_ms = ? WHERE run_id = ? AND until_ms < ?", (until_ms, run_id, until_ms)):
        return False
    if tx.one("SELECT 1 FROM watched_runs WHERE run_id = ?", (run_id,)) is not None:
        return False
    tx.run("INSERT INTO watched_runs (run_id, until_ms) VALUES (?, ?)", (run_id, until_ms))
    insert_messages(tx, _story_so_far(tx, run_id))
    return True


def _story_so_far(tx: Tx, run_id: str) -> list[MessageRecord]:
    """The status and step messages of run `run_id` up to now, in time order, less those kept."""
    run = tx.one("SELECT status, started_at, ended_at FROM runs WHERE id = ?", (run_id,))
    if run is None:
        return []
    status, started_at, ended_at = run
    channel = f"run:{run_id}"
    story: list[tuple[int, int, str, dict[str, str]]] = []
    if started_at is not None and status != "queued":
        story.append((started_at, 0, "status", {"status": "running"}))
    ended_steps = tx.all(
        "SELECT step_id, status, COALESCE(ended_at, started_at, 0) FROM steps WHERE run_id = ?"
        " AND status IN ('completed', 'failed', 'cancelled') ORDER BY 3, seq",
        (run_id,),
    )
    story += [(ts, 1, "step", {"id": step_id, "status": s}) for step_id, s, ts in ended_steps]
    if status in ("completed", "failed", "cancelled"):
        story.append((ended_at or started_at or 0, 2, "status", {"status": status}))
    kept_rows = tx.all("SELECT topic, data FROM messages WHERE run_id = ? AND channel = ?", (run_id, channel))
    kept = {_told(topic, jsonutil.loads(data)) for topic, data in kept_rows}
    story.sort(key=lambda told: told[:2])
    return [
        MessageRecord(channel=channel, topic=topic, data=data, ts=ts, run_id=run_id)
        for ts, _, topic, data in story
        if _told(topic, data) not in kept
    ]


def _told(topic: str, data: object) -> tuple[str, str]:
    """A message's topic and data, comparable whichever backend's JSON functions wrote it."""
    return topic, json.dumps(data, sort_keys=True)


def _message(row: Row) -> Message:
    return Message(id=int(row[0]), channel=row[1], topic=row[2], data=jsonutil.loads(row[3]), run_id=row[4], ts=row[5])
