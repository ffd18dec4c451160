"""Commands that coordinate runs: `signal` (resume the run waiting on a signal), `pause` and
`resume` (a function's runs)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from outlast.cli.act import read_data
from outlast.cli.common import Subparsers, command, print_json, with_engine
from outlast.errors import OutlastError
from outlast.runtime.engine import Engine


def cmd_signal(args: argparse.Namespace) -> int:
    data = read_data(args.data) if args.data is not None else None

    async def send(engine: Engine) -> str | None:
        return await engine.send_signal(args.name, data, hold=args.hold)

    run_id = asyncio.run(with_engine(args, send))
    if args.json:
        print_json({"run_id": run_id, "held": run_id is None and args.hold is not None})
    elif run_id is not None:
        print(f"resumed run {run_id}")
    elif args.hold is not None:
        print(f"no run waits for {args.name!r}: held for {args.hold} for the first wait that begins")
    else:
        print(f"outlast: no run waits for signal {args.name!r} (it was dropped; --hold keeps it)", file=sys.stderr)
        return 1
    return 0


def cmd_pause(args: argparse.Namespace) -> int:
    paused = args.command == "pause"

    async def act(engine: Engine) -> tuple[str, bool]:
        await engine.refresh_registry(force=True)
        app_id = _app_of(engine, args.function, args.app)
        return app_id, await engine.set_paused(app_id, args.function, paused=paused)

    app_id, changed = asyncio.run(with_engine(args, act))
    state = "paused" if paused else "resumed"
    print(f"{state} {app_id}/{args.function}" if changed else f"{app_id}/{args.function} was already {state}")
    return 0


def _app_of(engine: Engine, function_id: str, app_id: str | None) -> str:
    """The app of the function `function_id` (`--app`, needed when several apps have one)."""
    if app_id is not None:
        return app_id
    apps = sorted(a for a, f in engine.registry.functions if f == function_id)
    if len(apps) == 1:
        return apps[0]
    if not apps:
        raise OutlastError(
            f"function {function_id!r}: no live worker or synced app serves it (see `outlast functions`)"
        )
    raise OutlastError(f"function {function_id!r} is in apps {', '.join(apps)}: choose one with --app")


def register(sub: Subparsers) -> None:
    s = command(sub, "signal", cmd_signal, "send a signal: resume the run waiting on NAME")
    s.add_argument("name", help="the signal name a run waits on (step.wait_for_signal's signal=)")
    s.add_argument(
        "--data",
        default=None,
        metavar="JSON|@FILE|-",
        help="the signal's data, a JSON object: inline, @path/to/file.json, or - for standard input",
    )
    s.add_argument("--hold", default=None, metavar="D", help="when no run waits, keep it this long (e.g. 10m, ≤ 7d)")
    s.add_argument("--json", action="store_true", help="print the resumed run's id as JSON")
    for name, what in (
        ("pause", "pause a function: its events start no run, its runs run no step"),
        ("resume", "resume a paused function"),
    ):
        p = command(sub, name, cmd_pause, what)
        p.add_argument("function", help="the function's id (as given to app.function)")
        p.add_argument("--app", default=None, help="the function's app (when several apps have that id)")
