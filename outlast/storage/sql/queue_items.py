"""The queue's items: putting them on the queue (the one INSERT every kind of item goes through),
what a claim reads of them, and a run's items as listed (`run_jobs`)."""

from __future__ import annotations

from typing import Any, NamedTuple

from outlast.core import jsonutil
from outlast.core.jobs import QueueJob
from outlast.storage.sql.rows import QUEUE, queue_row
from outlast.storage.sql.tx import Tx


def enqueue(
    tx: Tx,
    *,
    app_id: str,
    function_id: str | None,
    kind: str,
    run_id: str | None,
    due: int,
    now: int,
    payload: Any = None,
    concurrency: list[tuple[str, int]] | None = None,
    item_id: str | None = None,
) -> None:
    tx.run(
        QUEUE.insert_sql,
        queue_row(
            app_id=app_id,
            function_id=function_id,
            kind=kind,
            run_id=run_id,
            due=due,
            now=now,
            payload=payload,
            concurrency=concurrency,
            item_id=item_id,
        ),
    )


#: what a claim reads of each item it leases
CLAIM_COLUMNS = "id, kind, run_id, payload, ck1, ck1_limit, ck2, ck2_limit, pending, abandoned, crashes, crash_progress"


class Leased(NamedTuple):
    """An item a claim leased, as it was read (CLAIM_COLUMNS)."""

    id: str
    kind: str
    run_id: str | None
    payload: str | None
    ck1: str | None
    ck1_limit: int | None
    ck2: str | None
    ck2_limit: int | None
    #: the run stored a step with a deadline (its claims look for deadlines that passed)
    pending: int
    #: the previous lease expired with its attempt unfinished
    abandoned: int
    #: attempts in a row that stopped their worker without progress (see `crashes`)
    crashes: int
    crash_progress: int | None


def run_jobs(tx: Tx, run_id: str, limit: int) -> list[QueueJob]:
    """The run's queue items by due time, each with how many items of its app are due before it."""
    rows = tx.all(
        "SELECT q.id, q.kind, q.due_at, q.lease_token IS NOT NULL, q.payload,"
        " (SELECT COUNT(*) FROM queue p WHERE p.app_id = q.app_id"
        "  AND (p.due_at < q.due_at OR (p.due_at = q.due_at AND p.id < q.id)))"
        " FROM queue q WHERE q.run_id = ? ORDER BY q.due_at, q.id LIMIT ?",
        (run_id, limit),
    )
    return [
        QueueJob(id=r[0], kind=r[1], due_at=r[2], leased=bool(r[3]), position=int(r[5]), timeout=_timeout_type(r[4]))
        for r in rows
    ]


def _timeout_type(payload: Any) -> str | None:
    value = jsonutil.loads(payload) if payload else None
    return value.get("type") if isinstance(value, dict) else None
