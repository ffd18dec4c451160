"""One run of 1,000 sequential steps: is the time per step flat (checkpointed, O(N)) or growing?

    python -m bench.long_run [--steps 1000]

Prints the time per step over the first 100 and the last 100 steps, per backend.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from typing import Any

import outlast
from bench.workloads import fresh_sqlite, table
from outlast.core.clock import SystemClock
from outlast.core.observe import AttemptEnded
from outlast.runtime.engine import Engine
from outlast.runtime.worker import Worker
from outlast.settings import Settings
from outlast.storage import open_store

app = outlast.Outlast("bench-long")
stamps: list[float] = []


def _stamp() -> int:
    stamps.append(time.perf_counter())
    return len(stamps)


@app.function(id="long", trigger="bench/long")
async def long_run(ctx: outlast.Context) -> int:
    n = int(ctx.event.data["steps"])
    for i in range(n):
        await ctx.step.run(f"step-{i}", _stamp)
    return n


async def measure(url: str, steps: int) -> dict[str, Any]:
    stamps.clear()
    settings = Settings(database_url=url, max_steps_per_run=steps)
    engine = Engine(open_store(url), SystemClock(), settings)
    await engine.add_source(app)
    await engine.open()
    stop = asyncio.Event()
    finished = asyncio.Event()
    engine.bus.subscribe(lambda o: finished.set() if isinstance(o, AttemptEnded) and o.outcome == "completed" else None)
    await engine.send(outlast.Event(name="bench/long", data={"steps": steps}))
    worker = asyncio.create_task(Worker(engine).run(stop))
    await finished.wait()
    stop.set()
    await worker
    await engine.close()
    first = (stamps[100] - stamps[0]) / 100
    last = (stamps[-1] - stamps[-101]) / 100
    return {
        "backend": url.split(":")[0],
        "steps": steps,
        "first_100_ms_per_step": first * 1000,
        "last_100_ms_per_step": last * 1000,
        "last/first": last / first,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--postgres-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        urls = ["memory://", fresh_sqlite(f"{tmp}/long.db")] + ([args.postgres_url] if args.postgres_url else [])
        rows = [asyncio.run(measure(url, args.steps)) for url in urls]
    print(f"one run of {args.steps} sequential steps\n")
    print(table(rows, ["backend", "steps", "first_100_ms_per_step", "last_100_ms_per_step", "last/first"]))


if __name__ == "__main__":
    main()
