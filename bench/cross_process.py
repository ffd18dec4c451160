"""The 3-step workload with `outlast worker` in its own process and the events sent from this one,
on SQLite and PostgreSQL, beside DBOS on the same backend, in one run.

    python -m bench.cross_process [--runs 2000] [--repeat 2] [--backend sqlite|postgresql|both]
                                  [--url postgresql://postgres@127.0.0.1:5432/postgres] [--sends 4]

Outlast: 1 and 2 `outlast worker bench.workloads:app` processes, started and idle before the
events are sent in one `send` (and, with --sends K, in K calls one after another, the later ones
while the workers run: what users have, senders and workers contending for the database); the
clock stops when the last run completed (counted by this
process). DBOS: `DBOS.start_workflow` in a fresh process on the same backend (see
bench/peers/dbos_peer.py; it has no separate worker process to start). Best of --repeat.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from collections.abc import Callable
from typing import Any

from bench.workloads import fresh_sqlite, table, worker_processes_row


def best(results: list[dict[str, Any]]) -> dict[str, Any]:
    return max(results, key=lambda r: r["runs_per_s"])


def backend_rows(
    backend: str, fresh_url: Callable[[], str], dbos_url: str | None, args: argparse.Namespace, tmp: str
) -> list[dict[str, Any]]:
    from bench.peers.dbos_peer import run_dbos

    def outlast_best(processes: int, sends: int = 1) -> dict[str, Any]:
        return best(
            [
                asyncio.run(worker_processes_row(fresh_url(), processes, args.runs, sends=sends))
                for _ in range(args.repeat)
            ]
        )

    rows = [outlast_best(1), outlast_best(2)]
    if args.sends > 1:
        rows += [outlast_best(1, args.sends), outlast_best(2, args.sends)]
    if not args.no_peer:
        rows.append(best([run_dbos(args.runs, database_url=dbos_url, workdir=tmp) for _ in range(args.repeat)]))
    for row in rows:
        row["backend"] = backend
        row["x_dbos"] = "" if args.no_peer else row["runs_per_s"] / rows[-1]["runs_per_s"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--sends", type=int, default=1, help="also send the events in this many calls")
    parser.add_argument("--no-peer", action="store_true", help="leave DBOS out")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.backend in ("sqlite", "both"):
            rows += backend_rows("sqlite", lambda: fresh_sqlite(f"{tmp}/cross.db"), None, args, tmp)
        if args.backend in ("postgresql", "both"):
            from tests.pg import fresh_database_url

            rows += backend_rows(
                "postgresql",
                lambda: fresh_database_url(args.url, "outlast_bench_cross"),
                args.url.rsplit("/", 1)[0] + "/outlast_bench_dbos",
                args,
                tmp,
            )
    print(
        f"3-step workload, {args.runs} runs, worker process(es) apart from the sender, "
        f"{os.cpu_count()} cores, best of {args.repeat}\n"
    )
    print(table(rows, ["backend", "system", "runs", "seconds", "runs_per_s", "steps_per_s", "x_dbos"]))


if __name__ == "__main__":
    main()
