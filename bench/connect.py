"""Connect against HTTP serving: the same 3-step function on the official Inngest Python SDK,
served over HTTP (FastAPI, synced by `--sdk-url`) and by a Connect worker (`inngest[connect]`,
one outbound WebSocket), through `outlast dev` on SQLite.

    python -m bench.connect [--runs 500] [--latency-runs 100]

Throughput: --runs events sent at once, timed until every run completed. Latency: --latency-runs
runs one after another; each step returns the wall time its body started, so the gaps between
steps are what one step costs end to end (the commit, then the next request to the app). CPU
per step of the server and of the app process shows where the work goes (`bench.http_driver`
has the harness).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
from pathlib import Path

from bench.http_driver import measure, pct
from bench.workloads import table


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        measured = {driver: await measure(tmp, driver, args) for driver in ("http", "connect")}
    print(
        f"3-step function on the Inngest Python SDK through `outlast dev` on SQLite, {args.runs} runs at once; "
        f"latency over {args.latency_runs} sequential runs ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()})\n"
    )
    columns = [
        "driver",
        "runs",
        "seconds",
        "runs_per_s",
        "steps_per_s",
        "server_cpu_ms_per_step",
        "app_cpu_ms_per_step",
    ]
    print(table([row for row, _gaps in measured.values()], columns))
    gaps = [
        {"driver": driver, "step_gap_p50_ms": pct(g, 0.5), "step_gap_p99_ms": pct(g, 0.99)}
        for driver, (_row, g) in measured.items()
    ]
    print("\nTime from one step's start to the next one's, one run at a time:\n")
    print(table(gaps, ["driver", "step_gap_p50_ms", "step_gap_p99_ms"]))
    (http, http_gaps), (conn, conn_gaps) = measured["http"], measured["connect"]
    print(
        f"\nconnect / http: runs/s {conn['runs_per_s'] / http['runs_per_s']:.2f}x, "
        f"median step gap {statistics.median(conn_gaps) / statistics.median(http_gaps):.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--latency-runs", type=int, default=100)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
