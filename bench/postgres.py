"""Scale-out on PostgreSQL: the 3-step workload with 1, 2 and 4 worker processes, beside DBOS on
the same server, and the event-to-first-step latency of an idle worker (LISTEN/NOTIFY).

    python -m bench.postgres [--runs 2000] [--url postgresql://postgres@127.0.0.1:5432/postgres]

Workers are `outlast worker` processes; they are started and idle before the events are sent in
one batch, and the clock stops when the last run completed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

import outlast
from bench.workloads import STEPS, app, table
from outlast.core.clock import SystemClock
from outlast.core.engine import Engine
from outlast.core.models import RunFilter
from outlast.settings import Settings
from outlast.storage import open_store
from tests.pg import fresh_database_url

ROOT = Path(__file__).resolve().parents[1]
latency_app = outlast.Outlast("bench-latency")


@latency_app.function(id="first-step", trigger="bench/ping")
async def first_step(ctx: outlast.Context) -> float:
    return float(await ctx.step.run("now", time.time))


def start_workers(url: str, app_spec: str, count: int) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "OUTLAST_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    return [subprocess.Popen([sys.executable, "-m", "outlast.cli", "worker", app_spec], env=env, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(count)]


def stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for w in workers:
        w.terminate()
    for w in workers:
        w.wait(30)


def scalar(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


def settle(url: str) -> None:
    """Flush the checkpoint that creating a database starts, so it does not land in the timing."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    time.sleep(0.5)


async def open_engine(target: outlast.Outlast, url: str) -> Engine:
    engine = Engine(open_store(url), SystemClock(), Settings(database_url=url))
    await engine.add_source(target)
    await engine.open()
    return engine


async def throughput(base: str, processes: int, n: int) -> dict[str, Any]:
    url = fresh_database_url(base, "outlast_bench_pg")
    engine = await open_engine(app, url)
    workers = start_workers(url, "bench.workloads:app", processes)
    try:
        while scalar(url, "SELECT count(*) FROM workers") < processes:
            await asyncio.sleep(0.05)
        settle(url)
        started = time.perf_counter()
        await engine.send([outlast.Event(name="bench/go", data={"i": i}) for i in range(n)])
        while scalar(url, "SELECT count(*) FROM runs WHERE status = 'completed'") < n:
            await asyncio.sleep(0.02)
        seconds = time.perf_counter() - started
    finally:
        stop(workers)
        await engine.close()
    return {"system": f"outlast, {processes} worker process{'es' if processes > 1 else ''}", "runs": n,
            "seconds": seconds, "runs_per_s": n / seconds, "steps_per_s": n * STEPS / seconds}


async def latency(base: str, samples: int) -> dict[str, Any]:
    url = fresh_database_url(base, "outlast_bench_latency")
    engine = await open_engine(latency_app, url)
    workers = start_workers(url, "bench.postgres:latency_app", 1)
    delays = []
    try:
        while scalar(url, "SELECT count(*) FROM workers") < 1:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # the worker is idle, listening
        for _ in range(samples):
            sent = time.time()
            [event_id] = await engine.send(outlast.Event(name="bench/ping"))
            while True:
                [run] = await engine.store.list_runs(RunFilter(event_id=event_id, limit=1))
                if run.status == "completed":
                    break
                await asyncio.sleep(0.005)
            delays.append((float(run.output) - sent) * 1000)
            await asyncio.sleep(0.05)
    finally:
        stop(workers)
        await engine.close()
    delays.sort()
    return {"samples": samples, "p50_ms": statistics.median(delays),
            "p99_ms": delays[min(len(delays) - 1, int(len(delays) * 0.99))], "max_ms": delays[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--repeat", type=int, default=2, help="report the best of this many runs of each")
    args = parser.parse_args()

    def best(results: list[dict[str, Any]]) -> dict[str, Any]:
        return max(results, key=lambda r: r["runs_per_s"])

    rows = [best([asyncio.run(throughput(args.url, p, args.runs)) for _ in range(args.repeat)]) for p in (1, 2, 4)]
    if not args.no_peer:
        from bench.peers.dbos_peer import run_dbos

        dbos_url = args.url.rsplit("/", 1)[0] + "/outlast_bench_dbos"
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(best([run_dbos(args.runs, database_url=dbos_url, workdir=tmp) for _ in range(args.repeat)]))
    print(f"3-step workload, {args.runs} runs, PostgreSQL at 127.0.0.1 ({os.cpu_count()} cores), "
          f"best of {args.repeat}\n")
    print(table(rows, ["system", "runs", "seconds", "runs_per_s", "steps_per_s"]))
    if not args.no_peer:
        print(f"\noutlast (1 process) / dbos runs/s: {rows[0]['runs_per_s'] / rows[-1]['runs_per_s']:.1f}x")
    print("\nevent-to-first-step latency, one idle worker\n")
    print(table([asyncio.run(latency(args.url, args.samples))], ["samples", "p50_ms", "p99_ms", "max_ms"]))


if __name__ == "__main__":
    main()
