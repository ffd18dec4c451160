"""Attempts that stopped their worker: counted by the claim that finds their lease expired.

An attempt ends by a commit (Suspend releases the item, Finish deletes it) or by a worker
handing the item back. An item claimed while it still carries a lease (`abandoned`) lost its
attempt some other way: the process was killed, called `os._exit`, ran out of memory or hung.
That claim counts a crash. If the run made no progress since the previous crash (the same
`progress_of` the run), the count grows; otherwise it starts again at 1. A Suspend clears it.
At `max_crashes` the run fails with `WorkerCrashedError`, instead of killing workers forever.
Below it the claim does not take the item: it is due again after the retry backoff of the
count, and the crash is recorded on the run (a function-level failure, under `CRASH_KEY`, with
its `retry_at`). Healthy runs caught in a burst of kills (a deploy) so outlive the burst, while a
poison run still reaches the bound, only later.

Quarantine. A run with SUSPECT crashes in a row is a suspect: at most one suspect is leased at
a time, so a poison run cannot keep taking the runs that share its worker down with it (they
reach SUSPECT at most, then run apart from it and make progress). Claims skip suspects while
one is leased (`NOT_QUARANTINED`, an index probe evaluated only for suspect rows).

A claim that finds no abandoned item and no suspect pays one column write (`abandoned`, in the
statement that leases) and a filter that short-circuits on `crashes < 2`; nothing else.
"""

from __future__ import annotations

from datetime import UTC, datetime

from outlast.core import jsonutil
from outlast.core.models import EventRecord
from outlast.core.retry import backoff_table_ms
from outlast.storage.sql.queue_items import Leased
from outlast.storage.sql.read import CRASH_KEY
from outlast.storage.sql.run_end import fail_run
from outlast.storage.sql.tx import Tx

#: crashes in a row that make a run a suspect (run apart from other suspects)
SUSPECT = 2
#: the claim's filter: a suspect is a candidate only while no other suspect is leased (the 2s are
#: SUSPECT, as in the partial index `queue_suspects` of migration 4)
NOT_QUARANTINED = (
    "(crashes < 2 OR NOT EXISTS (SELECT 1 FROM queue s WHERE s.crashes >= 2"
    " AND s.lease_token IS NOT NULL AND s.due_at > ?))"
)
ERROR_NAME = "WorkerCrashedError"


def needs_care(items: list[Leased]) -> bool:
    """Whether any leased item was abandoned or belongs to a suspect."""
    return any(i.abandoned or i.crashes >= SUSPECT for i in items)


def settle(
    tx: Tx, items: list[Leased], *, token: str, now: int, max_crashes: int, backoff_scale: float = 1.0
) -> tuple[list[Leased], list[EventRecord]]:
    """Count the crashes among leased `items` (in order), fail runs at the bound, put the others
    back until their backoff passed, and keep at most one suspect. Returns the items still
    leased and the events the failed runs cause."""
    kept: list[Leased] = []
    follow_ups: list[EventRecord] = []
    suspect_taken = False
    for item in items:
        count = item.crashes
        if item.abandoned and item.kind == "run" and item.run_id is not None:
            count = _count_crash(tx, item, item.run_id)
            if max_crashes and count >= max_crashes:
                follow_ups += fail_run(tx, item.run_id, now, error(count))
                continue
            retry_at = now + int(backoff_table_ms(count) * backoff_scale)
            _record_crash(tx, item.run_id, count=count, max_crashes=max_crashes, now=now, retry_at=retry_at)
            if retry_at > now:
                tx.run(
                    "UPDATE queue SET lease_token = NULL, owner = NULL, due_at = ? WHERE id = ?", (retry_at, item.id)
                )
                continue
        if count >= SUSPECT:
            if suspect_taken or _suspect_leased(tx, now, token):
                tx.run("UPDATE queue SET lease_token = NULL, owner = NULL, due_at = ? WHERE id = ?", (now, item.id))
                continue
            suspect_taken = True
        kept.append(item)
    return kept, follow_ups


def error(count: int) -> dict[str, str]:
    return {
        "name": ERROR_NAME,
        "message": f"its attempts stopped their worker {count} times in a row without"
        " progress: killed, os._exit, out of memory?",
    }


def _record_crash(tx: Tx, run_id: str, *, count: int, max_crashes: int, now: int, retry_at: int) -> None:
    """The crash as the run's page and `outlast run` show it: a failure with its retry time."""
    bound = f" of {max_crashes}" if max_crashes else ""
    when = datetime.fromtimestamp(retry_at / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    failure = {
        "name": ERROR_NAME,
        "message": f"its worker stopped during the attempt (crash {count}{bound} in a row without progress:"
        f" killed, os._exit, out of memory?); it runs again at {when}",
        "retry_at": retry_at,
    }
    row = tx.one("SELECT COUNT(*) FROM step_failures WHERE run_id = ? AND step_key = ?", (run_id, CRASH_KEY))
    tx.run(
        "INSERT INTO step_failures (run_id, step_key, attempt, error, started_at, ended_at)"
        " VALUES (?, ?, ?, ?, NULL, ?) ON CONFLICT DO NOTHING",
        (run_id, CRASH_KEY, int(row[0]) + 1 if row else 1, jsonutil.dumps(failure), now),
    )


def progress_of(tx: Tx, run_id: str) -> int:
    """Grows with every committed step row, step attempt and function-level retry of the run."""
    row = tx.one(
        "SELECT r.attempt + (SELECT COUNT(*) + COALESCE(SUM(s.attempts), 0) FROM steps s"
        " WHERE s.run_id = r.id) FROM runs r WHERE r.id = ?",
        (run_id,),
    )
    return 0 if row is None else int(row[0])


def _count_crash(tx: Tx, item: Leased, run_id: str) -> int:
    progress = progress_of(tx, run_id)
    count = item.crashes + 1 if item.crash_progress == progress else 1
    tx.run("UPDATE queue SET crashes = ?, crash_progress = ? WHERE id = ?", (count, progress, item.id))
    return count


def _suspect_leased(tx: Tx, now: int, token: str) -> bool:
    """Whether another claim holds a live lease on a suspect."""
    return (
        tx.one(
            "SELECT 1 FROM queue WHERE crashes >= 2 AND lease_token IS NOT NULL AND lease_token <> ?"
            " AND due_at > ? LIMIT 1",
            (token, now),
        )
        is not None
    )
