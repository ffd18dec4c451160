"""Ingest throughput: one `Engine.send` of many events, and the HTTP event API under 20 clients.

    python -m bench.ingest [--events 100000] [--api-events 20000] [--clients 20] [--batch 100]
                           [--backends sqlite,postgres] [--pg-url postgresql://postgres@127.0.0.1:5432/postgres]

Every event is `bench/go`, which starts one run of the 3-step function (bench/workloads.py), so
each event costs an event row, a run and a queue item; no worker runs, so only ingest is timed.

- one send: `Engine.send` of `--events` events in one call (one transaction), timed around the call.
- event API: the real server (`create_app`, production mode with an event key) in its own process
  on loopback, and `--clients` concurrent clients in this process posting `POST /e/{key}`, one
  event per request, then `--batch` events per request; timed from the first request to the last
  answer. The clients write HTTP/1.1 on kept-alive sockets (`raw_post`): httpx's AsyncClient costs
  about 3 ms of client CPU per request, so 20 httpx clients on this machine measure httpx, not the
  server (`--httpx` to see that).

Each measurement gets a fresh database: a temporary SQLite file, or the PostgreSQL database
`outlast_bench_ingest_<pid>`, dropped and created again.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

import outlast
from bench.workloads import app, fresh_sqlite, open_engine, table
from outlast.core import jsonutil

ROOT = Path(__file__).resolve().parents[1]
EVENT_KEY = "bench-event-key"


def fresh_url(backend: str, tmp: str, pg_url: str) -> str:
    if backend == "sqlite":
        return fresh_sqlite(f"{tmp}/ingest.db")
    from tests.pg import fresh_database_url

    return fresh_database_url(pg_url, "outlast_bench_ingest")


async def one_send(url: str, n: int) -> float:
    engine = await open_engine(app, url)
    events = [outlast.Event(name="bench/go", data={"i": i}) for i in range(n)]
    try:
        started = time.perf_counter()
        await engine.send(events)
        return time.perf_counter() - started
    finally:
        await engine.close()


# -- the event API -------------------------------------------------------------------------------


async def serve(url: str, port: int) -> None:
    """The server process: the event API (and the rest of the app) on loopback, no workers."""
    from outlast.server.app import create_app, http_server
    from outlast.server.mode import ServerConfig

    engine = await open_engine(app, url)
    config = ServerConfig(mode="production", event_keys=(EVENT_KEY,), dashboard_password="bench")
    try:
        await http_server(create_app(engine, config), host="127.0.0.1", port=port).serve()
    finally:
        await engine.close()


def start_server(url: str) -> tuple[subprocess.Popen[bytes], str]:
    from tests.server.serving import free_port

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.ingest", "--serve", url, "--port", str(port)], env=env, cwd=ROOT
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.05)
    proc.terminate()
    raise RuntimeError("the server did not start")


async def post_events(base: str, total: int, clients: int, batch: int, *, use_httpx: bool = False) -> float:
    """`clients` concurrent clients post `total` events, `batch` per request; the seconds it took."""
    requests = total // batch
    sent = 0

    def body(i: int) -> bytes:
        events = [{"name": "bench/go", "data": {"i": i * batch + j}} for j in range(batch)]
        return jsonutil.dumps(events[0] if batch == 1 else events).encode()

    async def httpx_client(http: httpx.AsyncClient) -> None:
        nonlocal sent
        while sent < requests:
            sent += 1
            reply = await http.post(f"/e/{EVENT_KEY}", content=body(sent), headers=JSON)
            assert reply.status_code == 200, reply.text[:300]

    async def raw_client(host: str, port: int) -> None:
        nonlocal sent
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while sent < requests:
                sent += 1
                status, text = await raw_post(reader, writer, host, f"/e/{EVENT_KEY}", body(sent))
                assert status == 200, text[:300]
        finally:
            writer.close()

    if not use_httpx:
        host, port = base.removeprefix("http://").split(":")
        await raw_post(*await asyncio.open_connection(host, int(port)), host, f"/e/{EVENT_KEY}", b'{"name":"w/up"}')
        started = time.perf_counter()
        await asyncio.gather(*(raw_client(host, int(port)) for _ in range(clients)))
        return time.perf_counter() - started
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as http:
        await http.post(f"/e/{EVENT_KEY}", json={"name": "bench/warm-up"})
        started = time.perf_counter()
        await asyncio.gather(*(httpx_client(http) for _ in range(clients)))
        return time.perf_counter() - started


JSON = {"content-type": "application/json"}


async def raw_post(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, path: str, body: bytes
) -> tuple[int, bytes]:
    """One HTTP/1.1 POST on a kept-alive connection: a client that costs the benchmark little CPU."""
    writer.write(
        f"POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(v) for k, _, v in (line.partition(":") for line in lines[1:]) if k.lower() == "content-length")
    return int(lines[0].split()[1]), await reader.readexactly(length)


def event_api(url: str, total: int, clients: int, batch: int, *, use_httpx: bool = False) -> float:
    proc, base = start_server(url)
    try:
        return asyncio.run(post_events(base, total, clients, batch, use_httpx=use_httpx))
    finally:
        proc.terminate()
        proc.wait(30)


def row(backend: str, what: str, events: int, seconds: float) -> dict[str, Any]:
    return {"backend": backend, "what": what, "events": events, "seconds": seconds, "events_per_s": events / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="events in the one send")
    parser.add_argument("--api-events", type=int, default=20_000, help="events posted to the event API, each way")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--batch", type=int, default=100, help="events per request in the batched row")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--skip-api", action="store_true", help="only the one send")
    parser.add_argument("--httpx", action="store_true", help="clients on httpx.AsyncClient instead of raw sockets")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.port))
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="outlast-bench-ingest-") as tmp:
        for backend in args.backends.split(","):
            seconds = asyncio.run(one_send(fresh_url(backend, tmp, args.pg_url), args.events))
            rows.append(row(backend, f"one send of {args.events:,}", args.events, seconds))
            if args.skip_api:
                continue
            for batch, what in ((1, "event API, single events"), (args.batch, f"event API, {args.batch} per request")):
                total = args.api_events if batch > 1 else args.api_events // (20 if args.httpx else 4)
                seconds = event_api(
                    fresh_url(backend, tmp, args.pg_url), total, args.clients, batch, use_httpx=args.httpx
                )
                clients = f"{args.clients} {'httpx ' if args.httpx else ''}clients"
                rows.append(row(backend, f"{what}, {clients}", total, seconds))
    print(f"ingest of `bench/go` events (one run each), no worker ({os.cpu_count()} cores)\n")
    print(table(rows, ["backend", "what", "events", "seconds", "events_per_s"]))


if __name__ == "__main__":
    main()
