"""Numbers about runs: how many are in each status, and per function, runs and failures over
time, durations and the backlog.

Every query is bounded: counts stop at a cap (an index range scan of at most `cap` entries per
status), percentiles come from the newest finished runs only, and the per-function numbers read
the runs of one window through `runs_by_function_status` (migration 7).
"""

from __future__ import annotations

from outlast.core.ids import ulid_floor
from outlast.core.models import RunFilter
from outlast.core.views import Bucket, FunctionStats, StatusCounts, WindowStats
from outlast.storage.sql import read
from outlast.storage.sql.tx import Tx

STATUSES = ("queued", "running", "completed", "failed", "cancelled", "skipped")
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
#: percentiles are taken from at most this many of the newest finished runs of a window
DURATION_SAMPLE = 1000


def count_runs(tx: Tx, f: RunFilter, cap: int) -> StatusCounts:
    """Runs matching the filter (its status and cursor ignored) per status, each counted up to `cap`."""
    where, params = read.run_conditions(
        RunFilter(app_id=f.app_id, function_id=f.function_id, event_id=f.event_id, since=f.since, until=f.until),
        with_status=False,
    )
    clause = "".join(f" AND {w}" for w in where)
    counts = {}
    for status in STATUSES:
        row = tx.one(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM runs WHERE status = ?{clause} LIMIT ?) capped", (status, *params, cap)
        )
        counts[status] = int(row[0]) if row else 0
    return StatusCounts(counts=counts, cap=cap)


def function_stats(tx: Tx, now: int, functions: list[tuple[str, str]]) -> list[FunctionStats]:
    return [
        FunctionStats(
            app_id=app_id,
            function_id=fn,
            hour=_window(tx, app_id, fn, now - HOUR_MS, 5 * 60_000, now),
            day=_window(tx, app_id, fn, now - DAY_MS, HOUR_MS, now),
            backlog=_backlog(tx, app_id, fn, now),
        )
        for app_id, fn in functions
    ]


def _window(tx: Tx, app_id: str, fn: str, since: int, width: int, now: int) -> WindowStats:
    stats = WindowStats(
        since=since,
        bucket_ms=width,
        buckets=[Bucket(start=since + i * width) for i in range((now - since + width - 1) // width)],
    )
    rows = tx.all(
        "SELECT (created_at - ?) / ?, status, COUNT(*) FROM runs WHERE app_id = ? AND function_id = ?"
        " AND id >= ? GROUP BY 1, 2 ORDER BY 1, 2",
        (since, width, app_id, fn, ulid_floor(since)),
    )
    for index, status, count in rows:
        stats.runs += count
        bucket = stats.buckets[max(0, min(len(stats.buckets) - 1, index))]  # a run made at `now` joins the last
        if status == "completed":
            bucket.completed += count
        elif status == "failed":
            bucket.failed += count
        else:
            bucket.other += count
    stats.failures = sum(b.failed for b in stats.buckets)
    durations = sorted(
        r[0]
        for r in tx.all(
            "SELECT ended_at - started_at FROM runs WHERE app_id = ? AND function_id = ? AND status = ? AND id >= ?"
            " AND started_at IS NOT NULL ORDER BY id DESC LIMIT ?",
            (app_id, fn, "completed", ulid_floor(since), DURATION_SAMPLE),
        )
    )
    if durations:
        stats.sampled = len(durations)
        stats.p50_ms = durations[(len(durations) - 1) // 2]
        stats.p95_ms = durations[min(len(durations) - 1, (len(durations) * 95 + 99) // 100 - 1)]
    return stats


def _backlog(tx: Tx, app_id: str, fn: str, now: int) -> int:
    row = tx.one(
        "SELECT COUNT(*) FROM queue WHERE app_id = ? AND due_at <= ? AND kind = 'run' AND function_id = ?",
        (app_id, now, fn),
    )
    return int(row[0]) if row else 0
