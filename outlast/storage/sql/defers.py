"""The `inngest/deferred.schedule` events of an ending run (`outlast.core.defers`), read from its
defer rows in the transaction that ends it: sent with the run's end, or not at all."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from outlast.core import jsonutil
from outlast.core.defers import DEFER, DEFER_ABORT, DeferRow, schedule_events
from outlast.core.models import EventRecord
from outlast.storage.sql.tx import Tx

_KINDS = f"('{DEFER}', '{DEFER_ABORT}')"
#: the defer rows of one run
ROWS_SQL = f"SELECT key, kind, status, output FROM steps WHERE run_id = ? AND kind IN {_KINDS}"
_BATCH_SQL = (
    "WITH v (run_id) AS ({table}) SELECT steps.run_id, key, kind, status, output FROM steps"
    f" JOIN v ON steps.run_id = v.run_id WHERE kind IN {_KINDS}"
)


def defer_rows(tx: Tx, run_ids: Sequence[str]) -> dict[str, list[DeferRow]]:
    """The defer rows of several ending runs, in one statement (batched run ends)."""
    out: dict[str, list[DeferRow]] = {}
    for table, params in tx.tables([(r,) for r in run_ids], ("text",)):
        for run_id, *row in tx.all(_BATCH_SQL.format(table=table), params):
            out.setdefault(run_id, []).append(defer_row(*row))
    return out


def deferred_events(
    tx: Tx, run_id: str, *, app_id: str, function_id: str, now: int, rows: Sequence[DeferRow] | None = None
) -> list[EventRecord]:
    """The events the run's defers send; `rows`: its defer rows, when the caller read them already."""
    if rows is None:
        rows = [defer_row(*row) for row in tx.all(ROWS_SQL, (run_id,))]
    if not rows:
        return []
    return schedule_events(rows, app_id=app_id, function_id=function_id, run_id=run_id, now_ms=now)


def defer_row(key: str, kind: str, status: str, output: Any) -> DeferRow:
    return DeferRow(key=key, kind=kind, status=status, output=jsonutil.loads(output) if output is not None else None)
