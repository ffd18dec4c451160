"""Keys taken for 24 hours: events' dedupe ids (`event:<id>`) and runs' idempotency keys (`run:<key>`).

Each claim also drops a few expired keys, so the table stays about one day's worth.
"""

from __future__ import annotations

from collections.abc import Sequence

from outlast.storage.sql.rows import DEDUPE
from outlast.storage.sql.tx import Tx, marks

DEDUPE_MS = 24 * 3_600_000
#: expired keys dropped per key claimed
_PURGE_PER_CLAIM = 8
#: values per `IN (...)` list of a bulk statement
CHUNK = 500


def claim_key(tx: Tx, key: str, now: int) -> bool:
    """Take a key for 24 h; False when it is already taken."""
    _purge(tx, now, _PURGE_PER_CLAIM)
    tx.run("DELETE FROM dedupe WHERE key = ? AND expires_at <= ?", (key, now))
    return (
        tx.run(
            "INSERT INTO dedupe (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (key, now + DEDUPE_MS)
        )
        == 1
    )


def claim_keys(tx: Tx, keys: Sequence[str], now: int) -> set[str]:
    """`claim_key` for many keys at once, in order (a key given twice is taken by its first);
    return the keys taken. A few statements in all, plus one per `CHUNK` keys already stored."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return set()
    _purge(tx, now, _PURGE_PER_CLAIM * len(wanted))
    held = tx.stored("dedupe", "key", wanted)
    taken = sorted(held)
    for chunk in (taken[i : i + CHUNK] for i in range(0, len(taken), CHUNK)):
        held.difference_update(
            r[0]
            for r in tx.all(
                f"DELETE FROM dedupe WHERE key IN ({marks(len(chunk))}) AND expires_at <= ? RETURNING key",
                (*chunk, now),
            )
        )
    free = [k for k in wanted if k not in held]
    tx.insert_many(DEDUPE.name, DEDUPE.columns, [(k, now + DEDUPE_MS) for k in free])
    return set(free)


def _purge(tx: Tx, now: int, limit: int) -> None:
    tx.run(
        "DELETE FROM dedupe WHERE key IN (SELECT key FROM dedupe WHERE expires_at <= ? ORDER BY expires_at, key"
        " LIMIT ?)",
        (now, limit),
    )
