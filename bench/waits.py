"""Matching one incoming event against many waiting runs: indexed, so flat in the number of waits.

    python -m bench.waits [--events 200]

For 10 and 10,000 runs waiting on one event name (`wait_for_event(match="data.order_id")`),
the time to ingest one event that resumes exactly one of them, averaged over --events events.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from typing import Any

import outlast
from bench.workloads import fresh_sqlite, table
from outlast.testing import TestEngine

app = outlast.Outlast("bench-waits")


@app.function(id="waiter", trigger="bench/order")
async def waiter(ctx: outlast.Context) -> bool:
    paid = await ctx.step.wait_for_event("paid", event="bench/paid", match="data.order_id", timeout="1d")
    return paid is not None


async def measure(url: str, waiting: int, events: int) -> dict[str, Any]:
    async with TestEngine(app, database_url=url, concurrency=500) as t:
        for start in range(0, waiting, 1000):
            await t.send(
                [
                    outlast.Event(name="bench/order", data={"order_id": i})
                    for i in range(start, min(waiting, start + 1000))
                ]
            )
            await t.run_until_idle()
        targets = [i * waiting // events for i in range(events)]
        started = time.perf_counter()
        for order_id in targets:
            await t.send(outlast.Event(name="bench/paid", data={"order_id": order_id}))
        seconds = time.perf_counter() - started
        await t.run_until_idle()
        resumed = len(t.runs(status="completed"))
    assert resumed == len(set(targets)), "each event must resume exactly one run"
    return {"backend": url.split(":")[0], "waiting_runs": waiting, "ms_per_match": seconds / events * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--postgres-url", default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (10, 10_000):
            urls = ["memory://", fresh_sqlite(f"{tmp}/w{n}.db")] + ([args.postgres_url] if args.postgres_url else [])
            rows += [asyncio.run(measure(url, n, min(args.events, n))) for url in urls]
    print("time to match one incoming event, by number of runs waiting on its name\n")
    print(table(rows, ["backend", "waiting_runs", "ms_per_match"]))


if __name__ == "__main__":
    main()
