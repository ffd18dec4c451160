"""Matching one incoming event against many waiting runs: indexed, so flat in the number of waits.

    python -m bench.waits [--events 200] [--waiting 10 20000] [--postgres-url URL]

For 10 and 20,000 runs waiting on one event name, the time to ingest one event that resumes
exactly one of them, averaged over --events events, for each form of wait: `match="data.order_id"`,
the same as an `if_` equality, and an `if_` conjunction of equalities (indexed on all of them).

Then a wait no index can find (`if_` with `||`), 10 and 20,000 waiting: how long the `send` of
such an event takes (its ingest only leaves it to the matcher), how long an event of another name
takes to ingest while the matcher evaluates the waits (the matcher never holds the writer while it
evaluates), and how long from the send until the run it resumes is claimable again.
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

#: a wait no index can find: every pending one is evaluated against each event of its name
SCAN = {"if_": "event.data.order_id == async.data.order_id || async.data.order_id == -1"}


@app.function(id="scanned", trigger="bench/order-scanned")
async def scanned(ctx: outlast.Context) -> bool:
    paid = await ctx.step.wait_for_event("paid", event="bench/settled", timeout="1d", **SCAN)
    return paid is not None


@app.function(id="other", trigger="bench/other")
async def other(ctx: outlast.Context) -> None:
    return None


async def measure_scan(url: str, waiting: int) -> dict[str, Any]:
    """One event against `waiting` expression waits, and an event of another name meanwhile."""
    async with TestEngine(app, database_url=url, concurrency=500) as t:
        for start in range(0, waiting, 1000):
            await t.send(
                [
                    outlast.Event(name="bench/order-scanned", data={"order_id": i})
                    for i in range(start, min(waiting, start + 1000))
                ]
            )
            await t.run_until_idle()
        started = time.perf_counter()
        await t.send(outlast.Event(name="bench/settled", data={"order_id": waiting // 2}))
        sent = time.perf_counter()
        matching = asyncio.create_task(t.engine.store.match_expression_waits(t.now_ms()))
        await asyncio.sleep(0.001)  # let the matcher start reading
        other_started = time.perf_counter()
        await t.send(outlast.Event(name="bench/other"))
        other_ms = (time.perf_counter() - other_started) * 1000
        other_first = not matching.done()
        await matching
        matched = time.perf_counter()
        await t.run_until_idle()
        resumed = len(t.runs(function_id="scanned", status="completed"))
    assert resumed == 1, "the event must resume exactly one run"
    return {
        "backend": url.split(":")[0].removesuffix("ql"),
        "waiting_runs": waiting,
        "send_ms": (sent - started) * 1000,
        "other_name_send_ms": other_ms,
        "other_done_before_match": other_first,
        "matched_after_ms": (matched - started) * 1000,
    }


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


def _on_fresh_postgres(base_url: str, measuring: Any, *args: Any) -> dict[str, Any]:
    """`measuring(url, *args)` on a database of its own, dropped after."""
    import psycopg
    from psycopg import sql

    name = f"outlast_bench_waits_{os.getpid()}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        return asyncio.run(measuring(base_url.rsplit("/", 1)[0] + "/" + name, *args))
    finally:
        drop_postgres(base_url, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--waiting", type=int, nargs="+", default=[10, 20_000])
    parser.add_argument("--form", choices=list(FORMS), nargs="*", default=list(FORMS))
    parser.add_argument("--postgres-url", default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for form in args.form:
            for n in args.waiting:
                rows.append(asyncio.run(measure(fresh_sqlite(f"{tmp}/w{n}.db"), form, n, min(args.events, n))))
                if args.postgres_url:
                    rows.append(_on_fresh_postgres(args.postgres_url, measure, form, n, min(args.events, n)))
        scans = []
        for n in args.waiting:
            scans.append(asyncio.run(measure_scan(fresh_sqlite(f"{tmp}/s{n}.db"), n)))
            if args.postgres_url:
                scans.append(_on_fresh_postgres(args.postgres_url, measure_scan, n))
    print("time to match one incoming event, by number of runs waiting on its name\n")
    print(table(rows, ["backend", "wait", "waiting_runs", "ms_per_match"]))
    print("\na wait no index finds (`||`): one event's send, another name's send meanwhile, the match\n")
    print(
        table(
            scans,
            ["backend", "waiting_runs", "send_ms", "other_name_send_ms", "other_done_before_match", "matched_after_ms"],
        )
    )


if __name__ == "__main__":
    main()
