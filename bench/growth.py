"""Cost growth: the 3-step workload on an empty database and on one holding a million finished runs.

    python -m bench.growth [--stored 1000000] [--runs 3000] [--repeat 3] [--backends sqlite,postgres]
                           [--pg-url postgresql://postgres@127.0.0.1:5432/postgres]

For each backend, one database is filled with --stored finished runs of the same function the
workload runs, as real runs leave them (bench/finished_runs.py: runs, steps, trigger and
`function.finished` events; retention off), with set-based SQL, then analyzed (PostgreSQL: VACUUM
ANALYZE, as autovacuum may be off). Each repeat then times the workload (--runs events sent at once,
one in-process worker, until the last run completed, as bench/throughput.py) on a fresh empty
database and on the filled one; the best of --repeat is reported for each, and the ratio
empty/filled (the goal: at most 1.2). Then a few reads users make on a big database are timed
through the store on both (median of 20): the first page of runs, the counts per status the runs
page shows, the runs of one event half way down (the runs page filtered by it, its counts, and
`GET /v1/events/{id}/runs`), the active runs of the function (what a bulk cancellation pages
through) and the per-function numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.databases import drop_postgres, migrate
from bench.finished_runs import fill_postgres, fill_sqlite
from bench.workloads import app, fresh_sqlite, run_three_steps, table, three_steps
from outlast.core.clock import SystemClock
from outlast.core.models import RunFilter
from outlast.storage import open_store

READ_SAMPLES = 20
COUNT_CAP = 10_000
DAY_MS = 86_400_000


def settle(backend: str, url: str) -> None:
    """Flush what filling or creating the database left for the next checkpoint (PostgreSQL)."""
    if backend == "postgres":
        from bench.workloads import settle_postgres as checkpoint

        checkpoint(url)


async def time_reads(url: str) -> dict[str, float]:
    """Median milliseconds of each read, on the database as it is."""
    store = open_store(url)
    await store.open()
    try:
        now = SystemClock().now_ms()
        old = await store.list_runs(RunFilter(until=now - 15 * DAY_MS, limit=1)) or await store.list_runs(
            RunFilter(limit=1000)
        )
        event_id = old[-1].event_ids[0]  # a run's event from half way down (the oldest kept, when empty)
        fn = (app.id, three_steps.id)
        reads: dict[str, Callable[[], Awaitable[Any]]] = {
            "runs: first page": lambda: store.list_runs(RunFilter(limit=50)),
            "runs: first page of the function": lambda: store.list_runs(
                RunFilter(app_id=fn[0], function_id=fn[1], limit=50)
            ),
            f"runs: counts per status (cap {COUNT_CAP:,})": lambda: store.count_runs(RunFilter(), COUNT_CAP),
            "runs of one event: page": lambda: store.list_runs(RunFilter(event_id=event_id, limit=50)),
            "runs of one event: counts": lambda: store.count_runs(RunFilter(event_id=event_id), COUNT_CAP),
            "runs of one event: GET /v1/events/{id}/runs": lambda: store.runs_for_events([event_id], 100),
            "active runs of the function (bulk cancel)": lambda: store.active_runs_with_triggers(
                app_id=fn[0], function_id=fn[1], since=None, until=now, after=None, limit=100
            ),
            "function numbers (hour, day)": lambda: store.function_stats(now, [fn]),
        }
        out = {}
        for name, read in reads.items():
            await read()
            samples = []
            for _ in range(READ_SAMPLES):
                began = time.perf_counter()
                await read()
                samples.append((time.perf_counter() - began) * 1000)
            out[name] = statistics.median(samples)
        return out
    finally:
        await store.close()


class Databases:
    """The filled database of one backend, and fresh empty ones on demand."""

    def __init__(self, backend: str, pg_url: str, tmp: str) -> None:
        self.backend, self.pg_url, self.tmp = backend, pg_url, tmp
        self.names: list[str] = []

    def fresh(self, name: str) -> str:
        if self.backend == "sqlite":
            return fresh_sqlite(f"{self.tmp}/{name}.db")
        from tests.pg import fresh_database_url

        url = fresh_database_url(self.pg_url, f"outlast_bench_growth_{name}")
        self.names.append(url.rsplit("/", 1)[1])
        return url

    def filled(self, n: int) -> str:
        url = self.fresh("filled")
        asyncio.run(migrate(url))
        began = time.perf_counter()
        if self.backend == "sqlite":
            fill_sqlite(url.removeprefix("sqlite:///"), n, SystemClock().now_ms())
        else:
            fill_postgres(url, n, SystemClock().now_ms())
        print(f"{self.backend}: filled {n:,} finished runs in {time.perf_counter() - began:.1f} s", flush=True)
        return url

    def drop(self) -> None:
        for name in dict.fromkeys(self.names):
            drop_postgres(self.pg_url, name)


def bench(
    backend: str, stored: int, runs: int, repeat: int, pg_url: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    with tempfile.TemporaryDirectory(prefix="outlast-bench-growth-") as tmp:
        dbs = Databases(backend, pg_url, tmp)
        try:
            filled = dbs.filled(stored)
            results: dict[int, list[dict[str, Any]]] = {0: [], stored: []}
            for _ in range(repeat):
                for count in (0, stored):
                    url = filled if count else dbs.fresh("empty")
                    settle(backend, url)
                    results[count].append(asyncio.run(run_three_steps(url, runs)))
            empty_url = dbs.fresh("empty")
            asyncio.run(run_three_steps(empty_url, runs))  # the empty database with what one workload leaves
            reads = {0: asyncio.run(time_reads(empty_url)), stored: asyncio.run(time_reads(filled))}
        finally:
            dbs.drop()
    best = {count: max(rs, key=lambda r: r["runs_per_s"]) for count, rs in results.items()}
    ratio = best[0]["runs_per_s"] / best[stored]["runs_per_s"]
    rows = [
        {"backend": backend, "stored_runs": f"{count:,}", **best[count], "ratio": ratio if count else ""}
        for count in (0, stored)
    ]
    read_rows = [
        {"backend": backend, "read": name, "empty ms": reads[0][name], "filled ms": reads[stored][name]}
        for name in reads[0]
    ]
    return rows, read_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored", type=int, default=1_000_000, help="finished runs in the filled database")
    parser.add_argument("--runs", type=int, default=3000, help="runs of the timed workload")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("OUTLAST_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    args = parser.parse_args()
    rows, reads = [], []
    for backend in args.backends.split(","):
        r, w = bench(backend.strip(), args.stored, args.runs, args.repeat, args.pg_url)
        rows += r
        reads += w
    print(
        f"\n3-step workload, {args.runs:,} runs, one in-process worker, best of {args.repeat}; "
        f"ratio = empty runs/s / filled runs/s (goal: at most 1.2)\n"
    )
    print(table(rows, ["backend", "stored_runs", "runs", "seconds", "runs_per_s", "ratio"]))
    print(f"\nreads through the store, median of {READ_SAMPLES} (empty: after one workload)\n")
    print(table(reads, ["backend", "read", "empty ms", "filled ms"]))


if __name__ == "__main__":
    main()
