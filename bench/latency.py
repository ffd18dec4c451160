"""Idle latency: one 3-step run, from send to its stored end, on an idle engine.

    python -m bench.latency [--samples 200] [--url postgresql://...] [--no-peers] [--delay-ms 5]

An engine with one in-process worker, idle, on a fresh SQLite file and a fresh PostgreSQL
database; then, --samples times, one event of the 3-step function is sent and the clock stops
when the run's end is committed (the executor reports the attempt's end once the store returned
from the commit of the run's end), then waits a little, so each run starts on an idle engine.
The peers do the same one invocation at a time where it is cheap to measure (see their scripts):
DBOS (start_workflow + get_result), Restate (one ingress call at a time, timed by curl) and
Temporal (execute_workflow). Outlast is measured as it runs by default (each step's result
committed before the next step body starts, the last with the run's end) and with
`step_commit_delay_ms` (results committed with the run's end when the steps finish within that
delay; opt-in, see Settings).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from typing import Any

import outlast
from bench.workloads import app, fresh_sqlite, table
from outlast.core.clock import SystemClock
from outlast.core.collector import tuned_for_service
from outlast.core.observe import AttemptEnded, Observation
from outlast.runtime.engine import Engine
from outlast.runtime.worker import Worker
from outlast.settings import Settings
from outlast.storage import open_store
from tests.pg import fresh_database_url

#: the pause between samples, so each run meets an idle engine (its wake-ups and windows closed)
IDLE_S = 0.02


async def outlast_latency(url: str, samples: int, *, delay_ms: int = 0) -> list[float]:
    """Milliseconds from `send` to the stored end of each run, one run at a time."""
    settings = Settings(database_url=url, step_commit_delay_ms=delay_ms)
    engine = Engine(open_store(url), SystemClock(), settings)
    await engine.add_source(app)
    await engine.open()
    ended = Ends()

    def on_end(o: Observation) -> None:
        if isinstance(o, AttemptEnded) and o.outcome == "completed":
            ended.record(o.run_id)

    engine.bus.subscribe(on_end)
    stop = asyncio.Event()
    worker = asyncio.create_task(Worker(engine).run(stop))
    delays = []
    try:
        await _one(engine, ended)  # warm-up: imports, prepared statements, the first claim
        for _ in range(samples):
            await asyncio.sleep(IDLE_S)
            delays.append(await _one(engine, ended))
    finally:
        stop.set()
        await worker
        await engine.close()
    return delays


class Ends:
    """When each run's end was committed (the executor's report), in order: runs go one at a time,
    so the next end is the run just sent's. (Finding the run by its event instead would add a
    store read beside the run's own transactions, and delay them.)"""

    def __init__(self) -> None:
        self.at: asyncio.Queue[float] = asyncio.Queue()

    def record(self, run_id: str) -> None:
        self.at.put_nowait(time.perf_counter())

    async def next(self) -> float:
        return await asyncio.wait_for(self.at.get(), 30)


async def _one(engine: Engine, ended: Ends) -> float:
    started = time.perf_counter()
    await engine.send(outlast.Event(name="bench/go", data={}))
    return (await ended.next() - started) * 1000


def summary(system: str, delays: list[float]) -> dict[str, Any]:
    ordered = sorted(delays)
    return {
        "system": system,
        "samples": len(ordered),
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "max_ms": ordered[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--delay-ms", type=int, default=5, help="step_commit_delay_ms of the opt-in rows")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, tuned_for_service():
        for delay in (0, args.delay_ms):
            mode = "" if delay == 0 else f", step_commit_delay_ms={delay}"
            sqlite_url = fresh_sqlite(f"{tmp}/latency{delay}.db")
            sqlite = asyncio.run(outlast_latency(sqlite_url, args.samples, delay_ms=delay))
            rows.append(summary(f"outlast, sqlite{mode}", sqlite))
            pg_url = fresh_database_url(args.url, f"outlast_bench_latency{delay}")
            postgres = asyncio.run(outlast_latency(pg_url, args.samples, delay_ms=delay))
            rows.append(summary(f"outlast, postgresql{mode}", postgres))
        if not args.no_peers:
            rows += peer_rows(args.samples, args.url, tmp)
    print(f"one 3-step run from send to its stored end, idle engine, one run at a time, {args.samples} samples\n")
    print(table(rows, ["system", "samples", "p50_ms", "p99_ms", "max_ms"]))


def peer_rows(samples: int, url: str, tmp: str) -> list[dict[str, Any]]:
    from bench.peers.dbos_peer import dbos_latency
    from bench.peers.restate_peer import restate_latency
    from bench.peers.temporal_peer import temporal_latency

    dbos_url = url.rsplit("/", 1)[0] + "/outlast_bench_dbos"
    return [
        summary("dbos, sqlite", dbos_latency(samples, workdir=tmp)),
        summary("dbos, postgresql", dbos_latency(samples, database_url=dbos_url, workdir=tmp)),
        summary("restate", restate_latency(samples, workdir=tmp)),
        summary("temporal", temporal_latency(samples, workdir=tmp)),
    ]


if __name__ == "__main__":
    main()
