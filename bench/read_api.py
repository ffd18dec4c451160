"""The runs page and the read API over a million stored runs, on SQLite and on PostgreSQL.

    python -m bench.read_api [--runs 1000000] [--requests 200] [--backends sqlite,postgres]
                             [--pg-url postgresql://postgres@127.0.0.1:5432/postgres]

Seeds the runs with bulk SQL (not through the engine) into a dedicated database (a temporary
SQLite file; a PostgreSQL database `outlast_bench_read_api_<pid>`) that is dropped afterwards, then
serves them with the real server on loopback and times requests one after another: the first
page, a filtered page (one function, failed) and a deep cursor page (900,000 runs down), each as
the HTML runs page (with its counts per status) and as `GET /api/runs`. Prints p50/p99 per
request and the query plans (EXPLAIN) of the listings and counts, which name the indexes used.
The floor is 100 ms p99 for each.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn

from bench.databases import drop_postgres, migrate
from bench.workloads import table
from outlast.core.clock import SystemClock
from outlast.core.ids import new_ulid
from outlast.runtime.engine import Engine
from outlast.server.app import create_app
from outlast.server.mode import ServerConfig
from outlast.settings import Settings
from outlast.storage import open_store
from outlast.storage.sql.read import RUN_COLUMNS, run_conditions
from tests.server.serving import free_port

APPS = 2
FUNCTIONS = 10  # per app
DAY_MS = 86_400_000
#: status mix: mostly completed, some failed, a few cancelled and active
STATUSES = [("completed", 850), ("failed", 100), ("cancelled", 30), ("running", 10), ("queued", 10)]
FLOOR_MS = 100.0
COLUMNS = (
    "id",
    "app_id",
    "function_id",
    "status",
    "event_ids",
    "first_event_id",
    "output",
    "error",
    "created_at",
    "started_at",
    "ended_at",
)


def rows(n: int, now: int) -> Iterator[tuple[Any, ...]]:
    """n runs spread over the last 30 days, oldest first; one trigger event per 1,000 runs."""
    rng = random.Random(7)
    weights = [w for _, w in STATUSES]
    names = [s for s, _ in STATUSES]
    start = now - 30 * DAY_MS
    event = ""
    for i in range(n):
        created = start + (30 * DAY_MS) * i // n
        run_id = new_ulid(created)
        if i % 1000 == 0:
            event = new_ulid(created)
        status = rng.choices(names, weights)[0]
        app = i % APPS
        fn = rng.randrange(FUNCTIONS)
        ended = created + rng.randrange(5, 900) if status in ("completed", "failed", "cancelled") else None
        yield (
            run_id,
            f"app-{app}",
            f"fn-{fn}",
            status,
            f'["{event}"]',
            event,
            '{"ok":true}' if status == "completed" else None,
            '{"name":"Error","message":"boom"}' if status == "failed" else None,
            created,
            created + 2 if status != "queued" else None,
            ended,
        )


def seed_sqlite(path: str, n: int, now: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.executemany(f"INSERT INTO runs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", rows(n, now))
    conn.execute("COMMIT")
    conn.close()


def seed_postgres(url: str, n: int, now: int) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        with conn.cursor() as cur, cur.copy(f"COPY runs ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows(n, now):
                copy.write_row(row)
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE runs")  # what autovacuum does shortly after a bulk load


def deep_cursor(url: str, depth: int) -> str:
    sql = f"SELECT id FROM runs ORDER BY id DESC LIMIT 1 OFFSET {depth}"
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        row = conn.execute(sql).fetchone()
        conn.close()
    else:
        import psycopg

        with psycopg.connect(url) as pg:
            row = pg.execute(sql).fetchone()
    assert row is not None
    return str(row[0])


async def time_requests(base: str, requests: dict[str, str], count: int) -> list[dict[str, Any]]:
    out = []
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for name, path in requests.items():
            for _ in range(3):
                reply = await client.get(path)
                assert reply.status_code == 200, (path, reply.status_code, reply.text[:300])
            samples = []
            for _ in range(count):
                began = time.perf_counter()
                reply = await client.get(path)
                samples.append((time.perf_counter() - began) * 1000)
                assert reply.status_code == 200
            samples.sort()
            p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
            out.append(
                {
                    "request": name,
                    "p50 ms": statistics.median(samples),
                    "p99 ms": p99,
                    "floor": "ok" if p99 <= FLOOR_MS else "OVER",
                }
            )
    return out


async def serve_and_time(url: str, cursor: str, count: int) -> list[dict[str, Any]]:
    engine = Engine(open_store(url), SystemClock(), Settings())
    await engine.open()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(engine, ServerConfig()), port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    filtered = "function=app-0/fn-3&status=failed"
    requests = {
        "page: first": "/",
        "api: first": "/api/runs",
        "page: filtered": f"/?{filtered}",
        "api: filtered": f"/api/runs?{filtered}",
        "page: deep cursor": f"/?cursor={cursor}",
        "api: deep cursor": f"/api/runs?cursor={cursor}",
        "api: filtered, last 24 h": f"/api/runs?{filtered}&range=24h",
    }
    try:
        return await time_requests(f"http://127.0.0.1:{port}", requests, count)
    finally:
        server.should_exit = True
        await task
        await engine.close()


def plans(url: str, cursor: str) -> list[str]:
    """EXPLAIN of the listing and count queries the pages run (the store's own SQL shapes)."""
    from outlast.core.models import RunFilter

    queries = []
    for label, flt in [
        ("first page", RunFilter()),
        ("filtered", RunFilter(app_id="app-0", function_id="fn-3", status="failed")),
        ("deep cursor", RunFilter(before=cursor)),
    ]:
        where, params = run_conditions(flt)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        queries.append((f"list {label}", f"SELECT {RUN_COLUMNS} FROM runs {clause} ORDER BY id DESC LIMIT 51", params))
    queries.append(
        (
            "count failed (cap 10,000)",
            "SELECT COUNT(*) FROM (SELECT 1 FROM runs WHERE status = ? LIMIT 10000) c",
            ["failed"],
        )
    )
    queries.append(
        (
            "count fn-3 failed",
            "SELECT COUNT(*) FROM (SELECT 1 FROM runs WHERE status = ? AND app_id = ?"
            " AND function_id = ? LIMIT 10000) c",
            ["failed", "app-0", "fn-3"],
        )
    )
    out = []
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        for label, sql, params in queries:
            plan = "; ".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            out.append(f"  {label}: {plan}")
        conn.close()
    else:
        import psycopg

        from outlast.storage.postgres import to_pyformat

        with psycopg.connect(url) as pg:
            for label, sql, params in queries:
                lines = [r[0] for r in pg.execute(b"EXPLAIN " + to_pyformat(sql), params)]
                out.append(f"  {label}: " + " / ".join(line.strip() for line in lines if "Scan" in line))
    return out


def bench(backend: str, n: int, count: int, pg_url: str) -> list[dict[str, Any]]:
    now = SystemClock().now_ms()
    tmp = tempfile.TemporaryDirectory(prefix="outlast-bench-read-")
    if backend == "sqlite":
        url = f"sqlite:///{tmp.name}/read.db"
    else:
        from tests.pg import fresh_database_url

        url = fresh_database_url(pg_url, "outlast_bench_read_api")
    try:
        asyncio.run(migrate(url))
        began = time.perf_counter()
        if backend == "sqlite":
            seed_sqlite(url.removeprefix("sqlite:///"), n, now)
        else:
            seed_postgres(url, n, now)
        print(f"{backend}: seeded {n:,} runs in {time.perf_counter() - began:.1f} s", flush=True)
        cursor = deep_cursor(url, min(n - 60, 900_000))
        print("\n".join([f"{backend} query plans:", *plans(url, cursor)]), flush=True)
        results = asyncio.run(serve_and_time(url, cursor, count))
        return [{"backend": backend, **r} for r in results]
    finally:
        tmp.cleanup()
        if backend == "postgres":
            drop_postgres(pg_url, url.rsplit("/", 1)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("OUTLAST_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    args = parser.parse_args()
    results = []
    for backend in args.backends.split(","):
        results += bench(backend.strip(), args.runs, args.requests, args.pg_url)
    print()
    print(table(results, ["backend", "request", "p50 ms", "p99 ms", "floor"]))
    print(
        f"\n{args.runs:,} runs; {args.requests} sequential requests each after 3 warm-ups; floor {FLOOR_MS:.0f} ms "
        "p99. The machine may be shared: compare rows of one run."
    )


if __name__ == "__main__":
    main()
