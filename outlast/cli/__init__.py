"""The `outlast` command. Each module registers one group of subcommands on the parser."""

from __future__ import annotations

import argparse
import os
import sys

from outlast.cli import act, coordination, deployment, events, inspect, ops, rerun, serve
from outlast.cli.common import global_options
from outlast.errors import OutlastError

COMMAND_MODULES = (serve, act, coordination, inspect, events, deployment, rerun, ops)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="outlast", description="Durable, event-driven functions.")
    global_options(p, top=True)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    args.argv = argv
    try:
        return int(args.func(args))
    except OutlastError as exc:
        print(f"outlast: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `outlast runs | head`: the reader has gone; so does the rest of the output
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


__all__ = ["main", "parser"]
