"""Commands that act: `send`, `cancel`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from outlast.cli.common import Subparsers, command, with_engine
from outlast.errors import OutlastError


def cmd_send(args: argparse.Namespace) -> int:
    try:
        data = json.loads(args.data)
    except json.JSONDecodeError as exc:
        raise OutlastError(f"--data: not valid JSON: {exc}") from None
    event = {"name": args.name, "data": data, "id": args.id}
    ids = asyncio.run(with_engine(args, lambda engine: engine.send(event)))
    print(ids[0])
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    if asyncio.run(with_engine(args, lambda engine: engine.cancel_run(args.run_id))):
        print(f"cancelled {args.run_id}")
        return 0
    print(f"run {args.run_id!r} is not active (or does not exist)", file=sys.stderr)
    return 1



def register(sub: Subparsers) -> None:
    s = command(sub, "send", cmd_send, "send an event")
    s.add_argument("name", help="the event name, e.g. shop/order.created")
    s.add_argument("--data", default="{}", help="the event's data, a JSON object")
    s.add_argument("--id", default=None, help="idempotency id (an event id seen in 24 h starts no run)")
    command(sub, "cancel", cmd_cancel, "cancel a run").add_argument("run_id", help="the run to cancel")
