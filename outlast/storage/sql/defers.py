"""The `inngest/deferred.schedule` events of an ending run (`outlast.core.defers`), read from its
defer rows in the transaction that ends it: sent with the run's end, or not at all."""

from __future__ import annotations

from outlast.core import jsonutil
from outlast.core.defers import KINDS, DeferRow, schedule_events
from outlast.core.models import EventRecord
from outlast.storage.sql.tx import Tx

_ROWS_SQL = "SELECT key, kind, status, output FROM steps WHERE run_id = ? AND kind IN (?, ?)"


def deferred_events(tx: Tx, run_id: str, *, app_id: str, function_id: str, now: int) -> list[EventRecord]:
    rows = [
        DeferRow(key=key, kind=kind, status=status, output=jsonutil.loads(output) if output is not None else None)
        for key, kind, status, output in tx.all(_ROWS_SQL, (run_id, *KINDS))
    ]
    if not rows:
        return []
    return schedule_events(rows, app_id=app_id, function_id=function_id, run_id=run_id, now_ms=now)
