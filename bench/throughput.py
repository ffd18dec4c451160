"""The 3-step workload on SQLite, end to end from send to all completed, beside DBOS.

    python -m bench.throughput [--runs 2000] [--repeat 3]

Each system runs the same workload: N runs of a function of three steps that do nothing,
all sent at once, timed until the last run completed. Outlast runs one worker in-process on a
fresh SQLite file (WAL, synchronous=NORMAL) twice: embedded, with Python's default collector
settings (a host process that leaves them alone), and with the collector tuned as `outlast dev`,
`start` and `worker` tune it (`outlast.core.collector`). DBOS uses its default SQLite set-up in
a fresh subprocess (see bench/peers/dbos_peer.py). The best of --repeat runs of each is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import tempfile
from typing import Any

from bench.workloads import fresh_sqlite, run_three_steps, table
from outlast.core.collector import tuned_for_service

EMBEDDED = "outlast, embedded (default collector)"
TUNED = "outlast, as outlast dev/start/worker (tuned collector)"


def _outlast(path: str, runs: int, *, tuned: bool) -> dict[str, Any]:
    with tuned_for_service() if tuned else contextlib.nullcontext():
        row = asyncio.run(run_three_steps(fresh_sqlite(path), runs))
    return {**row, "system": TUNED if tuned else EMBEDDED}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-peer", action="store_true", help="skip DBOS")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for tuned in (False, True):
            ours = [_outlast(f"{tmp}/bench.db", args.runs, tuned=tuned) for _ in range(args.repeat)]
            rows.append(max(ours, key=lambda r: r["runs_per_s"]))
        if not args.no_peer:
            from bench.peers.dbos_peer import run_dbos

            peer = [run_dbos(args.runs, workdir=tmp) for _ in range(args.repeat)]
            rows.append(max(peer, key=lambda r: r["runs_per_s"]))
    print(
        f"3-step workload, {args.runs} runs, SQLite, best of {args.repeat} "
        f"({platform.processor() or platform.machine()}, {platform.python_version()})\n"
    )
    print(table(rows, ["system", "runs", "seconds", "runs_per_s", "steps_per_s"]))
    if len(rows) == 3:
        print()
        for ours in rows[:2]:
            print(f"{ours['system']} / dbos runs/s: {ours['runs_per_s'] / rows[2]['runs_per_s']:.1f}x")


if __name__ == "__main__":
    main()
