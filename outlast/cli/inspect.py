"""Commands that read: `runs`, `run`, `workers`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from outlast.cli.common import Subparsers, command, local_time, with_engine
from outlast.core.engine import Engine
from outlast.core.models import Run, RunFilter


def cmd_runs(args: argparse.Namespace) -> int:
    flt = RunFilter(function_id=args.function, status=args.status, limit=args.limit)
    runs = asyncio.run(with_engine(args, lambda engine: engine.store.list_runs(flt)))
    print(f"{'RUN':<26}  {'FUNCTION':<24}  {'STATUS':<10}  {'CREATED':<19}  DURATION")
    for run in runs:
        print(f"{run.id:<26}  {run.function_id:<24}  {run.status:<10}  {local_time(run.created_at):<19}  {_span(run)}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    run = asyncio.run(with_engine(args, lambda engine: engine.store.get_run(args.run_id)))
    if run is None:
        print(f"no run {args.run_id!r}", file=sys.stderr)
        return 1
    print(f"run {run.id}  function {run.function_id}  status {run.status}  started {local_time(run.started_at)}"
          f"  ended {local_time(run.ended_at)}")
    if run.output is not None:
        print(f"output: {json.dumps(run.output)}")
    if run.error:
        print(f"error: {run.error.get('name')}: {run.error.get('message')}")
    print(f"\n{'STEP':<24}  {'KIND':<14}  {'STATUS':<10}  {'ATTEMPTS':>8}  {'STARTED':<19}  {'DURATION':>9}  RESULT")
    for s in run.steps:
        result = json.dumps(s.output) if s.error is None else f"{s.error.get('name')}: {s.error.get('message')}"
        duration = f"{s.ended_at - s.started_at} ms" if s.started_at and s.ended_at else "-"
        print(f"{s.id[:24]:<24}  {s.kind:<14}  {s.status:<10}  {s.attempts:>8}  {local_time(s.started_at):<19}"
              f"  {duration:>9}  {result[:60]}")
    return 0


def cmd_workers(args: argparse.Namespace) -> int:
    from outlast.core.worker import WORKER_TIMEOUT_MS

    async def workers(engine: Engine) -> Any:
        return await engine.store.list_workers(engine.clock.now_ms() - WORKER_TIMEOUT_MS)

    rows = asyncio.run(with_engine(args, workers))
    print(f"{'WORKER':<40}  {'APP':<16}  {'HOST':<20}  {'PID':>7}  {'STARTED':<19}  {'LAST HEARTBEAT':<19}"
          f"  {'IN FLIGHT':>9}  LAST ERROR")
    for w in rows:
        print(f"{w.id:<40}  {w.app_id:<16}  {w.host:<20}  {w.pid:>7}  {local_time(w.started_at):<19}  "
              f"{local_time(w.heartbeat_at):<19}  {w.in_flight:>9}  {(w.last_error or '-')[:80]}")
    return 0


def _span(run: Run) -> str:
    return f"{run.ended_at - run.started_at} ms" if run.started_at and run.ended_at else "-"



def register(sub: Subparsers) -> None:
    r = command(sub, "runs", cmd_runs, "list runs, newest first")
    r.add_argument("--function", help="only runs of this function id")
    r.add_argument("--status", help="only runs in this status")
    r.add_argument("--limit", type=int, default=50, help="at most this many runs (default 50)")
    command(sub, "run", cmd_run, "show a run and its step trace").add_argument("run_id", help="the run to show")
    command(sub, "workers", cmd_workers, "list live worker processes")
