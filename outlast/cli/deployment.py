"""Commands that show what is deployed: `functions` (what the database knows) and `workers`."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from outlast.cli.common import Subparsers, clip, command, local_time, print_json, with_engine
from outlast.core.config import CronTrigger, FunctionConfig
from outlast.core.durations import format_ms
from outlast.core.models import WorkerInfo
from outlast.runtime.engine import Engine


def cmd_functions(args: argparse.Namespace) -> int:
    async def load(engine: Engine) -> list[FunctionConfig]:
        return (await engine.store.load_functions())[1]

    configs = asyncio.run(with_engine(args, load))
    if args.json:
        print_json({"functions": [c.to_json() for c in configs]})
        return 0
    print(f"{'APP':<16}  {'FUNCTION':<24}  {'RUNTIME':<8}  {'TRIGGERS':<40}  OPTIONS")
    for c in configs:
        runtime = c.runtime.kind if c.runtime.kind == "local" else f"{c.runtime.kind} {c.runtime.url}"
        print(f"{c.app_id:<16}  {c.id:<24}  {runtime:<8}  {clip(_triggers(c), 40):<40}  {_options(c)}")
    if not configs:
        print("(no functions: start a worker, `outlast dev APP` or `outlast worker APP`, to sync an app's)")
    return 0


def _triggers(c: FunctionConfig) -> str:
    return ", ".join(
        f"cron {t.cron}" if isinstance(t, CronTrigger) else t.event + (f" if {t.expression}" if t.expression else "")
        for t in c.triggers
    )


def _options(c: FunctionConfig) -> str:
    parts = [f"retries={c.retries}"]
    parts += [f"concurrency={r.limit}" + (f" by {r.key}" if r.key else "") for r in c.concurrency]
    if c.throttle:
        parts.append(f"throttle={c.throttle.limit}/{format_ms(c.throttle.period_ms)}")
    if c.rate_limit:
        parts.append(f"rate_limit={c.rate_limit.limit}/{format_ms(c.rate_limit.period_ms)}")
    if c.debounce:
        parts.append(f"debounce={format_ms(c.debounce.period_ms)}")
    if c.batch:
        parts.append(f"batch={c.batch.max_size}/{format_ms(c.batch.timeout_ms)}")
    for name, value in (
        ("priority", c.priority),
        ("idempotency", c.idempotency),
        ("singleton", c.singleton and c.singleton.mode),
        ("cancel", len(c.cancel) or None),
        ("on_failure_of", c.failure_of),
    ):
        if value:
            parts.append(f"{name}={value}")
    return " ".join(parts)


def cmd_workers(args: argparse.Namespace) -> int:
    from outlast.runtime.worker import WORKER_TIMEOUT_MS

    async def workers(engine: Engine) -> Any:
        return await engine.reads.list_workers(engine.clock.now_ms() - WORKER_TIMEOUT_MS)

    rows = asyncio.run(with_engine(args, workers))
    if args.json:
        print_json({"workers": rows})
        return 0
    print(
        f"{'WORKER':<40}  {'APP':<16}  {'SDK':<10}  {'VERSION':<9}  {'CAPACITY':>9}  {'IN FLIGHT':>9}  {'HEARTBEAT':<9}"
        f"  {'PID':>7}  {'STARTED (local)':<19}  LAST ERROR"
    )
    for w in rows:
        print(
            f"{w.id:<40}  {w.app_id:<16}  {_sdk(w):<10}  {w.sdk_version or '-':<9}  {_capacity(w):>9}  "
            f"{w.in_flight:>9}  "
            f"{local_time(w.heartbeat_at)[-8:]:<9}  {w.pid or '-':>7}  {local_time(w.started_at):<19}  "
            f"{clip(w.last_error or '-', 80)}"
        )
    return 0


def _sdk(w: WorkerInfo) -> str:
    """A Connect worker's SDK language; `outlast` for Outlast's own worker processes."""
    return w.sdk if w.sdk is not None else "outlast"


def _capacity(w: WorkerInfo) -> str:
    if w.capacity is not None:
        return str(w.capacity)
    return "unbounded" if w.connected else "-"


def register(sub: Subparsers) -> None:
    f = command(sub, "functions", cmd_functions, "list the functions the database knows (synced by workers and apps)")
    f.add_argument("--json", action="store_true", help="print the stored configurations as JSON")
    w = command(sub, "workers", cmd_workers, "list live worker processes, their items in flight and last error")
    w.add_argument("--json", action="store_true", help="print the workers as JSON")
