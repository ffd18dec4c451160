"""Peer benchmark: Restate (server 1.7, RocksDB) with a Python service on the 3-step workload.

Methodology
-----------
* Workload: a Restate service handler of three `ctx.run_typed` steps that each return 1
  (`bench/peers/restate_service.py`); `n_runs` invocations, timed from the first request to the
  last response through the ingress (`POST /Bench/three_steps`, which returns when the
  invocation ended), with at most `--in-flight` requests open at once (default 500).
* Server: `restate-server` from npm `@restatedev/restate-server` (it ships its binary), installed
  under the peers' cache (`OUTLAST_BENCH_PEERS`, default ~/.cache/outlast-bench), with its
  defaults (RocksDB, 24 partitions) on a fresh base directory. It tries an outbound call at
  start, so the whole measurement runs in a network namespace of its own (`unshare -n`, with
  loopback up): server, service and client all on 127.0.0.1 there.
* Service: the SDK's documented set-up, hypercorn serving `restate.app` over HTTP/2 (h2c, the
  bidirectional protocol), one process (`--workers 0`: no supervisor), as Outlast runs one worker process.
* Not measured: server start, registration of the deployment, one warm-up invocation.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench.peers.peer_process import (
    CACHE,
    child_json,
    cpu_seconds,
    in_namespace,
    post_json,
    print_result,
    run_child,
    stop,
    wait_http,
)

SERVER = CACHE / "node_modules" / "@restatedev" / "restate-server-linux-x64" / "bin" / "restate-server"
INGRESS, ADMIN, SERVICE = "http://127.0.0.1:8080", "http://127.0.0.1:9070", "http://127.0.0.1:9080"


def run_restate(n_runs: int, *, workdir: str, in_flight: int = 500) -> dict[str, Any]:
    """Benchmark `n_runs` Restate invocations in a fresh network namespace and server."""
    _check_installed()
    cmd = in_namespace("bench.peers.restate_peer", "--child", "--runs", str(n_runs), "--in-flight", str(in_flight))
    return run_child(cmd, system="restate", n_runs=n_runs, cwd=workdir)


def restate_latency(samples: int, *, workdir: str) -> list[float]:
    """Milliseconds of each of `samples` invocations made one at a time (curl's time_total)."""
    _check_installed()
    cmd = in_namespace("bench.peers.restate_peer", "--child", "--runs", str(samples), "--in-flight", "1")
    return list(child_json(cmd, system="restate", cwd=workdir)["latencies_ms"])


def _check_installed() -> None:
    if not SERVER.exists():
        raise RuntimeError(f"restate-server not found at {SERVER}: see bench/README.md (peers)")


def _child(n_runs: int, in_flight: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="restate_bench_") as base:
        server = subprocess.Popen(
            [str(SERVER), "--base-dir", base, "--node-name", "bench"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "RESTATE_LOG_FILTER": "error"},
        )
        service = subprocess.Popen(
            [
                *(sys.executable, "-m", "hypercorn", "bench.peers.restate_service:app"),
                *("--workers", "0", "--bind", SERVICE.removeprefix("http://")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_http(f"{ADMIN}/health", proc=server)
            wait_http(f"{INGRESS}/restate/health", proc=server)
            _register()
            pids = {"server": server.pid, "service": service.pid}
            before = {k: cpu_seconds(p) for k, p in pids.items()}
            seconds, latencies = _measure(n_runs, in_flight, base)
            if in_flight == 1:
                return {"seconds": seconds, "latencies_ms": latencies}
            cpu = {f"cpu_ms_per_run_{k}": (cpu_seconds(p) - before[k]) * 1000 / n_runs for k, p in pids.items()}
            return {"seconds": seconds, **cpu}
        finally:
            stop(service)
            stop(server)


def _register() -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            post_json(f"{ADMIN}/deployments", {"uri": SERVICE})
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    while True:  # the ingress learns of the service a moment after registration
        try:
            if post_json(f"{INGRESS}/Bench/three_steps", 0) == 3:
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _measure(n_runs: int, in_flight: int, workdir: str) -> tuple[float, list[float]]:
    """Time `n_runs` ingress calls made by curl in parallel mode (a client in C, so the client's CPU
    takes little from the two cores the server and the service share)."""
    config = os.path.join(workdir, "requests.curl")
    request = (
        'url = "{url}"\ndata = "{i}"\noutput = "/dev/null"\nheader = "content-type: application/json"\n'
        'write-out = "%{{http_code}} %{{time_total}}\\n"\n'
    )
    with open(config, "w") as f:
        f.write("next\n".join(request.format(url=f"{INGRESS}/Bench/three_steps", i=i) for i in range(n_runs)))
    cmd = ["curl", "--silent", "--show-error", "--parallel", "--parallel-max", str(in_flight), "--config", config]
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    seconds = time.perf_counter() - start
    answers = [line.split() for line in out.splitlines()]
    if [code for code, _ in answers] != ["200"] * n_runs:
        raise RuntimeError(f"unexpected Restate answers: {sorted({code for code, _ in answers})}")
    return seconds, [float(total) * 1000 for _, total in answers]


def main(argv: list[str] | None = None) -> None:
    """CLI: run the benchmark (or, with --child, the measured process inside its namespace)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--in-flight", type=int, default=500)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print_result(**_child(args.runs, args.in_flight))
        return
    with tempfile.TemporaryDirectory(prefix="restate_bench_") as tmp:
        print(run_restate(args.runs, workdir=tmp, in_flight=args.in_flight))


if __name__ == "__main__":
    main()
