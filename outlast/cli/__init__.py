"""The `outlast` command. Each module registers one group of subcommands on the parser."""

from __future__ import annotations

import argparse
import sys

from outlast.cli import act, inspect, ops, serve
from outlast.errors import OutlastError

COMMAND_MODULES = (serve, act, inspect, ops)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="outlast", description="Durable, event-driven functions.")
    sub = p.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except OutlastError as exc:
        print(f"outlast: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


__all__ = ["main", "parser"]
