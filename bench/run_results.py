"""From a run's end to `RunHandle.result()` returning: one idle `outlast worker` process runs the
runs, this process invokes them (`app.invoke`) and waits on their handles (blocking `result()`).

    python -m bench.run_results [--samples 200] [--url postgresql://postgres@127.0.0.1:5432/postgres]

The function returns `time.time()` as its last act; the delay is from then to `result()`
returning here, so it holds the commit of the run's end, the store's wake-up (SQLite datagram
socket, PostgreSQL NOTIFY) and the waiter's read of the run. The waiter's safety-net read is
every `10 * poll_interval_ms` (1 s by default): a p50 far below it shows wake-ups, not polling.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from typing import Any

import outlast
from bench.workloads import fresh_sqlite, open_engine, start_workers, stop, table, wait_for_workers

results_app = outlast.Outlast("bench-results")


@results_app.function(id="finish", trigger="bench/finish", retries=0)
async def finish(ctx: outlast.Context) -> float:
    return time.time()


def delays_ms(url: str, samples: int) -> dict[str, Any]:
    [worker] = start_workers(url, "bench.run_results:results_app", 1)
    client = outlast.Outlast("bench-results", settings=outlast.Settings(database_url=url))
    client.functions = results_app.functions
    delays: list[float] = []
    try:
        asyncio.run(_ready(url))
        for _ in range(samples):
            ended = client.invoke("finish").result(timeout=30)
            delays.append((time.time() - ended) * 1000)
            time.sleep(0.02)  # the worker goes idle again: each sample starts from a listening waiter
    finally:
        stop([worker])
        client.close()
    delays.sort()
    return {
        "samples": samples,
        "p50_ms": statistics.median(delays),
        "p99_ms": delays[min(len(delays) - 1, int(len(delays) * 0.99))],
        "max_ms": delays[-1],
    }


async def _ready(url: str) -> None:
    engine = await open_engine(outlast.Outlast("bench-results-watch"), url)
    try:
        await wait_for_workers(engine, 1)
    finally:
        await engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append({"backend": "sqlite (datagram sockets)", **delays_ms(fresh_sqlite(f"{tmp}/r.db"), args.samples)})
    if not args.no_postgres:
        from tests.pg import fresh_database_url

        url = fresh_database_url(args.url, "outlast_bench_results")
        rows.append({"backend": "postgresql (NOTIFY)", **delays_ms(url, args.samples)})
    print(f"run end to RunHandle.result() returning, worker in another process ({os.cpu_count()} cores)\n")
    print(table(rows, ["backend", "samples", "p50_ms", "p99_ms", "max_ms"]))


if __name__ == "__main__":
    main()
