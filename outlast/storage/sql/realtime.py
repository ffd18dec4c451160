"""Realtime messages: published with the commit that records them, read by id, pruned by age.

Ids increase in commit order (SQLite: one writer at a time; PostgreSQL: the `messages` trigger
of migration 11 takes each id under a transaction-scoped lock), so `id > since` never skips a
message committed after a reader looked.
"""

from __future__ import annotations

from collections.abc import Sequence

from outlast.core import jsonutil
from outlast.core.realtime import Message, MessageRecord
from outlast.storage.sql.tx import Row, Tx, marks

_COLUMNS = "id, channel, topic, data, run_id, ts"


def insert_messages(tx: Tx, messages: Sequence[MessageRecord]) -> None:
    """Publish messages in the caller's transaction, in order (their ids follow that order)."""
    for m in messages:
        tx.run(
            "INSERT INTO messages (channel, topic, data, run_id, ts) VALUES (?, ?, ?, ?, ?)",
            (m.channel, m.topic, jsonutil.dumps(m.data), m.run_id, m.ts),
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
    """The highest id published so far (0 if none is kept)."""
    row = tx.one("SELECT MAX(id) FROM messages")
    return int(row[0]) if row is not None and row[0] is not None else 0


def prune_messages(tx: Tx, *, before_ms: int, limit: int) -> int:
    """Delete up to `limit` of the oldest messages published before `before_ms`; how many went."""
    return tx.run(
        "DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE ts < ? ORDER BY ts LIMIT ?)",
        (before_ms, limit),
    )


def _message(row: Row) -> Message:
    return Message(id=int(row[0]), channel=row[1], topic=row[2], data=jsonutil.loads(row[3]), run_id=row[4], ts=row[5])
