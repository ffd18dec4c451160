"""Idle-worker wake-up across processes: event-to-first-step latency of one idle `outlast worker`
process while events are sent from this one, and that worker's CPU use while idle.

    python -m bench.wakeup [--samples 200] [--idle 10] [--url postgresql://postgres@127.0.0.1:5432/postgres]

Rows: SQLite with the worker polling (`poll_interval_ms`, 100 ms; its wake-ups switched off, as
before they existed), SQLite with wake-ups (Unix datagram sockets, outlast/storage/wakeup.py), and
PostgreSQL (LISTEN/NOTIFY) for reference (`--no-postgres` leaves it out).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from typing import Any

from bench.workloads import first_step_latency, fresh_sqlite, table

#: run in the worker process before the CLI: the store says it cannot listen, so the worker polls
POLL_ONLY = "import outlast.storage.sqlite as s\ns.SqliteStore.add_listener = lambda self, callback: False"


async def sqlite_row(label: str, samples: int, idle_s: float, prelude: str = "") -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = fresh_sqlite(os.path.join(tmp, "wakeup.db"))
        return {"backend": label, **await first_step_latency(url, samples, prelude=prelude, idle_s=idle_s)}


async def postgres_row(base: str, samples: int, idle_s: float) -> dict[str, Any]:
    from tests.pg import fresh_database_url

    url = fresh_database_url(base, "outlast_bench_wakeup")
    return {"backend": "postgresql (LISTEN/NOTIFY)", **await first_step_latency(url, samples, idle_s=idle_s)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle CPU measurement")
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    rows = [
        asyncio.run(sqlite_row("sqlite, poll (before)", args.samples, args.idle, POLL_ONLY)),
        asyncio.run(sqlite_row("sqlite, wake-up sockets", args.samples, args.idle)),
    ]
    if not args.no_postgres:
        rows.append(asyncio.run(postgres_row(args.url, args.samples, args.idle)))
    print(
        f"event-to-first-step latency, one idle `outlast worker` process, events sent from another "
        f"({os.cpu_count()} cores); idle CPU over {args.idle:g} s\n"
    )
    print(table(rows, ["backend", "samples", "p50_ms", "p99_ms", "max_ms", "idle_cpu_pct"]))


if __name__ == "__main__":
    main()
