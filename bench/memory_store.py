"""`memory://` (inline SQLite in memory) beside a SQLite file and the old pure-Python memory store.

    python -m bench.memory_store [--repeat 3] [--tiny 50] [--old /work/wt-old]

Workload, through `outlast.testing.TestEngine` on a virtual clock:
- tiny test: open, one run of a 3-step function, read it back, close (median of --tiny);
- n runs: n runs of a 3-step function, then n runs of step -> sleep 1h -> wait_for_event(match=...)
  resumed by n matching events (best of --repeat), for n = 100 and 1000.

Every measurement runs in a fresh process, rows interleaved in each round. The old memory
store (the pure-Python store this repository had before `memory://` became SQLite) is measured
by running this same file with the Python of an old checkout (`--old`, which must hold a
`.venv`). The measuring half of this file imports only the public API, so it runs on either
version.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import outlast
from outlast.testing import TestEngine

app = outlast.Outlast("bench-memory")


async def _noop() -> int:
    return 1


@app.function(id="three-steps", trigger="bm/three")
async def three_steps(ctx: outlast.Context) -> int:
    for name in ("a", "b", "c"):
        await ctx.step.run(name, _noop)
    return 3


@app.function(id="sleep-wait", trigger="bm/order")
async def sleep_wait(ctx: outlast.Context) -> bool:
    await ctx.step.run("a", _noop)
    await ctx.step.sleep("nap", "1h")
    paid = await ctx.step.wait_for_event("paid", event="bm/paid", match="data.i", timeout="1d")
    return paid is not None


def _url(kind: str, tmp: str, tag: str) -> str:
    if kind == "sqlite-file":
        return f"sqlite:///{tmp}/{tag}-{time.perf_counter_ns()}.db"
    return "memory://"


class Clock:
    """Wall and CPU seconds (this process, all threads), paused while results are checked."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def start(self) -> None:
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def stop(self) -> None:
        self.wall += time.perf_counter() - self._wall
        self.cpu += time.process_time() - self._cpu


def _timed(work: Any) -> tuple[float, float]:
    clock = Clock()
    asyncio.run(work(clock))
    return clock.wall, clock.cpu


def tiny(url: str) -> Any:
    async def work(clock: Clock) -> None:  # a test: its assertion is part of it
        clock.start()
        async with TestEngine(app, database_url=url) as t:
            await t.send({"name": "bm/three", "data": {}})
            await t.run_until_idle()
            assert [r.status for r in t.runs()] == ["completed"]
        clock.stop()

    return work


def many(url: str, n: int) -> Any:
    async def work(clock: Clock) -> None:  # the runs; reading all 2n back to check them is not timed
        clock.start()
        t = TestEngine(app, database_url=url, concurrency=200)
        await t.__aenter__()
        await t.send([{"name": "bm/three", "data": {"i": i}} for i in range(n)])
        await t.run_until_idle()
        await t.send([{"name": "bm/order", "data": {"i": i}} for i in range(n)])
        await t.run_until_idle()
        t.advance("1h")
        await t.run_until_idle()
        await t.send([{"name": "bm/paid", "data": {"i": i}} for i in range(n)])
        await t.run_until_idle()
        clock.stop()
        done = len(t.runs(status="completed"))
        assert done == 2 * n, f"{done} of {2 * n} runs completed"
        clock.start()
        await t.__aexit__(None, None, None)
        clock.stop()

    return work


def measure(kind: str, what: str, count: int, tmp: str) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of `count` tiny tests, or of one n-run workload (`what` = n)."""
    # warm up first: lazy imports (the CEL library, loaded on first use since `import outlast`
    # became light), compiled expressions, the schema template
    if what == "tiny":
        _timed(tiny(_url(kind, tmp, "warm")))
        return [_timed(tiny(_url(kind, tmp, f"t{i}"))) for i in range(count)]
    _timed(many(_url(kind, tmp, "warm"), 10))
    return [_timed(many(_url(kind, tmp, f"n{what}"), int(what)))]


# -- the table (runs on the current checkout only) ---------------------------------------------

VARIANTS = ("memory://", "sqlite-file", "old memory://")


def measure_variant(variant: str, what: str, count: int, tmp: str, old: str | None) -> list[tuple[float, float]]:
    """Measure in a fresh process (the same Python state for every row): this checkout's Python, or
    the old checkout's for the old store."""
    if variant == "old memory://":
        if old is None:
            return []
        python, cwd, kind = os.path.join(old, ".venv", "bin", "python"), old, "memory://"
    else:
        python, cwd, kind = sys.executable, os.getcwd(), variant
    out = subprocess.run(
        [python, "-I", os.path.abspath(__file__), "--child", kind, what, str(count), tmp],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [(wall, cpu) for wall, cpu in json.loads(out.strip().splitlines()[-1])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the n-run workloads (best is kept)")
    parser.add_argument("--tiny", type=int, default=60, help="tiny tests in all (median is kept)")
    parser.add_argument("--old", default="/work/wt-old", help="checkout with the old memory store and a .venv")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, what, count, tmp = args.child
        print(json.dumps(measure(kind, what, int(count), tmp)))
        return
    from bench.workloads import table

    old = args.old if os.path.exists(os.path.join(args.old, ".venv", "bin", "python")) else None
    tiny_s: dict[str, list[float]] = {v: [] for v in VARIANTS}
    best: dict[tuple[str, str], tuple[float, float]] = {}
    per_round = max(1, args.tiny // args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):  # rounds interleave the variants: a noisy moment hits them all
            for variant in VARIANTS:
                tiny_s[variant] += [wall for wall, _cpu in measure_variant(variant, "tiny", per_round, tmp, old)]
                for n in ("100", "1000"):
                    for wall, cpu in measure_variant(variant, n, 1, tmp, old):
                        was = best.get((variant, n), (float("inf"), float("inf")))
                        best[variant, n] = (min(was[0], wall), min(was[1], cpu))
    rows: list[dict[str, Any]] = []
    base = best.get(("old memory://", "1000"))
    for variant in VARIANTS:
        if not tiny_s[variant]:
            continue
        wall, cpu = best[variant, "1000"]
        row: dict[str, Any] = {
            "store": variant,
            "tiny_test_ms": statistics.median(tiny_s[variant]) * 1000,
            "n100_s": best[variant, "100"][0],
            "n1000_s": wall,
            "n1000_cpu_s": cpu,
        }
        if base:
            row["n1000_vs_old"] = wall / base[0]
            row["n1000_cpu_vs_old"] = cpu / base[1]
        rows.append(row)
    print(
        f"TestEngine workloads; tiny test: median of {per_round * args.repeat}; n runs: best of {args.repeat}"
        " (wall seconds; cpu: this process, all threads)"
        + ("" if old else f"; no old checkout at {args.old}: its row is left out")
    )
    print()
    print(
        table(rows, ["store", "tiny_test_ms", "n100_s", "n1000_s", "n1000_cpu_s", "n1000_vs_old", "n1000_cpu_vs_old"])
    )


if __name__ == "__main__":
    sys.exit(main())
