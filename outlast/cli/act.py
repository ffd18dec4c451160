"""Commands that act: `send`, `cancel`."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from pathlib import Path
from typing import Any

from outlast.cli.common import Subparsers, command, local_time, print_json, with_engine
from outlast.core import jsonutil
from outlast.core.models import EventEffect
from outlast.errors import OutlastError
from outlast.runtime.engine import Engine


def read_data(spec: str) -> Any:
    """`--data`: JSON text, `@path` (a file) or `-` (standard input), parsed strictly."""
    if spec == "-":
        text: str | bytes = sys.stdin.buffer.read()
        where = "standard input"
    elif spec.startswith("@"):
        try:
            text = Path(spec[1:]).read_bytes()
        except OSError as exc:
            raise OutlastError(f"--data: cannot read {spec[1:]!r}: {exc.strerror}") from None
        where = spec[1:]
    else:
        text, where = spec, ""
    try:
        return jsonutil.loads(text)
    except ValueError as exc:
        shown = text if isinstance(text, str) else text.decode(errors="replace")
        hint = " (NaN and Infinity are not JSON numbers)" if re.search(r"\b(NaN|Infinity)\b", shown) else ""
        raise OutlastError(f"--data{f' ({where})' if where else ''}: not valid JSON: {exc}{hint}") from None


def cmd_send(args: argparse.Namespace) -> int:
    event = {"name": args.name, "data": read_data(args.data), "id": args.id}

    async def send(engine: Engine) -> tuple[list[str], dict[str, list[EventEffect]], bool]:
        ids = await engine.send(event)
        effects = {i: await engine.reads.event_effects(i) for i in ids}
        return ids, effects, bool(engine.registry.by_event.get(args.name))

    ids, effects, triggers = asyncio.run(with_engine(args, send, create=True))
    if args.json:
        print_json({"events": [{"id": i, "runs": effects[i]} for i in ids]})
        return 0
    for event_id in ids:
        print(f"event {event_id}")
        for e in effects[event_id]:
            print(f"  {e.effect} run {e.run_id}  {e.app_id}/{e.function_id}  {e.status}")
        if not effects[event_id]:
            why = "" if triggers else f" (no function in this database is triggered by {args.name!r})"
            print(f"  started no run{why}")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    async def cancel(engine: Engine) -> tuple[bool, Any]:
        if await engine.cancel_run(args.run_id):
            return True, None
        return False, await engine.reads.get_run(args.run_id)

    done, run = asyncio.run(with_engine(args, cancel))
    if done:
        print(f"cancelled {args.run_id}")
        return 0
    if run is None:
        print(f"outlast: no run {args.run_id!r} in this database", file=sys.stderr)
    else:
        print(
            f"outlast: run {args.run_id!r} already finished: {run.status} at {local_time(run.ended_at)}",
            file=sys.stderr,
        )
    return 1


def register(sub: Subparsers) -> None:
    s = command(sub, "send", cmd_send, "send an event; print its id and the runs it started")
    s.add_argument("name", help="the event name, e.g. shop/order.created")
    s.add_argument(
        "--data",
        default="{}",
        metavar="JSON|@FILE|-",
        help="the event's data, a JSON object: inline, @path/to/file.json, or - for standard input",
    )
    s.add_argument("--id", default=None, help="idempotency id (an event id seen in 24 h starts no run)")
    s.add_argument("--json", action="store_true", help="print the event ids and their runs as JSON")
    c = command(sub, "cancel", cmd_cancel, "cancel an active run (it stops at its next step boundary)")
    c.add_argument("run_id", help="the run to cancel")
