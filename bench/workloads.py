"""Outlast workloads shared by the benchmark scripts: the 3-step function, run end to end, and
the event-to-first-step latency of an idle `outlast worker` in its own process."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from typing import Any

import outlast
from outlast.core.clock import SystemClock
from outlast.core.models import RunFilter
from outlast.core.observe import AttemptEnded, Observation
from outlast.runtime.engine import Engine
from outlast.runtime.worker import Worker
from outlast.settings import Settings
from outlast.storage import open_store

STEPS = 3
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
app = outlast.Outlast("bench")
latency_app = outlast.Outlast("bench-latency")


async def _noop() -> int:
    return 1


@app.function(id="three-steps", trigger="bench/go")
async def three_steps(ctx: outlast.Context) -> int:
    for name in ("a", "b", "c"):
        await ctx.step.run(name, _noop)
    return STEPS


@app.function(
    id="three-steps-keyed", trigger="bench/keyed", concurrency=outlast.Concurrency(limit=1, key="event.data.key")
)
async def three_steps_keyed(ctx: outlast.Context) -> int:
    for name in ("a", "b", "c"):
        await ctx.step.run(name, _noop)
    return STEPS


@latency_app.function(id="first-step", trigger="bench/ping")
async def first_step(ctx: outlast.Context) -> float:
    return float(await ctx.step.run("now", time.time))


def fresh_sqlite(path: str) -> str:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    return f"sqlite:///{path}"


async def completed_count(engine: Engine, n: int, since_ms: int) -> int:
    """Completed runs of the bench app made since `since_ms` (runs stored before are not counted)."""
    flt = RunFilter(app_id=app.id, status="completed", since=since_ms, limit=n + 1)
    return len(await engine.store.list_runs(flt))


async def run_three_steps(
    database_url: str, n: int, *, event: str = "bench/go", keys: int = 0, **settings: Any
) -> dict[str, Any]:
    """Send n events at once and run one in-process worker until every run completed."""
    cfg = replace(Settings(), database_url=database_url, **settings)
    engine = Engine(open_store(database_url), SystemClock(), cfg)
    await engine.add_source(app)
    await engine.open()
    stop, all_done = asyncio.Event(), asyncio.Event()
    done = 0

    def on_change(o: Observation) -> None:
        nonlocal done
        done += isinstance(o, AttemptEnded) and o.outcome == "completed"
        if done == n:
            all_done.set()

    engine.bus.subscribe(on_change)
    events = [outlast.Event(name=event, data={"i": i, "key": i % keys if keys else 0}) for i in range(n)]
    since_ms, started = engine.clock.now_ms(), time.perf_counter()
    await engine.send(events)
    worker = asyncio.create_task(Worker(engine).run(stop))
    try:
        await all_done.wait()
        seconds = time.perf_counter() - started
        assert await completed_count(engine, n, since_ms) == n
    finally:
        stop.set()
        await worker
        await engine.close()
    return {
        "system": "outlast",
        "runs": n,
        "seconds": seconds,
        "runs_per_s": n / seconds,
        "steps_per_s": n * STEPS / seconds,
    }


def start_workers(url: str, app_spec: str, count: int, *, prelude: str = "") -> list[subprocess.Popen[bytes]]:
    """`outlast worker APP` processes on `url`; `prelude` is Python run in each before the CLI."""
    env = {**os.environ, "OUTLAST_DATABASE_URL": url, "PYTHONPATH": ROOT}
    code = f"{prelude}\nimport sys\nfrom outlast.cli import main\nsys.exit(main(['worker', {app_spec!r}]))"
    return [
        subprocess.Popen(
            [sys.executable, "-c", code], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(count)
    ]


def stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for w in workers:
        w.terminate()
    for w in workers:
        w.wait(30)


async def open_engine(target: outlast.Outlast, url: str) -> Engine:
    engine = Engine(open_store(url), SystemClock(), Settings(database_url=url))
    await engine.add_source(target)
    await engine.open()
    return engine


async def wait_for_workers(engine: Engine, count: int) -> None:
    while len(await engine.store.list_workers(0)) < count:
        await asyncio.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def local_postgres_cpu_seconds() -> float:
    """CPU time of every process on this machine named `postgres` (the server and all its
    backends, whoever they serve: read it only on a machine where nothing else uses the server).
    Backends that exit in between take their time with them, so this counts long-lived ones."""
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/comm") as f:
                if f.read().strip() != "postgres":
                    continue
            total += cpu_seconds(int(entry.name))
        except OSError:
            continue  # the process ended meanwhile
    return total


async def scalar(engine: Engine, sql: str) -> int:
    """One number read through the engine's store (benchmarks' own bookkeeping queries)."""
    row = await engine.store._run(lambda tx: tx.one(sql))  # type: ignore[attr-defined]
    return int(row[0] or 0) if row else 0


def settle_postgres(url: str) -> None:
    """Flush the checkpoint that creating a database starts, so it does not land in the timing."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    time.sleep(0.5)


async def worker_processes_row(url: str, processes: int, n: int, *, sends: int = 1) -> dict[str, Any]:
    """The 3-step workload with `processes` idle `outlast worker` processes on `url`, the n events
    sent from this process in `sends` calls one after another (after the first, while the workers
    run: the sender and the workers then contend for the database), timed until the last run
    completed."""
    engine = await open_engine(app, url)
    workers = start_workers(url, "bench.workloads:app", processes)
    try:
        await wait_for_workers(engine, processes)
        if url.startswith("postgresql"):
            settle_postgres(url)
        cpu_before = sum(cpu_seconds(w.pid) for w in workers)
        server_before = local_postgres_cpu_seconds()
        started = time.perf_counter()
        for part in range(sends):
            await engine.send([outlast.Event(name="bench/go", data={"i": i}) for i in range(part, n, sends)])
        while await scalar(engine, "SELECT COUNT(*) FROM runs WHERE status = 'completed'") < n:
            await asyncio.sleep(0.01)
        seconds = time.perf_counter() - started
        cpu = sum(cpu_seconds(w.pid) for w in workers) - cpu_before
        server_cpu = local_postgres_cpu_seconds() - server_before
    finally:
        stop(workers)
        await engine.close()
    return {
        "system": f"outlast, {processes} worker process{'es' if processes > 1 else ''}"
        + (f", {sends} sends" if sends > 1 else ""),
        "runs": n,
        "seconds": seconds,
        "runs_per_s": n / seconds,
        "steps_per_s": n * STEPS / seconds,
        "worker_cpu_ms_per_run": cpu / n * 1000,
        "postgres_cpu_ms_per_run": server_cpu / n * 1000 if url.startswith("postgresql") else None,
    }


async def first_step_latency(url: str, samples: int, *, prelude: str = "", idle_s: float = 0.0) -> dict[str, Any]:
    """Event-to-first-step latency of one idle `outlast worker` process, events sent from this one:
    the step records when it ran. With `idle_s`, first the worker's CPU use while idle that long."""
    engine = await open_engine(latency_app, url)
    [worker] = start_workers(url, "bench.workloads:latency_app", 1, prelude=prelude)
    delays, result = [], {}
    try:
        await wait_for_workers(engine, 1)
        await asyncio.sleep(1.0)  # the worker is idle, listening
        if idle_s:
            before = cpu_seconds(worker.pid)
            await asyncio.sleep(idle_s)
            result["idle_cpu_pct"] = (cpu_seconds(worker.pid) - before) / idle_s * 100
        for _ in range(samples):
            sent = time.time()
            [event_id] = await engine.send(outlast.Event(name="bench/ping"))
            while True:
                [run] = await engine.store.list_runs(RunFilter(event_id=event_id, limit=1))
                if run.status == "completed":
                    break
                await asyncio.sleep(0.005)
            delays.append((float(run.output) - sent) * 1000)
            await asyncio.sleep(0.05)
    finally:
        stop([worker])
        await engine.close()
    delays.sort()
    return {
        **result,
        "samples": samples,
        "p50_ms": statistics.median(delays),
        "p99_ms": delays[min(len(delays) - 1, int(len(delays) * 0.99))],
        "max_ms": delays[-1],
    }


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A Markdown table of the rows (floats to 3 decimals below 10, else 1; None as blank)."""

    def fmt(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, float):
            return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)
