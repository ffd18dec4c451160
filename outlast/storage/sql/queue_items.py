"""Putting items on the queue (the one INSERT every kind of item goes through)."""

from __future__ import annotations

from typing import Any

from outlast.core import jsonutil
from outlast.core.ids import new_ulid
from outlast.storage.sql.tx import Tx


def enqueue(tx: Tx, *, app_id: str, function_id: str | None, kind: str, run_id: str | None, due: int,
            payload: Any = None, concurrency: list[tuple[str, int]] | None = None, item_id: str | None = None) -> None:
    (ck1, lim1), (ck2, lim2) = [*(concurrency or []), (None, None), (None, None)][:2]
    tx.run("INSERT INTO queue (id, app_id, function_id, kind, run_id, due_at, payload, ck1, ck1_limit, ck2, ck2_limit)"
           " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
           (item_id or new_ulid(), app_id, function_id, kind, run_id, due,
            None if payload is None else jsonutil.dumps(payload), ck1, lim1, ck2, lim2))
