"""Commands that read events: `events` (a filtered, paged listing) and `event` (one event and what it did)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

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
from outlast.core.models import EventFilter
from outlast.runtime.engine import Engine


def cmd_events(args: argparse.Namespace) -> int:
    now = int(time.time() * 1000)
    flt = EventFilter(
        name=args.name,
        system=args.system,
        before=args.before,
        limit=args.limit,
        since=None if args.since is None else parse_time(args.since, option="--since", now_ms=now),
        until=None if args.until is None else parse_time(args.until, option="--until", now_ms=now),
    )
    found = asyncio.run(with_engine(args, lambda engine: engine.reads.list_events(flt)))
    cursor = found[-1].id if len(found) == args.limit else None
    if args.json:
        print_json({"events": [_public(e) for e in found], "next": cursor})
        return 0
    print(f"{'EVENT':<26}  {'NAME':<32}  {'RECEIVED (local)':<19}  DATA")
    for e in found:
        print(
            f"{e.id:<26}  {clip(e.name, 32):<32}  {local_time(e.received_at):<19}  "
            f"{clip(json.dumps(e.data, ensure_ascii=False), 60)}"
        )
    if cursor is not None:
        print(f"(more: add --before {cursor})")
    return 0


def cmd_event(args: argparse.Namespace) -> int:
    async def read(engine: Engine) -> tuple[Any, list[Any]]:
        found = await engine.reads.get_events([args.event_id])
        return (found[0], await engine.reads.event_effects(args.event_id)) if found else (None, [])

    event, effects = asyncio.run(with_engine(args, read))
    if event is None:
        print(
            f"outlast: no event {args.event_id!r} in this database (give the id `outlast send` or "
            "`outlast events` prints)",
            file=sys.stderr,
        )
        return 1
    if args.json:
        print_json({"event": _public(event), "effects": effects})
        return 0
    print(f"event {event.id}  name {event.name}  ts {local_time(event.ts)}  received {local_time(event.received_at)}")
    if event.dedupe_id:
        print(f"id (sender's): {event.dedupe_id}")
    print(f"data: {clip(json.dumps(event.data, ensure_ascii=False), 2000)}")
    if event.user:
        print(f"user: {clip(json.dumps(event.user, ensure_ascii=False), 2000)}")
    if not effects:
        print("\nit started, resumed and cancelled no run")
        return 0
    print(f"\n{'RUN':<26}  {'EFFECT':<10}  {'FUNCTION':<32}  STATUS")
    for x in effects:
        print(f"{x.run_id:<26}  {x.effect:<10}  {clip(f'{x.app_id}/{x.function_id}', 32):<32}  {x.status}")
    return 0


def _public(e: Any) -> dict[str, Any]:
    return {
        "id": e.id,
        "sender_id": e.dedupe_id,
        "name": e.name,
        "data": e.data,
        "user": e.user,
        "ts": e.ts,
        "received_at": e.received_at,
    }


def register(sub: Subparsers) -> None:
    ls = command(sub, "events", cmd_events, "list events, newest first (times are this machine's local time)")
    ls.add_argument("--name", help="only events of this name")
    ls.add_argument("--since", metavar="TIME", help="only events received at or after TIME: '2h' ago, or an ISO time")
    ls.add_argument("--until", metavar="TIME", help="only events received before TIME (same forms as --since)")
    ls.add_argument(
        "--system",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="include inngest/... system events (default: only events sent to the database)",
    )
    ls.add_argument(
        "--limit", type=whole_number(1, MAX_LISTED), default=50, help="at most this many events (default 50)"
    )
    ls.add_argument("--before", metavar="EVENT_ID", help="the next page: events older than this one (the last shown)")
    ls.add_argument("--json", action="store_true", help="print the events as JSON, with the cursor of the next page")
    one = command(sub, "event", cmd_event, "show an event and the runs it started, resumed or cancelled")
    one.add_argument("event_id", help="the event's id, as `outlast send` or `outlast events` prints it")
    one.add_argument("--json", action="store_true", help="print the event and its effects as JSON")
