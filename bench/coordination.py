"""Coordination beyond Inngest: a signal's round trip, and waits with lookback beside waits without.

    python -m bench.coordination [--samples 100] [--waits 10000] [--earlier 1000] [--url postgresql://...]

Round trip: one idle `outlast worker` process; for each sample a run is started and waits for a
signal, then this process sends the signal and the time until the step after the wait ran (as
that step recorded it) is taken; p50 and p99 on SQLite (wake-up sockets) and PostgreSQL
(LISTEN/NOTIFY). Lookback: on the virtual clock, `--waits` runs each reach
`wait_for_event(match="data.order_id")`, with and without `lookback="1h"`, while `--earlier` events of
the waited name (for other orders) were received in the window; the time to store them all.
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
from outlast.core.models import RunFilter
from outlast.testing import TestEngine

app = outlast.Outlast("bench-signals")


@app.function(id="signalled", trigger="bench/sig")
async def signalled(ctx: outlast.Context) -> float:
    await ctx.step.wait_for_signal("w", signal=f"sig-{ctx.event.data['i']}", timeout="1h")
    return float(await ctx.step.run("after", time.time))


lookback_app = outlast.Outlast("bench-lookback")


@lookback_app.function(id="with", trigger="bench/with")
async def with_lookback(ctx: outlast.Context) -> bool:
    got = await ctx.step.wait_for_event("paid", event="bench/paid", match="data.order_id", timeout="1d", lookback="1h")
    return got is not None


@lookback_app.function(id="without", trigger="bench/without")
async def without_lookback(ctx: outlast.Context) -> bool:
    got = await ctx.step.wait_for_event("paid", event="bench/paid", match="data.order_id", timeout="1d")
    return got is not None


async def round_trip(url: str, label: str, samples: int) -> dict[str, Any]:
    engine = await open_engine(app, url)
    [worker] = start_workers(url, "bench.coordination:app", 1)
    delays: list[float] = []
    try:
        await wait_for_workers(engine, 1)
        for i in range(samples):
            [event_id] = await engine.send(outlast.Event(name="bench/sig", data={"i": i}))
            while not await _waiting(engine, event_id):
                await asyncio.sleep(0.005)
            sent = time.time()
            assert await engine.send_signal(f"sig-{i}", {"i": i}) is not None
            while (
                run := (await engine.store.list_runs(RunFilter(event_id=event_id, limit=1)))[0]
            ).status != "completed":
                await asyncio.sleep(0.002)
            delays.append((float(run.output) - sent) * 1000)
    finally:
        stop([worker])
        await engine.close()
    delays.sort()
    return {
        "backend": label,
        "samples": samples,
        "p50_ms": statistics.median(delays),
        "p99_ms": delays[min(len(delays) - 1, int(len(delays) * 0.99))],
    }


async def _waiting(engine: Any, event_id: str) -> bool:
    [run] = await engine.store.list_runs(RunFilter(event_id=event_id, limit=1)) or [None]
    if run is None:
        return False
    full = await engine.store.get_run(run.id)
    return full is not None and any(s.status == "waiting" for s in full.steps)


async def lookback(url: str, label: str, waits: int, earlier: int) -> list[dict[str, Any]]:
    rows = []
    for trigger in ("bench/without", "bench/with"):
        async with TestEngine(lookback_app, database_url=url, concurrency=500) as t:
            for start in range(0, earlier, 1000):
                await t.send(
                    [
                        outlast.Event(name="bench/paid", data={"order_id": -1 - i})
                        for i in range(start, min(earlier, start + 1000))
                    ]
                )
            started = time.perf_counter()
            for start in range(0, waits, 1000):
                await t.send(
                    [outlast.Event(name=trigger, data={"order_id": i}) for i in range(start, min(waits, start + 1000))]
                )
                await t.run_until_idle()
            seconds = time.perf_counter() - started
        rows.append(
            {
                "backend": label,
                "waits": waits,
                "lookback": "1h" if trigger == "bench/with" else "none",
                "earlier_events": earlier,
                "seconds": seconds,
                "ms_per_wait": seconds / waits * 1000,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--waits", type=int, default=10_000)
    parser.add_argument("--earlier", type=int, default=1_000)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    trips, waits = [], []
    with tempfile.TemporaryDirectory() as tmp:
        trips.append(asyncio.run(round_trip(fresh_sqlite(os.path.join(tmp, "rt.db")), "sqlite", args.samples)))
        waits += asyncio.run(lookback(fresh_sqlite(os.path.join(tmp, "lb.db")), "sqlite", args.waits, args.earlier))
    if not args.no_postgres:
        from tests.pg import fresh_database_url

        trips.append(
            asyncio.run(round_trip(fresh_database_url(args.url, "outlast_bench_rt"), "postgresql", args.samples))
        )
        url = fresh_database_url(args.url, "outlast_bench_lb")
        waits += asyncio.run(lookback(url, "postgresql", args.waits, args.earlier))
    print("signal round trip: send_signal → the step after the wait ran (one idle worker process)\n")
    print(table(trips, ["backend", "samples", "p50_ms", "p99_ms"]))
    print("\nruns reaching wait_for_event(match=...), with and without lookback\n")
    print(table(waits, ["backend", "waits", "lookback", "earlier_events", "seconds", "ms_per_wait"]))


if __name__ == "__main__":
    main()
