"""Commands that read runs: `runs` (a filtered, paged listing) and `run` (one run's trace)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any, get_args

from outlast.cli.common import (
    MAX_LISTED,
    Subparsers,
    clip,
    command,
    local_time,
    parse_time,
    print_json,
    whole_number,
    with_engine,
)
from outlast.core.models import AttemptRecord, Run, RunFilter, RunStatus
from outlast.runtime.engine import Engine

STATUSES = get_args(RunStatus)
#: characters of an output or error printed by `outlast run` (`--json` prints everything)
SHOWN_CHARS = 2000


def cmd_runs(args: argparse.Namespace) -> int:
    now = int(time.time() * 1000)
    flt = RunFilter(
        function_id=args.function,
        status=args.status,
        event_id=args.event,
        app_id=args.app,
        since=None if args.since is None else parse_time(args.since, option="--since", now_ms=now),
        until=None if args.until is None else parse_time(args.until, option="--until", now_ms=now),
        before=args.before,
        limit=args.limit,
    )
    runs = asyncio.run(with_engine(args, lambda engine: engine.reads.list_runs(flt)))
    cursor = runs[-1].id if len(runs) == args.limit else None
    if args.json:
        print_json({"runs": runs, "next": cursor})
        return 0
    print(f"{'RUN':<26}  {'FUNCTION':<32}  {'STATUS':<10}  {'CREATED (local)':<19}  DURATION")
    for run in runs:
        name = clip(function_name(run), 32)
        print(f"{run.id:<26}  {name:<32}  {run.status:<10}  {local_time(run.created_at):<19}  {_span(run)}")
    if cursor is not None:
        print(f"(more: add --before {cursor})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    async def read(engine: Engine) -> tuple[Run | None, list[Any]]:
        run = await engine.reads.get_run(args.run_id)
        return run, [] if run is None else await engine.reads.run_logs(args.run_id)

    run, logs = asyncio.run(with_engine(args, read))
    if run is None:
        print(f"outlast: no run {args.run_id!r} in this database", file=sys.stderr)
        return 1
    if args.json:
        print_json({"run": run, "logs": logs})
        return 0
    print(
        f"run {run.id}  function {function_name(run)}  status {run.status}"
        f"  started {local_time(run.started_at)}  ended {local_time(run.ended_at)}"
    )
    if run.output is not None:
        print(f"output: {clip(json.dumps(run.output, ensure_ascii=False), SHOWN_CHARS)}")
    if run.error:
        print(f"error: {clip(_error(run.error), SHOWN_CHARS)}")
    print(
        f"\n{'STEP':<24}  {'KIND':<14}  {'STATUS':<10}  {'ATTEMPTS':>8}  {'STARTED (local)':<19}  {'DURATION':>9}"
        "  RESULT"
    )
    for s in run.steps:
        result = json.dumps(s.output, ensure_ascii=False) if s.error is None else _error(s.error)
        duration = f"{s.ended_at - s.started_at} ms" if s.started_at and s.ended_at else "-"
        print(
            f"{s.id[:24]:<24}  {s.kind:<14}  {s.status:<10}  {s.attempts:>8}  {local_time(s.started_at):<19}"
            f"  {duration:>9}  {clip(result, 60)}"
        )
    failures = [(f"step {s.id!r}", f) for s in run.steps for f in s.failures] + [("function", f) for f in run.failures]
    if failures:
        print("\nFAILED ATTEMPTS")
        for what, failure in sorted(failures, key=lambda x: (x[1].ended_at or x[1].started_at or 0, x[0])):
            when = local_time(failure.ended_at or failure.started_at)
            print(f"  {when}  {what} attempt {failure.attempt}: {_attempt_error(failure)}")  # 1-based as stored
    if logs:
        print("\nLOGS")
        for line in logs:
            step = f" [{line.step_id}]" if line.step_id else ""
            print(f"  {local_time(line.ts)}  {line.level:<7}{step} {clip(line.message, SHOWN_CHARS)}")
    return 0


def function_name(run: Run) -> str:
    """How every command names a run's function: `app/function`, as `send` and `event` do."""
    return f"{run.app_id}/{run.function_id}"


def _error(error: dict[str, Any]) -> str:
    return f"{error.get('name')}: {error.get('message')}"


def _attempt_error(failure: AttemptRecord) -> str:
    return clip(_error(failure.error), 200)


def _span(run: Run) -> str:
    return f"{run.ended_at - run.started_at} ms" if run.started_at and run.ended_at else "-"


def register(sub: Subparsers) -> None:
    r = command(sub, "runs", cmd_runs, "list runs, newest first (times are this machine's local time)")
    r.add_argument("--function", metavar="ID", help="only runs of this function id")
    r.add_argument("--app", metavar="ID", help="only runs of this app id")
    r.add_argument("--status", choices=STATUSES, help="only runs in this status: " + ", ".join(STATUSES))
    r.add_argument("--event", metavar="EVENT_ID", help="only runs this event started (as `outlast send` prints it)")
    r.add_argument("--since", metavar="TIME", help="only runs created at or after TIME: '2h' ago, or an ISO time")
    r.add_argument("--until", metavar="TIME", help="only runs created before TIME (same forms as --since)")
    r.add_argument("--limit", type=whole_number(1, MAX_LISTED), default=50, help="at most this many runs (default 50)")
    r.add_argument("--before", metavar="RUN_ID", help="the next page: runs older than this run (the last one shown)")
    r.add_argument("--json", action="store_true", help="print the runs as JSON, with the cursor of the next page")
    one = command(sub, "run", cmd_run, "show a run: its output or error, steps, failed attempts and logs")
    one.add_argument("run_id", help="the run to show")
    one.add_argument("--json", action="store_true", help="print the whole run (nothing clipped) as JSON")
