"""The cost of concurrency keys: the 3-step workload with a limit of 1 per key over 1,000 keys,
beside the same workload without limits.

    python -m bench.concurrency_keys [--runs 2000] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from typing import Any

from bench.workloads import fresh_sqlite, run_three_steps, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--postgres-url", default=None)
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        urls = [("sqlite", lambda: fresh_sqlite(f"{tmp}/keys.db"))]
        if args.postgres_url:
            from tests.pg import fresh_database_url

            urls.append(("postgresql", lambda: fresh_database_url(args.postgres_url, "outlast_bench_keys")))
        for backend, make_url in urls:
            for label, event, keys in (
                ("no limits", "bench/go", 0),
                (f"limit 1 per key, {args.keys} keys", "bench/keyed", args.keys),
            ):
                best = max(
                    (
                        asyncio.run(run_three_steps(make_url(), args.runs, event=event, keys=keys))
                        for _ in range(args.repeat)
                    ),
                    key=lambda r: r["runs_per_s"],
                )
                rows.append({"backend": backend, "workload": label, **best})
    print(f"3-step workload, {args.runs} runs, best of {args.repeat}\n")
    print(table(rows, ["backend", "workload", "seconds", "runs_per_s", "steps_per_s"]))
    for i in range(0, len(rows), 2):
        ratio = rows[i]["runs_per_s"] / rows[i + 1]["runs_per_s"]
        print(f"\n{rows[i]['backend']}: without / with limits = {ratio:.2f}x")


if __name__ == "__main__":
    main()
