"""Scale-out on PostgreSQL: the 3-step workload with 1, 2 and 4 worker processes, beside DBOS on
the same server, and the event-to-first-step latency of an idle worker (LISTEN/NOTIFY).

    python -m bench.postgres [--runs 2000] [--url postgresql://postgres@127.0.0.1:5432/postgres]

Workers are `outlast worker` processes; they are started and idle before the events are sent in
one batch, and the clock stops when the last run completed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from typing import Any

from bench.workloads import first_step_latency, table, worker_processes_row
from tests.pg import fresh_database_url


async def throughput(base: str, processes: int, n: int) -> dict[str, Any]:
    return await worker_processes_row(fresh_database_url(base, "outlast_bench_pg"), processes, n)


async def latency(base: str, samples: int) -> dict[str, Any]:
    return await first_step_latency(fresh_database_url(base, "outlast_bench_latency"), samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--repeat", type=int, default=2, help="report the best of this many runs of each")
    args = parser.parse_args()

    def best(results: list[dict[str, Any]]) -> dict[str, Any]:
        return max(results, key=lambda r: r["runs_per_s"])

    rows = [best([asyncio.run(throughput(args.url, p, args.runs)) for _ in range(args.repeat)]) for p in (1, 2, 4)]
    if not args.no_peer:
        from bench.peers.dbos_peer import run_dbos

        dbos_url = args.url.rsplit("/", 1)[0] + "/outlast_bench_dbos"
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(best([run_dbos(args.runs, database_url=dbos_url, workdir=tmp) for _ in range(args.repeat)]))
    print(
        f"3-step workload, {args.runs} runs, PostgreSQL at 127.0.0.1 ({os.cpu_count()} cores), best of {args.repeat}\n"
    )
    print(table(rows, ["system", "runs", "seconds", "runs_per_s", "steps_per_s"]))
    if not args.no_peer:
        print(f"\noutlast (1 process) / dbos runs/s: {rows[0]['runs_per_s'] / rows[-1]['runs_per_s']:.1f}x")
    print("\nevent-to-first-step latency, one idle worker\n")
    print(table([asyncio.run(latency(args.url, args.samples))], ["samples", "p50_ms", "p99_ms", "max_ms"]))


if __name__ == "__main__":
    main()
