"""What observability costs: the 3-step workload with nothing observing, with Prometheus metrics,
and with metrics and OpenTelemetry tracing, side by side in one run.

    python -m bench.observability [--runs 2000] [--repeat 5] [--postgres-url postgresql://...]

Each repeat runs every variant once, in turn, on a fresh SQLite file (and, with --postgres-url, a
fresh PostgreSQL database), so a noisy machine slows all of them alike; the table shows the
median and the best of the repeats. Completion is detected by polling the store, not through the
engine's bus, so "off" really has no subscriber. Tracing exports to a processor that drops the
spans (their creation and batching are measured, not a network). The budget: metrics on, tracing
off, at most 5 % fewer runs/s than off.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import outlast
from bench.workloads import STEPS, app, fresh_sqlite, table
from outlast.core.clock import SystemClock
from outlast.runtime.engine import Engine
from outlast.runtime.worker import Worker
from outlast.settings import Settings
from outlast.storage import open_store

Variant = Callable[[Engine], Any]


def off(engine: Engine) -> None:
    return None


def metrics(engine: Engine) -> Any:
    from outlast.observability.metrics import install_metrics

    return install_metrics(engine)


def metrics_and_tracing(engine: Engine) -> Any:
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from outlast.observability.tracing import install_tracing

    class Drop(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    install_tracing(engine, provider)
    return metrics(engine)


VARIANTS: dict[str, Variant] = {"off": off, "metrics": metrics, "metrics + tracing": metrics_and_tracing}


async def completed(engine: Engine) -> int:
    row = await engine.store._run(  # type: ignore[attr-defined]
        lambda tx: tx.one("SELECT COUNT(*) FROM runs WHERE status = 'completed'")
    )
    return int(row[0])


async def one_run(database_url: str, n: int, variant: Variant) -> float:
    """Send n events at once, run one in-process worker until all n runs completed; runs/s."""
    engine = Engine(open_store(database_url), SystemClock(), replace(Settings(), database_url=database_url))
    await engine.add_source(app)
    await engine.open()
    installed = variant(engine)
    stop = asyncio.Event()
    started = time.perf_counter()
    await engine.send([outlast.Event(name="bench/go", data={"i": i}) for i in range(n)])
    worker = asyncio.create_task(Worker(engine).run(stop))
    try:
        while await completed(engine) < n:
            await asyncio.sleep(0.005)
        seconds = time.perf_counter() - started
        if installed is not None:  # one scrape, as Prometheus would (outside the timing)
            await installed.sample()
            assert b"outlast_runs_ended_total" in installed.exposition()
    finally:
        stop.set()
        await worker
        await engine.close()
    return n / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgres-url", default=None, help="also run on a fresh database of this server")
    args = parser.parse_args()
    backends = ["sqlite"] + (["postgresql"] if args.postgres_url else [])
    results: dict[tuple[str, str], list[float]] = {(b, v): [] for b in backends for v in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for backend in backends:
                for name, variant in VARIANTS.items():
                    if backend == "sqlite":
                        url = fresh_sqlite(f"{tmp}/obs.db")
                    else:
                        from tests.pg import fresh_database_url

                        url = fresh_database_url(args.postgres_url, "outlast_bench_observability")
                    results[(backend, name)].append(asyncio.run(one_run(url, args.runs, variant)))
    rows = []
    for (backend, name), rates in results.items():
        base = statistics.median(results[(backend, "off")])
        rows.append(
            {
                "backend": backend,
                "observers": name,
                "median_runs_per_s": statistics.median(rates),
                "best_runs_per_s": max(rates),
                "median_vs_off": statistics.median(rates) / base,
                "steps_per_s": statistics.median(rates) * STEPS,
            }
        )
    print(
        f"3-step workload, {args.runs} runs, one in-process worker, {args.repeat} repeats interleaved "
        f"({os.cpu_count()} cores)\n"
    )
    print(table(rows, ["backend", "observers", "median_runs_per_s", "best_runs_per_s", "median_vs_off", "steps_per_s"]))
    for backend in backends:
        ratio = statistics.median(results[(backend, "metrics")]) / statistics.median(results[(backend, "off")])
        best = max(results[(backend, "metrics")]) / max(results[(backend, "off")])
        print(
            f"\n{backend}: metrics on, tracing off / off: {ratio:.3f} (medians), {best:.3f} (bests); "
            f"budget: at least 0.95"
        )


if __name__ == "__main__":
    main()
