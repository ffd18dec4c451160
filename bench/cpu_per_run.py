"""CPU per run: the 3-step workload's cost in the worker process's CPU time (issue 28: ≤ 0.5 ms
on SQLite).

    python -m bench.cpu_per_run [--runs 5000] [--rounds 3] [--url postgresql://...]

One idle `outlast worker` process (as `bench.cross_process`), the events sent in one `send` from
this process; the worker's user + system CPU time (all its threads, from /proc) from the send
until the last run completed, divided by the runs. The sender's ingest is not counted: it is
the same for every worker count. On PostgreSQL, the CPU time of the local server's processes over
the same span too (all of them: meaningful only when nothing else uses the server; it includes
the sender's ingest and the completion polls). The table keeps each backend's lowest round.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
from typing import Any

from bench.workloads import fresh_sqlite, table, worker_processes_row
from tests.pg import fresh_database_url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", default=None, help="also PostgreSQL, on a fresh database of this server")
    args = parser.parse_args()
    found: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            found.setdefault("sqlite", []).append(
                asyncio.run(worker_processes_row(fresh_sqlite(f"{tmp}/cpu{i}.db"), 1, args.runs))
            )
            if args.url:
                url = fresh_database_url(args.url, "outlast_bench_cpu")
                found.setdefault("postgresql", []).append(asyncio.run(worker_processes_row(url, 1, args.runs)))
    rows = []
    for backend, rounds in found.items():
        best = min(rounds, key=lambda r: r["worker_cpu_ms_per_run"])
        rows.append(
            {"backend": backend, **best, "rounds": ", ".join(f"{r['worker_cpu_ms_per_run']:.3f}" for r in rounds)}
        )
    print(
        f"worker CPU per 3-step run, {args.runs} runs, one worker process, {os.cpu_count()} cores"
        f" ({platform.machine()}, Python {platform.python_version()}), lowest of {args.rounds} rounds\n"
    )
    print(table(rows, ["backend", "runs", "runs_per_s", "worker_cpu_ms_per_run", "postgres_cpu_ms_per_run", "rounds"]))


if __name__ == "__main__":
    main()
