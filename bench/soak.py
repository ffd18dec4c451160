"""Soak: steady load at half the measured maximum, with retention at one minute, for a long time.
Is the database, its WAL and the worker's memory flat once the first retention period is over?

    python -m bench.soak [--minutes 60] [--backend sqlite|postgresql|both]
                         [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres] [--retention 1m]

Per backend: a fresh database, one `outlast worker bench.workloads:app` process with
OUTLAST_RETENTION set, and this process as the sender. First the maximum is measured (a burst of
--burst events, timed until all completed); then events of the 3-step workload are sent every
100 ms at half that rate for --minutes, and every minute a row is printed: runs completed in that
minute, the backlog (runs not completed), rows kept, database and WAL size, and the worker's
RSS. PostgreSQL's WAL is the server's (pg_wal, shared with every database on it); its dead rows
are summed over the tables of the database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import outlast
from bench.workloads import fresh_sqlite, scalar, table
from outlast.core.clock import SystemClock
from outlast.runtime.engine import Engine
from outlast.settings import Settings
from outlast.storage import open_store

ROOT = Path(__file__).resolve().parents[1]
TICK_S = 0.1
MB = 1024 * 1024


def start_worker(url: str, retention: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OUTLAST_DATABASE_URL": url, "OUTLAST_RETENTION": retention, "PYTHONPATH": str(ROOT)}
    out = log.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "outlast.cli", "worker", "bench.workloads:app"],
        env=env,
        cwd=ROOT,
        stdout=out,
        stderr=out,
    )


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def sizes(engine: Engine, url: str) -> dict[str, float]:
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        wal = Path(path + "-wal")
        return {"db_mb": Path(path).stat().st_size / MB, "wal_mb": wal.stat().st_size / MB if wal.exists() else 0.0}
    return {
        "db_mb": await scalar(engine, "SELECT pg_database_size(current_database())") / MB,
        "wal_mb": await scalar(engine, "SELECT COALESCE(SUM(size), 0) FROM pg_ls_waldir()") / MB,
        "dead_rows": await scalar(engine, "SELECT COALESCE(SUM(n_dead_tup), 0) FROM pg_stat_user_tables"),
    }


async def completed(engine: Engine) -> int:
    return await scalar(engine, "SELECT COUNT(*) FROM runs WHERE status = 'completed'")


async def wait_for_worker(engine: Engine, worker: subprocess.Popen[bytes]) -> None:
    while await scalar(engine, "SELECT COUNT(*) FROM workers") < 1:
        if worker.poll() is not None:
            raise SystemExit("the worker exited; see its log")
        await asyncio.sleep(0.1)
    await engine.refresh_registry(force=True)  # the worker synced the function


async def measure_max(engine: Engine, burst: int) -> float:
    before = await completed(engine)
    started = time.perf_counter()
    await engine.send([outlast.Event(name="bench/go", data={"i": i}) for i in range(burst)])
    while await completed(engine) < before + burst:
        await asyncio.sleep(0.02)
    return burst / (time.perf_counter() - started)


async def soak(backend: str, url: str, args: argparse.Namespace, log: Path) -> list[dict[str, Any]]:
    engine = Engine(open_store(url), SystemClock(), Settings(database_url=url, retention=0))
    await engine.open()
    worker = start_worker(url, args.retention, log)
    rows: list[dict[str, Any]] = []
    try:
        await wait_for_worker(engine, worker)
        maximum = await measure_max(engine, args.burst)
        rate = maximum / 2
        print(
            f"\n{backend}: measured maximum {maximum:,.0f} runs/s; sending {rate:,.0f} runs/s for "
            f"{args.minutes} min, retention {args.retention}",
            flush=True,
        )
        per_tick, carry, sent = rate * TICK_S, 0.0, 0
        start = time.monotonic()
        next_row = start + 60
        while (now := time.monotonic()) < start + args.minutes * 60 + 1:  # + 1: the last minute's row
            carry += per_tick
            batch, carry = int(carry), carry - int(carry)
            if batch:
                await engine.send([outlast.Event(name="bench/go") for _ in range(batch)])
                sent += batch
            if now >= next_row:
                row = {
                    "backend": backend,
                    "minute": len(rows) + 1,
                    "sent": sent,
                    "backlog": await scalar(engine, "SELECT COUNT(*) FROM queue WHERE kind = 'run'"),
                    "runs_kept": await scalar(engine, "SELECT COUNT(*) FROM runs"),
                    "events_kept": await scalar(engine, "SELECT COUNT(*) FROM events"),
                    **await sizes(engine, url),
                    "worker_rss_mb": rss_mb(worker.pid),
                }
                rows.append(row)
                print(table([row], list(row)).splitlines()[-1], flush=True)
                next_row += 60
            await asyncio.sleep(max(0.0, TICK_S - (time.monotonic() - now)))
    finally:
        worker.terminate()
        worker.wait(60)
        await engine.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--retention", default="1m")
    parser.add_argument("--burst", type=int, default=3000, help="events sent at once to measure the maximum")
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            if backend == "sqlite":
                url = fresh_sqlite(f"{tmp}/soak.db")
            else:
                from tests.pg import fresh_database_url

                url = fresh_database_url(args.postgres_url, "outlast_bench_soak")
            rows += asyncio.run(soak(backend, url, args, Path(tmp) / f"worker-{backend}.log"))
    print(
        f"\nsoak: 3-step workload at half the measured maximum, retention {args.retention}, "
        f"{args.minutes:g} min per backend ({os.cpu_count()} cores)\n"
    )
    columns = ["backend", "minute", "sent", "backlog", "runs_kept", "events_kept", "db_mb", "wal_mb", "worker_rss_mb"]
    if any("dead_rows" in r for r in rows):
        columns.append("dead_rows")
    print(table(rows, columns))


if __name__ == "__main__":
    main()
