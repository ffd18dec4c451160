"""The HTTP driver's cost: a 3-step function served by a FastAPI app on the official Inngest
Python SDK, through `outlast dev` on SQLite, beside the same function on the local driver.

    python -m bench.http_driver [--runs 500] [--latency-runs 100] [--profile]
    python -m bench.http_driver --sdks [--runs 200] [--latency-runs 50]

--sdks runs the same function on each official SDK (inngest-py, inngest@3 and inngest@4, the
TypeScript apps from tests/interop's packages) and says what a run costs in requests (inngest@4
checkpoints its steps) and in time.

Both run as real processes on loopback: `outlast dev` (with the local app, or with no app and
the SDK app synced by `--sdk-url`), and for HTTP the FastAPI app under uvicorn. Throughput:
--runs events sent at once, timed until every run completed. Latency: --latency-runs runs one
after another; each step returns the wall time its body started, so the gaps between steps are
what one step costs end to end (commit, then the next call). CPU seconds per step of each
process show where the work is; --profile also runs `outlast dev` under cProfile and prints
the server's top functions by own time, grouped by concern.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import pstats
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.workloads import table
from outlast.core.models import RunFilter
from outlast.storage import open_store

ROOT = Path(__file__).resolve().parents[1]
STEPS = 3
#: the same function on the official TypeScript SDK, by major version (the interop apps' packages)
JS_APPS = {
    "js3": ROOT / "tests" / "interop" / "js" / "node_modules",
    "js4": ROOT / "tests" / "interop" / "js4" / "node_modules",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Setup:
    """`outlast dev` (and, for HTTP or Connect, the SDK app) on a fresh SQLite file."""

    def __init__(self, tmp: Path, driver: str, *, profile: Path | None = None) -> None:
        self.driver = driver
        self.db = tmp / f"{driver}.db"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OUTLAST_", "INNGEST_"))}
        # the gateway on the main port only: Inngest's 8289 may be taken on a shared machine
        env.update(PYTHONPATH=str(ROOT), OUTLAST_DATABASE_URL=f"sqlite:///{self.db}", OUTLAST_CONNECT_PORT="off")
        self.app: subprocess.Popen[bytes] | None = None
        args = ["dev", "--port", str(self.port)]
        self.app_port = free_port()
        app_port = self.app_port
        if driver in JS_APPS:
            self.app = subprocess.Popen(
                ["node", str(ROOT / "bench" / "apps" / "inngest_js_app.js")],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={
                    **env,
                    "INNGEST_DEV": "1",
                    "INNGEST_BASE_URL": self.url,
                    "PORT": str(app_port),
                    "NODE_PATH": str(JS_APPS[driver]),
                    "BENCH_INNGEST_MAJOR": driver.removeprefix("js"),
                },
            )
            wait_port(app_port, self.app)
            args += ["--sdk-url", f"http://127.0.0.1:{app_port}/api/inngest"]
        elif driver == "http":
            self.app = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "bench.apps.inngest_app:app",
                    "--port",
                    str(app_port),
                    "--log-level",
                    "warning",
                ],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**env, "INNGEST_DEV": "1", "INNGEST_BASE_URL": self.url},
            )
            wait_port(app_port, self.app)
            args += ["--sdk-url", f"http://127.0.0.1:{app_port}/api/inngest"]
        elif driver == "local":
            args.insert(1, "bench.apps.local_app:app")
        runner = ["-m", "cProfile", "-o", str(profile), "-m", "outlast.cli"] if profile else ["-m", "outlast.cli"]
        self.server = subprocess.Popen(
            [sys.executable, *runner, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_port(self.port, self.server)
        if driver == "connect":  # the worker dials out to the server: no port of its own
            self.app = subprocess.Popen(
                [sys.executable, "-m", "bench.apps.inngest_connect"],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**env, "INNGEST_DEV": "1", "INNGEST_BASE_URL": self.url},
            )
        self.store = open_store(f"sqlite:///{self.db}")
        #: runs completed before the throughput measurement (warm-up, latency)
        self.finished_before = 0

    async def ready(self) -> None:
        await self.store.open()
        for _ in range(300):
            _version, configs = await self.store.load_functions()
            if any(c.id == "three-steps" for c in configs):
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("the function was never synced")

    async def send(self, n: int) -> None:
        async with httpx.AsyncClient(timeout=60) as client:
            for start in range(0, n, 500):
                events = [{"name": "bench/go", "data": {"i": i}} for i in range(start, min(n, start + 500))]
                reply = await client.post(f"{self.url}/e/bench", json=events)
                reply.raise_for_status()

    async def completed(self) -> list[Any]:
        return await self.store.list_runs(RunFilter(status="completed", limit=1_000_000))

    async def wait_completed(self, n: int, timeout: float = 600) -> list[Any]:
        deadline = time.monotonic() + timeout
        while len(runs := await self.completed()) < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(runs)} of {n} runs completed")
            await asyncio.sleep(0.02)
        return runs

    async def requests(self) -> int | None:
        """How many call requests the SDK app answered (None on the local driver, and for the
        Connect worker, which has no HTTP port to ask)."""
        if self.app is None or self.driver == "connect":
            return None
        async with httpx.AsyncClient() as client:
            return int((await client.get(f"http://127.0.0.1:{self.app_port}/requests")).json()["requests"])

    def cpu(self) -> dict[str, float]:
        out = {"server": cpu_seconds(self.server.pid)}
        if self.app is not None:
            out["app"] = cpu_seconds(self.app.pid)
        return out

    async def close(self) -> None:
        await self.store.close()
        for proc in (self.server, self.app):
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)


async def throughput(setup: Setup, runs: int) -> dict[str, Any]:
    before, requests_before = setup.cpu(), await setup.requests()
    started = time.perf_counter()
    await setup.send(runs)
    await setup.wait_completed(runs + setup.finished_before)
    seconds = time.perf_counter() - started
    after, requests_after = setup.cpu(), await setup.requests()
    steps = runs * STEPS
    row = {
        "driver": setup.driver,
        "runs": runs,
        "seconds": seconds,
        "runs_per_s": runs / seconds,
        "steps_per_s": steps / seconds,
        "server_cpu_ms_per_step": (after["server"] - before["server"]) * 1000 / steps,
    }
    if "app" in after:
        row["app_cpu_ms_per_step"] = (after["app"] - before["app"]) * 1000 / steps
    if requests_before is not None and requests_after is not None:
        row["requests_per_run"] = (requests_after - requests_before) / runs
    return row


async def latency(setup: Setup, runs: int) -> tuple[list[float], list[float]]:
    """Gaps (ms) between consecutive step starts, and each run's wall time (ms, from its
    creation to its end as stored), one run at a time."""
    gaps: list[float] = []
    walls: list[float] = []
    done = len(await setup.completed())
    for _ in range(runs):
        await setup.send(1)
        done += 1
        finished = await setup.wait_completed(done)
        times = finished[0].output  # newest first
        gaps += [(b - a) * 1000 for a, b in itertools.pairwise(times)]
        walls.append(float((finished[0].ended_at or 0) - finished[0].created_at))
    return gaps, walls


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


CONCERNS = (
    ("HTTP client (httpx, h11, anyio)", ("httpx", "httpcore", "h11", "anyio")),
    ("protocol codec (JCS, call bodies, replies)", ("outlast/protocol",)),
    ("HTTP driver", ("drivers/http.py",)),
    ("store (SQLite commits, claims)", ("outlast/storage", "sqlite3")),
    ("executor, ops, worker", ("outlast/core",)),
    ("HTTP server (uvicorn, starlette)", ("uvicorn", "starlette")),
    ("event loop and other", ("",)),
)


def profile_summary(path: Path, steps: int) -> list[dict[str, Any]]:
    """The server's own time (tottime) per step, by concern."""
    stats = pstats.Stats(str(path))
    totals: dict[str, float] = {}
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        concern = next(c for c, marks in CONCERNS if any(m in filename for m in marks))
        totals[concern] = totals.get(concern, 0.0) + tottime
    return [{"concern": c, "ms_per_step": totals.get(c, 0.0) * 1000 / steps} for c, _ in CONCERNS]


async def measure(tmp: Path, driver: str, args: argparse.Namespace) -> tuple[dict[str, Any], list[float]]:
    setup = Setup(tmp, driver)
    try:
        await setup.ready()
        await setup.send(20)  # warm up
        await setup.wait_completed(20)
        gaps, walls = await latency(setup, args.latency_runs)
        setup.finished_before = len(await setup.completed())
        row = await throughput(setup, args.runs)
    finally:
        await setup.close()
    row["run_ms_p50"] = pct(walls, 0.5)
    return row, gaps


async def profiled(tmp: Path, runs: int) -> list[dict[str, Any]]:
    path = tmp / "server.prof"
    setup = Setup(tmp, "http", profile=path)
    try:
        await setup.ready()
        await setup.send(runs)
        await setup.wait_completed(runs)
    finally:
        await setup.close()
    return profile_summary(path, runs * STEPS)


async def compare_sdks(args: argparse.Namespace) -> None:
    """The same 3-step function on each official SDK: requests per run (checkpointing) and time."""
    with tempfile.TemporaryDirectory() as name:
        rows = [(await measure(Path(name), driver, args))[0] for driver in ("http", "js3", "js4")]
    for row, sdk in zip(rows, ("inngest-py", "inngest@3", "inngest@4"), strict=True):
        row["sdk"] = sdk
    print(
        f"3-step function through `outlast dev` on SQLite, per official SDK: {args.runs} runs at once, "
        f"run wall time over {args.latency_runs} sequential runs "
        f"({platform.processor() or platform.machine()}, {os.cpu_count()} cores)\n"
    )
    columns = ["sdk", "requests_per_run", "run_ms_p50", "runs_per_s", "server_cpu_ms_per_step", "app_cpu_ms_per_step"]
    print(table(rows, columns))


async def main_async(args: argparse.Namespace) -> None:
    if args.sdks:
        await compare_sdks(args)
        return
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        local_row, local_gaps = await measure(tmp, "local", args)
        http_row, http_gaps = await measure(tmp, "http", args)
        print(
            f"3-step function through `outlast dev` on SQLite, {args.runs} runs at once; latency over "
            f"{args.latency_runs} sequential runs ({platform.processor() or platform.machine()}, "
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
        print(table([local_row, http_row], columns))
        rows = []
        for label, gaps in (("local", local_gaps), ("http", http_gaps)):
            rows.append({"driver": label, "step_gap_p50_ms": pct(gaps, 0.5), "step_gap_p99_ms": pct(gaps, 0.99)})
        rows.append(
            {
                "driver": "added by http",
                "step_gap_p50_ms": rows[1]["step_gap_p50_ms"] - rows[0]["step_gap_p50_ms"],
                "step_gap_p99_ms": rows[1]["step_gap_p99_ms"] - rows[0]["step_gap_p99_ms"],
            }
        )
        print("\nTime from one step's start to the next one's, one run at a time:\n")
        print(table(rows, ["driver", "step_gap_p50_ms", "step_gap_p99_ms"]))
        print(
            f"\nhttp / local: runs/s {http_row['runs_per_s'] / local_row['runs_per_s']:.2f}x, "
            f"median step gap {statistics.median(http_gaps) / statistics.median(local_gaps):.1f}x"
        )
        if args.profile:
            print(f"\n`outlast dev` under cProfile, {args.runs} HTTP runs: the server's own time per step\n")
            print(table(await profiled(tmp, args.runs), ["concern", "ms_per_step"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--latency-runs", type=int, default=100)
    parser.add_argument("--profile", action="store_true", help="also profile the server (cProfile)")
    parser.add_argument(
        "--sdks", action="store_true", help="compare the official SDKs instead (inngest-py, inngest@3, inngest@4)"
    )
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
