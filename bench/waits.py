"""Matching one incoming event against many waiting runs: indexed, so flat in the number of waits.

    python -m bench.waits [--events 200] [--waiting 10 20000] [--postgres-url URL]

For 10 and 20,000 runs waiting on one event name, the time to ingest one event that resumes
exactly one of them, averaged over --events events, for each form of wait: `match="data.order_id"`,
the same as an `if_` equality, and an `if_` conjunction of equalities (indexed on all of them).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from typing import Any

import outlast
from bench.databases import drop_postgres
from bench.workloads import fresh_sqlite, table
from outlast.testing import TestEngine

app = outlast.Outlast("bench-waits")


#: the forms of wait measured: the `match=` shorthand and `if_` expressions Inngest's SDKs send
FORMS = {
    "match": {"match": "data.order_id"},
    "if equality": {"if_": "event.data.order_id == async.data.order_id"},
    "if conjunction": {"if_": "async.data.order_id == event.data.order_id && async.data.status == 'paid'"},
}


def _waiter(form: str) -> None:
    @app.function(id=f"waiter-{form.replace(' ', '-')}", trigger=f"bench/order-{form.replace(' ', '-')}")
    async def waiter(ctx: outlast.Context) -> bool:
        paid = await ctx.step.wait_for_event("paid", event="bench/paid", timeout="1d", **FORMS[form])
        return paid is not None


for _form in FORMS:
    _waiter(_form)


async def measure(url: str, form: str, waiting: int, events: int) -> dict[str, Any]:
    async with TestEngine(app, database_url=url, concurrency=500) as t:
        for start in range(0, waiting, 1000):
            await t.send(
                [
                    outlast.Event(name=f"bench/order-{form.replace(' ', '-')}", data={"order_id": i})
                    for i in range(start, min(waiting, start + 1000))
                ]
            )
            await t.run_until_idle()
        targets = [i * waiting // events for i in range(events)]
        started = time.perf_counter()
        for order_id in targets:
            await t.send(outlast.Event(name="bench/paid", data={"order_id": order_id, "status": "paid"}))
        seconds = time.perf_counter() - started
        await t.run_until_idle()
        resumed = len(t.runs(status="completed"))
    assert resumed == len(set(targets)), "each event must resume exactly one run"
    return {
        "backend": url.split(":")[0].removesuffix("ql"),
        "wait": form,
        "waiting_runs": waiting,
        "ms_per_match": seconds / events * 1000,
    }


def _on_fresh_postgres(base_url: str, form: str, waiting: int, events: int) -> dict[str, Any]:
    """`measure` on a database of its own, dropped after."""
    import psycopg
    from psycopg import sql

    name = f"outlast_bench_waits_{os.getpid()}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        return asyncio.run(measure(base_url.rsplit("/", 1)[0] + "/" + name, form, waiting, events))
    finally:
        drop_postgres(base_url, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--waiting", type=int, nargs="+", default=[10, 20_000])
    parser.add_argument("--form", choices=list(FORMS), nargs="+", default=list(FORMS))
    parser.add_argument("--postgres-url", default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for form in args.form:
            for n in args.waiting:
                rows.append(asyncio.run(measure(fresh_sqlite(f"{tmp}/w{n}.db"), form, n, min(args.events, n))))
                if args.postgres_url:
                    rows.append(_on_fresh_postgres(args.postgres_url, form, n, min(args.events, n)))
    print("time to match one incoming event, by number of runs waiting on its name\n")
    print(table(rows, ["backend", "wait", "waiting_runs", "ms_per_match"]))


if __name__ == "__main__":
    main()
