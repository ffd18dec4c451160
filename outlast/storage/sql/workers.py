"""Live worker processes: heartbeats (which also keep their functions known) and listings."""

from __future__ import annotations

from outlast.core import jsonutil
from outlast.core.models import WorkerInfo
from outlast.storage.sql.tx import Tx, marks


def heartbeat(tx: Tx, w: WorkerInfo) -> None:
    tx.run(
        "INSERT INTO workers (id, app_id, host, pid, started_at, heartbeat_at, functions, in_flight, last_error)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at,"
        " functions = excluded.functions, in_flight = excluded.in_flight, last_error = excluded.last_error",
        (
            w.id,
            w.app_id,
            w.host,
            w.pid,
            w.started_at,
            w.heartbeat_at,
            jsonutil.dumps(sorted(w.functions)),
            w.in_flight,
            w.last_error,
        ),
    )
    if w.functions:
        tx.run(
            f"UPDATE functions SET last_seen_at = ? WHERE app_id = ? AND function_id IN ({marks(len(w.functions))})"
            " AND last_seen_at IS NOT NULL AND last_seen_at < ?",
            (w.heartbeat_at, w.app_id, *w.functions, w.heartbeat_at),
        )


def forget_worker(tx: Tx, worker_id: str) -> None:
    tx.run("DELETE FROM workers WHERE id = ?", (worker_id,))


def list_workers(tx: Tx, since_ms: int) -> list[WorkerInfo]:
    """Workers seen since `since_ms`; older rows are forgotten."""
    tx.run("DELETE FROM workers WHERE heartbeat_at < ?", (since_ms,))
    return [
        WorkerInfo(
            id=r[0],
            app_id=r[1],
            host=r[2],
            pid=r[3],
            started_at=r[4],
            heartbeat_at=r[5],
            functions=jsonutil.loads(r[6]),
            in_flight=r[7],
            last_error=r[8],
        )
        for r in tx.all(
            "SELECT id, app_id, host, pid, started_at, heartbeat_at, functions, in_flight, last_error"
            " FROM workers ORDER BY started_at, id"
        )
    ]
