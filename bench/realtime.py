"""Realtime: the publish step's cost beside `step.run`, and fan-out to many subscribers.

    python -m bench.realtime [--runs 300] [--subscribers 1000] [--rate 100] [--seconds 10] [--pg URL]

- publish step vs step.run: `--runs` runs of a function of 3 `ctx.step.publish` and of one of 3
  `ctx.step.run` (doing nothing), through a worker in this process, on a SQLite file (and on
  PostgreSQL with --pg); wall time per step.
- fan-out: `--subscribers` Python subscribers of one channel in this process (one hub, each its
  own bounded buffer) while another process publishes `--rate` messages a second for
  `--seconds` on the same database (cross-process: wake-up sockets on SQLite, NOTIFY on
  PostgreSQL). Reported: this process's CPU (all threads) as a share of one core, and the
  delivery latency from just before the publishing transaction to each subscriber's receipt
  (p50, p99). A second row with one subscriber gives the latency of the wake-up path alone.
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

import outlast
from outlast.core.realtime import MessageRecord
from outlast.runtime.engine import Engine
from outlast.settings import Settings
from outlast.storage import open_store
from outlast.testing import TestEngine

app = outlast.Outlast("bench-realtime")


async def _noop() -> int:
    return 1


@app.function(id="publishes", trigger="br/publish")
async def publishes(ctx: outlast.Context) -> None:
    for name in ("a", "b", "c"):
        await ctx.step.publish(name, channel=f"bench:{ctx.run_id}", topic="t", data={"step": name})


@app.function(id="runs", trigger="br/run")
async def runs(ctx: outlast.Context) -> None:
    for name in ("a", "b", "c"):
        await ctx.step.run(name, _noop)


async def _steps(url: str, event: str, n: int) -> float:
    """Seconds per step for n runs of 3 steps, drained by an in-process worker."""
    async with TestEngine(app, database_url=url) as t:
        await t.send([{"name": event, "data": {"i": i}} for i in range(n)])
        started = time.perf_counter()
        await t.run_until_idle()
        elapsed = time.perf_counter() - started
        assert len(t.runs(status="completed")) == n
    return elapsed / (3 * n)


def publish_vs_run(urls: dict[str, str], n: int) -> None:
    print(f"\npublish step vs step.run, {n} runs of 3 steps, per step (best of 2)")
    print(f"{'backend':<10} {'step.run':>10} {'publish':>10} {'ratio':>7}")
    for name, make in urls.items():
        run = min(asyncio.run(_steps(make(), "br/run", n)) for _ in range(2))
        pub = min(asyncio.run(_steps(make(), "br/publish", n)) for _ in range(2))
        print(f"{name:<10} {run * 1e6:>8.0f}µs {pub * 1e6:>8.0f}µs {pub / run:>6.2f}x")


# -- fan-out ---------------------------------------------------------------------------------------


def publisher_main(url: str, rate: float, seconds: float) -> None:
    """In its own process: publish `rate` messages a second, each carrying the time just before."""

    async def main() -> None:
        store = open_store(url)
        await store.open()
        interval, start = 1 / rate, time.perf_counter()
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, start + i * interval - time.perf_counter()))
            now = time.time()
            await store.publish([MessageRecord(channel="fan", topic="t", data={"i": i, "t": now}, ts=int(now * 1000))])
        await store.close()

    asyncio.run(main())


async def _fan_out(url: str, subscribers: int, rate: float, seconds: float) -> tuple[float, float, float, int]:
    engine = Engine(open_store(url), _clock(), Settings())
    await engine.open()
    hub = await engine.realtime()
    subs = [await hub.subscribe("fan") for _ in range(subscribers)]
    expected = int(rate * seconds)
    latencies: list[float] = []

    async def consume(sub: object) -> None:
        for _ in range(expected):
            message = await sub.next_message()  # type: ignore[attr-defined]
            assert message is not None
            latencies.append(time.time() - message.data["t"])

    cpu, wall = time.process_time(), time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    args = [sys.executable, "-m", "bench.realtime", "--publisher", url, "--rate", str(rate), "--seconds", str(seconds)]
    publisher = subprocess.Popen(args, env=env)
    await asyncio.wait_for(asyncio.gather(*(consume(s) for s in subs)), seconds * 3 + 30)
    cpu_share = (time.process_time() - cpu) / (time.perf_counter() - wall)
    publisher.wait(30)
    overflows = sum(s.overflows for s in subs)
    await engine.close()
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    return cpu_share, p50, p99, overflows


def _clock() -> object:
    from outlast.core.clock import SystemClock

    return SystemClock()


def fan_out(urls: dict[str, str], subscribers: int, rate: float, seconds: float) -> None:
    print(f"\nfan-out: {rate:.0f} msg/s for {seconds:.0f} s from another process, subscribers in one process")
    print(f"{'backend':<10} {'subscribers':>11} {'CPU (1 core)':>13} {'p50':>9} {'p99':>9} {'overflows':>9}")
    for name, make in urls.items():
        for n in (1, subscribers):
            cpu, p50, p99, overflows = asyncio.run(_fan_out(make(), n, rate, seconds))
            print(f"{name:<10} {n:>11} {cpu:>12.0%} {p50 * 1e3:>7.1f}ms {p99 * 1e3:>7.1f}ms {overflows:>9}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--pg", default=os.environ.get("OUTLAST_BENCH_POSTGRES_URL"))
    parser.add_argument("--publisher", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publisher:
        publisher_main(args.publisher, args.rate, args.seconds)
        return
    tmp = tempfile.mkdtemp(prefix="bench-realtime-")
    urls = {"sqlite": lambda: f"sqlite:///{tmp}/{time.perf_counter_ns()}.db"}
    if args.pg:
        urls["postgres"] = lambda: _fresh_pg(args.pg)
    publish_vs_run(urls, args.runs)
    fan_out(urls, args.subscribers, args.rate, args.seconds)


def _fresh_pg(url: str) -> str:
    """A new, empty database on the server of `url` (dropped by nobody: a scratch server)."""
    import psycopg

    name = f"bench_rt_{time.perf_counter_ns()}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # a name made here, not input
    return url.rsplit("/", 1)[0] + "/" + name


if __name__ == "__main__":
    main()
