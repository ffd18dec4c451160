"""Putting items on the queue (the one INSERT every kind of item goes through)."""

from __future__ import annotations

from typing import Any, NamedTuple

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
