"""Live worker processes: heartbeats (which also keep their functions known) and listings."""

from __future__ import annotations

from outlast.core import jsonutil
from outlast.core.models import WorkerInfo
from outlast.storage.sql.tx import Tx, marks

_COLUMNS = (
    "id, app_id, host, pid, started_at, heartbeat_at, functions, in_flight, last_error, sdk, sdk_version, capacity"
)


def heartbeat(tx: Tx, w: WorkerInfo) -> None:
    """Insert or refresh one worker's row (one statement: atomic); a Connect worker's SDK and
    capacity are refreshed too, as a reconnect under the same id may come from a newer SDK."""
    tx.run(
        f"INSERT INTO workers ({_COLUMNS}) VALUES ({marks(12)}) ON CONFLICT (id) DO UPDATE SET"
        " heartbeat_at = excluded.heartbeat_at, functions = excluded.functions, in_flight = excluded.in_flight,"
        " last_error = excluded.last_error, sdk = excluded.sdk, sdk_version = excluded.sdk_version,"
        " capacity = excluded.capacity",
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
            w.sdk,
            w.sdk_version,
            w.capacity,
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
            sdk=r[9],
            sdk_version=r[10],
            capacity=r[11],
        )
        for r in tx.all(f"SELECT {_COLUMNS} FROM workers ORDER BY started_at, id")
    ]
