"""Commands that keep a deployment healthy: `prune` (retention on demand) and `backup` (SQLite)."""

from __future__ import annotations

import argparse
import asyncio

from outlast.cli.common import Subparsers, command, settings_from, with_engine
from outlast.core.durations import format_ms, to_ms
from outlast.core.upkeep import PRUNED_TABLES, PruneResult
from outlast.errors import OutlastError
from outlast.runtime.engine import Engine
from outlast.runtime.pruner import Pruner


def cmd_prune(args: argparse.Namespace) -> int:
    if args.older_than is not None:
        try:
            older_than = to_ms(args.older_than, what="--older-than")
        except ValueError as exc:
            raise OutlastError(str(exc)) from None
    else:
        older_than = settings_from(args).retention
        if older_than <= 0:
            raise OutlastError("prune: OUTLAST_RETENTION is 0 (keep everything); say how old with --older-than")

    async def prune(engine: Engine) -> tuple[PruneResult, bool]:
        removed = await Pruner(engine, "outlast prune").prune(engine.clock.now_ms() - older_than, lease=False)
        return removed, await engine.store.vacuum(PRUNED_TABLES)

    removed, vacuumed = asyncio.run(with_engine(args, prune))
    print(
        f"removed {removed.describe()} (finished or received more than {format_ms(older_than)} ago)"
        + ("; vacuumed (the server's autovacuum is off)" if vacuumed else "")
    )
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from outlast.storage import sqlite_path
    from outlast.storage.backup import backup_sqlite

    url = settings_from(args).database_url
    if url.startswith(("postgresql:", "postgres:")):
        raise OutlastError(
            "backup: this database is PostgreSQL; back it up with pg_dump (or base backups and WAL "
            "archiving), as any PostgreSQL database"
        )
    if not url.startswith("sqlite:"):
        raise OutlastError(f"backup: only SQLite files can be backed up this way, not {url!r}")
    size = backup_sqlite(sqlite_path(url), args.path)
    print(f"backed up {sqlite_path(url)} to {args.path} ({size:,} bytes)")
    return 0


def register(sub: Subparsers) -> None:
    p = command(sub, "prune", cmd_prune, "delete finished runs and unreferenced events now, as retention does")
    p.add_argument(
        "--older-than",
        metavar="DURATION",
        help="runs that finished, and events received, longer ago than this, e.g. 2d (default: OUTLAST_RETENTION)",
    )
    b = command(sub, "backup", cmd_backup, "copy a SQLite database to a new file, online and consistent")
    b.add_argument("path", help="the new file to write (it must not exist)")
