"""What every command shares: settings from flags, an engine for one command, time formatting."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from outlast.core.engine import Engine
from outlast.settings import Settings

T = TypeVar("T")
Subparsers = Any  # argparse's private _SubParsersAction


def command(sub: Subparsers, name: str, func: Callable[[argparse.Namespace], int],
            help: str) -> argparse.ArgumentParser:
    c: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help)
    c.add_argument("--database-url", help="sqlite:///path.db, postgresql://… (default: OUTLAST_DATABASE_URL)")
    c.set_defaults(func=func)
    return c


def settings_from(args: argparse.Namespace, **overrides: Any) -> Settings:
    return Settings.from_env(database_url=getattr(args, "database_url", None), **overrides)


async def with_engine(args: argparse.Namespace, work: Callable[[Engine], Awaitable[T]]) -> T:
    """Open an engine on the configured store (serving no functions), do `work`, close it."""
    engine = Engine.from_settings(settings_from(args))
    await engine.open()
    try:
        return await work(engine)
    finally:
        await engine.close()


def stamp() -> str:
    return datetime.now().strftime("%H:%M:%S")


def local_time(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")
