"""A suspended run holds nothing in a worker's memory: worker RSS with 100 and 10,000 suspended runs.

    python -m bench.suspended_rss

For each count, a separate process stores N events on a fresh SQLite file; then a fresh worker
process runs every run up to its suspension point (a sleep, a wait, a child invocation — one
third each) and reports its resident set size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from typing import Any

import outlast
from bench.workloads import fresh_sqlite, table
from outlast.testing import TestEngine

app = outlast.Outlast("bench-rss")


@app.function(id="child", trigger="bench/never")
async def child(ctx: outlast.Context) -> None:
    await ctx.step.sleep("long", "30d")


@app.function(id="suspends", trigger="bench/suspend")
async def suspends(ctx: outlast.Context) -> None:
    await ctx.step.run("work", lambda: "x" * 1000)
    kind = ctx.event.data["i"] % 3
    if kind == 0:
        await ctx.step.sleep("sleep", "7d")
    elif kind == 1:
        await ctx.step.wait_for_event("wait", event="bench/never", timeout="7d")
    else:
        await ctx.step.invoke("invoke", function=child, timeout="7d")


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return kb / 1024


async def child_main(url: str, role: str, n: int) -> dict[str, Any]:
    async with TestEngine(app, database_url=url, concurrency=200) as t:
        if role == "send":
            for start in range(0, n, 1000):
                await t.send(
                    [outlast.Event(name="bench/suspend", data={"i": i}) for i in range(start, min(n, start + 1000))]
                )
            return {}
        before = rss_mb()
        await t.run_until_idle()
        suspended = len(t.runs(function_id="suspends", status="running"))
        return {"suspended_runs": suspended, "rss_before_mb": before, "rss_after_mb": rss_mb()}


def run_child(url: str, role: str, n: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.suspended_rss", "--child", role, url, str(n)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(out.splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", nargs=3, metavar=("ROLE", "URL", "N"))
    args = parser.parse_args()
    if args.child:
        role, url, n = args.child
        print(json.dumps(asyncio.run(child_main(url, role, int(n)))))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (100, 10_000):
            url = fresh_sqlite(f"{tmp}/rss{n}.db")
            run_child(url, "send", n)
            rows.append({"runs": n, **run_child(url, "work", n)})
    print("worker memory with suspended runs (SQLite)\n")
    print(table(rows, ["runs", "suspended_runs", "rss_before_mb", "rss_after_mb"]))
    print(f"\ngrowth from 100 to 10,000 suspended runs: {rows[1]['rss_after_mb'] - rows[0]['rss_after_mb']:.1f} MB")


if __name__ == "__main__":
    main()
