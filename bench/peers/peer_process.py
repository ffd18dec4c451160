"""What the peer benchmarks share: their cache of installed servers, a child process that prints
one JSON line, readiness polling, and the row they report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

STEPS_PER_RUN = 3
REPO_ROOT = Path(__file__).resolve().parents[2]
#: where `npm install` put the peers' servers (never in the repository): see bench/README.md
CACHE = Path(os.environ.get("OUTLAST_BENCH_PEERS", Path.home() / ".cache" / "outlast-bench"))


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}


def run_child(cmd: list[str], *, system: str, n_runs: int, cwd: str) -> dict[str, Any]:
    """Run a measuring child process; its last stdout line is {"seconds": ..., ...}: the row."""
    measured = child_json(cmd, system=system, cwd=cwd)
    return row(system, n_runs, float(measured.pop("seconds")), **measured)


def child_json(cmd: list[str], *, system: str, cwd: str, timeout: float = 900) -> dict[str, Any]:
    """Run a measuring child process and return the JSON object of its last stdout line."""
    proc = subprocess.run(cmd, cwd=cwd, env=child_env(), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{system} child failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    measured: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return measured


def in_namespace(module: str, *args: str) -> list[str]:
    """A command running `python -m module args` in a network namespace of its own, loopback up."""
    inner = " ".join([sys.executable, "-m", module, *args])
    return ["unshare", "-n", "sh", "-c", f"ip link set lo up && exec {inner}"]


def row(system: str, n_runs: int, seconds: float, **extra: Any) -> dict[str, Any]:
    return {
        "system": system,
        "runs": n_runs,
        "seconds": seconds,
        "runs_per_s": n_runs / seconds,
        "steps_per_s": n_runs * STEPS_PER_RUN / seconds,
        **extra,
    }


def wait_http(url: str, *, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Poll `url` until it answers 2xx (a readiness signal), or fail naming it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if 200 <= resp.status < 300:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process serving {url} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} not ready after {timeout} s")
        time.sleep(0.05)


def post_json(url: str, body: Any) -> Any:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def print_result(**measured: Any) -> None:
    print(json.dumps(measured))
    sys.stdout.flush()


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of a process (this one by default)."""
    from bench.workloads import cpu_seconds as of_process

    return of_process(pid or os.getpid())
