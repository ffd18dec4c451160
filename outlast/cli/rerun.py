"""`outlast rerun RUN_ID [--from-step ID [--output JSON]]`: a new run from the same events."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from outlast.cli.common import Subparsers, command, with_engine
from outlast.core import jsonutil
from outlast.errors import OutlastError
from outlast.runtime.rerun import UNSET, rerun


def cmd_rerun(args: argparse.Namespace) -> int:
    output: Any = UNSET
    if args.output is not None:
        if args.from_step is None:
            raise OutlastError("--output needs --from-step (the step whose output it replaces)")
        try:
            output = jsonutil.loads(args.output)  # strict, and bounded in depth as `send --data` is
        except ValueError as exc:
            raise OutlastError(f"--output: not valid JSON: {exc}") from None
    new_id = asyncio.run(
        with_engine(args, lambda engine: rerun(engine, args.run_id, from_step=args.from_step, output=output))
    )
    print(new_id)
    return 0


def register(sub: Subparsers) -> None:
    r = command(sub, "rerun", cmd_rerun, "rerun a finished run: from the start, or from one of its steps")
    r.add_argument("run_id", help="the run to rerun")
    r.add_argument(
        "--from-step",
        default=None,
        metavar="ID",
        help="keep the memo of the steps before this one and run from it (a step id or key)",
    )
    r.add_argument(
        "--output",
        default=None,
        metavar="JSON",
        help="complete the --from-step step with this output (JSON) instead of running it again",
    )
