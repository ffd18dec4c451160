"""Outlast beside its peers on the 3-step workload, in one run: Restate, DBOS and Temporal.

    python -m bench.peers_table [--runs 2000] [--rounds 2] [--url postgresql://...] [--skip temporal]

Each round measures every system once, one after another (Outlast on SQLite and on PostgreSQL with
one `outlast worker` process apart from the sender; Restate; DBOS on SQLite and on PostgreSQL;
Temporal), so a busy machine weighs on all of them alike. The table shows each system's best
round; the ratios are Outlast's runs/s over each peer's, from those best rounds, with the range
over rounds (round by round) after them. Set-ups: bench/peers/*.py and bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
from collections.abc import Callable
from typing import Any

from bench.peers.dbos_peer import run_dbos
from bench.peers.restate_peer import run_restate
from bench.peers.temporal_peer import run_temporal
from bench.workloads import fresh_sqlite, table, worker_processes_row
from tests.pg import fresh_database_url

Measure = Callable[[int, str], dict[str, Any]]


def systems(url: str, skip: set[str]) -> dict[str, Measure]:
    dbos_url = url.rsplit("/", 1)[0] + "/outlast_bench_dbos"
    found: dict[str, Measure] = {
        "outlast sqlite": lambda n, tmp: asyncio.run(worker_processes_row(fresh_sqlite(f"{tmp}/peers.db"), 1, n)),
        "outlast postgresql": lambda n, _: asyncio.run(
            worker_processes_row(fresh_database_url(url, "outlast_bench_peers"), 1, n)
        ),
        "restate": lambda n, tmp: run_restate(n, workdir=tmp),
        "dbos sqlite": lambda n, tmp: run_dbos(n, workdir=tmp),
        "dbos postgresql": lambda n, tmp: run_dbos(n, database_url=dbos_url, workdir=tmp),
        "temporal": lambda n, tmp: run_temporal(n, workdir=tmp),
    }
    return {name: fn for name, fn in found.items() if not any(s in name for s in skip)}


def ratios(rounds: list[dict[str, dict[str, Any]]], best: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for ours in ("outlast sqlite", "outlast postgresql"):
        for peer in best:
            other_backend = peer.startswith("dbos") and peer.split()[1] != ours.split()[1]
            if peer.startswith("outlast") or other_backend or ours not in best:
                continue
            each = [r[ours]["runs_per_s"] / r[peer]["runs_per_s"] for r in rounds]
            rows.append(
                {
                    "outlast": ours.split()[1],
                    "peer": peer,
                    "ratio": best[ours]["runs_per_s"] / best[peer]["runs_per_s"],
                    "round_by_round": f"{min(each):.1f} to {max(each):.1f}",
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--skip", nargs="*", default=[], help="systems whose name contains any of these")
    args = parser.parse_args()
    chosen = systems(args.url, set(args.skip))
    rounds: list[dict[str, dict[str, Any]]] = []
    for _ in range(args.rounds):
        measured: dict[str, dict[str, Any]] = {}
        for name, measure in chosen.items():
            with tempfile.TemporaryDirectory(prefix="peers_") as tmp:
                measured[name] = {**measure(args.runs, tmp), "system": name}
        rounds.append(measured)
    best = {name: max((r[name] for r in rounds), key=lambda row: row["runs_per_s"]) for name in chosen}
    print(
        f"3-step workload, {args.runs} runs, one worker process, {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()}, Python {platform.python_version()}), "
        f"best of {args.rounds} interleaved rounds\n"
    )
    print(table(list(best.values()), ["system", "runs", "seconds", "runs_per_s", "steps_per_s"]))
    print("\nOutlast runs/s over each peer's\n")
    print(table(ratios(rounds, best), ["outlast", "peer", "ratio", "round_by_round"]))
    cpu = [
        {"system": n, **{k.removeprefix("cpu_ms_per_run_"): v for k, v in r.items() if k.startswith("cpu_")}}
        for n, r in best.items()
        if any(k.startswith("cpu_") for k in r)
    ]
    if cpu:
        print("\npeers' CPU per run (ms), by process, in their best round\n")
        print(table(cpu, ["system", *sorted({k for row in cpu for k in row} - {"system"})]))


if __name__ == "__main__":
    main()
