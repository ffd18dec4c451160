"""Outlast workloads shared by the benchmark scripts: the 3-step function, run end to end."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import replace
from typing import Any

import outlast
from outlast.core.clock import SystemClock
from outlast.core.engine import Engine
from outlast.core.models import RunFilter
from outlast.core.observe import AttemptEnded, Observation
from outlast.core.worker import Worker
from outlast.settings import Settings
from outlast.storage import open_store

STEPS = 3
app = outlast.Outlast("bench")


async def _noop() -> int:
    return 1


@app.function(id="three-steps", trigger="bench/go")
async def three_steps(ctx: outlast.Context) -> int:
    for name in ("a", "b", "c"):
        await ctx.step.run(name, _noop)
    return STEPS


@app.function(id="three-steps-keyed", trigger="bench/keyed",
              concurrency=outlast.Concurrency(limit=1, key="event.data.key"))
async def three_steps_keyed(ctx: outlast.Context) -> int:
    for name in ("a", "b", "c"):
        await ctx.step.run(name, _noop)
    return STEPS


def fresh_sqlite(path: str) -> str:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    return f"sqlite:///{path}"


async def completed_count(engine: Engine, n: int) -> int:
    return len(await engine.store.list_runs(RunFilter(app_id=app.id, status="completed", limit=n + 1)))


async def run_three_steps(database_url: str, n: int, *, event: str = "bench/go", keys: int = 0,
                          **settings: Any) -> dict[str, Any]:
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
    started = time.perf_counter()
    await engine.send(events)
    worker = asyncio.create_task(Worker(engine).run(stop))
    try:
        await all_done.wait()
        seconds = time.perf_counter() - started
        assert await completed_count(engine, n) == n
    finally:
        stop.set()
        await worker
        await engine.close()
    return {"system": "outlast", "runs": n, "seconds": seconds, "runs_per_s": n / seconds,
            "steps_per_s": n * STEPS / seconds}


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A Markdown table of the rows (floats to 3 decimals below 10, else 1)."""
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"
        return str(v)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)
