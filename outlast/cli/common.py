"""What every command shares: global options, settings from flags, an engine for one command,
times in and out, JSON output and clipping of long values."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from outlast.core import jsonutil
from outlast.core.durations import to_ms
from outlast.errors import OutlastError
from outlast.runtime.engine import Engine
from outlast.settings import Settings

T = TypeVar("T")
Subparsers = Any  # argparse's private _SubParsersAction
LOG_LEVELS = ("debug", "info", "warning", "error")
#: the most rows one `runs` or `events` command lists (page on with --before)
MAX_LISTED = 100_000


def global_options(p: argparse.ArgumentParser, *, top: bool) -> None:
    """Options every command takes, before or after its name. A subcommand's copy has no default,
    so one given before the subcommand is not reset by the subcommand's parser."""

    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    p.add_argument(
        "--database-url",
        metavar="URL",
        default=default(None),
        help="sqlite:///path.db, postgresql://user@host/db or memory:// "
        "(default: OUTLAST_DATABASE_URL, else sqlite:///.outlast/outlast.db in this directory)",
    )
    p.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=default(None),
        help="log lines at this level and above (default: info for dev, warning otherwise)",
    )
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=default("text"),
        help="text, or one JSON object per line with run, function, step and attempt (default text)",
    )


def command(
    sub: Subparsers, name: str, func: Callable[[argparse.Namespace], int], help: str
) -> argparse.ArgumentParser:
    c: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help)
    global_options(c, top=False)
    c.set_defaults(func=func)
    return c


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """An argparse `type`: a whole number from `low` to `high` (argparse names the option)."""

    def parse(text: str) -> int:
        value = int(text) if text.strip().lstrip("-").isdigit() else None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected a whole number from {low} to {high:,}, got {text!r}")
        return value

    return parse


def settings_from(args: argparse.Namespace, *, defaults: dict[str, Any] | None = None, **overrides: Any) -> Settings:
    """The settings: `defaults` (a mode's), then `OUTLAST_*` variables, then flags."""
    return Settings.from_env(defaults=defaults, database_url=getattr(args, "database_url", None), **overrides)


async def with_engine(args: argparse.Namespace, work: Callable[[Engine], Awaitable[T]], *, create: bool = False) -> T:
    """Open an engine on the configured store (serving no functions), do `work`, close it.

    Without `create`, a SQLite file that does not exist is an error: a command that reads (or
    acts on what exists) must not make an empty database where the user mistyped a path.
    """
    from outlast.core.clock import SystemClock
    from outlast.storage import open_store

    settings = settings_from(args)
    store = open_store(settings.database_url, postgres_pool_size=settings.postgres_pool_size)
    path = getattr(store, "path", None)
    if not create and isinstance(path, str) and path != ":memory:" and not os.path.exists(path):
        raise OutlastError(
            f"no database at {os.path.abspath(path)!r} (from {settings.database_url!r}); "
            "give --database-url or OUTLAST_DATABASE_URL, or run where `outlast dev` runs "
            "(the default is ./.outlast/outlast.db)"
        )
    engine = Engine(store, SystemClock(), settings)
    await engine.open()
    try:
        return await work(engine)
    finally:
        await engine.close()


# -- times -----------------------------------------------------------------------------------------


def stamp() -> str:
    return datetime.now().strftime("%H:%M:%S")


def local_time(ms: int | None) -> str:
    """Epoch ms as this machine's local time (the tables say so in their help)."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def zoned_time(ms: int, zone: Any) -> str:
    """Epoch ms in `zone`, with the zone's abbreviation and name (`2026-11-25 09:00 CET (Europe/Paris)`)."""
    at = datetime.fromtimestamp(ms / 1000, tz=zone)
    return f"{at.strftime('%Y-%m-%d %H:%M %Z')} ({getattr(zone, 'key', None) or 'UTC'})"


def parse_time(text: str, *, option: str, now_ms: int) -> int:
    """`2h`, `30m`, `7d` (that long ago), or an ISO date or time (local time unless it has a zone)."""
    try:
        return _iso_ms(text) if _looks_iso(text) else now_ms - to_ms(text.strip(), what=option)
    except ValueError:
        raise OutlastError(
            f"{option}: expected a duration ago such as '2h' or '7d', or an ISO time such as "
            f"'2026-11-24' or '2026-11-24T09:30', got {text!r}"
        ) from None


def _looks_iso(text: str) -> bool:
    return len(text) >= 10 and text[4:5] == "-" and text[7:8] == "-"


def _iso_ms(text: str) -> int:
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if at.tzinfo is None:
        at = at.astimezone()  # naive: this machine's local time
    return int(at.timestamp() * 1000)


# -- output ----------------------------------------------------------------------------------------


def print_json(value: Any) -> None:
    """Indented JSON of stored values (already strict JSON) and dataclasses."""
    print(json.dumps(jsonutil.loads(jsonutil.dumps(value)), indent=2, ensure_ascii=False))


def clip(text: str, limit: int) -> str:
    """`text`, or its start and how long it is in all."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text.encode()):,} bytes in all)"
