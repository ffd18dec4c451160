"""One WebSocket message's round trip through uvicorn, by its WebSocket implementation: what each
Connect message costs the gateway before any of Outlast's own work. The server (a Starlette echo
route) runs in a process of its own; a client on `websockets`' sync API sends 600 bytes, about a
call request, and waits for them back. The server's CPU per message is the steadier measure on a
shared machine; the round trip's wall time moves with whatever else runs.

    python -m bench.websocket_impls [--messages 5000] [--rounds 3]

The rounds alternate the implementations, so that load from elsewhere falls on both alike.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.sync.client import connect

from bench.http_driver import ROOT, cpu_seconds, free_port, pct, wait_port
from bench.workloads import table

IMPLEMENTATIONS = ("websockets", "websockets-sansio")


async def echo(ws: WebSocket) -> None:
    await ws.accept()
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        await ws.send_bytes(message["bytes"])


def round_trips(implementation: str, messages: int) -> tuple[list[float], float]:
    """Microseconds per round trip (the first tenth, warming up, left out), and the server's CPU
    microseconds per message."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.websocket_impls", "--serve", implementation, "--port", str(port)],
        cwd=ROOT,
        stderr=subprocess.DEVNULL,
    )
    times: list[float] = []
    try:
        wait_port(port, server)
        with connect(f"ws://127.0.0.1:{port}/ws") as client:
            for i in range(messages):
                if i == messages // 10:
                    cpu_before = cpu_seconds(server.pid)
                started = time.perf_counter()
                client.send(b"x" * 600)
                client.recv()
                times.append((time.perf_counter() - started) * 1e6)
            cpu = cpu_seconds(server.pid) - cpu_before
    finally:
        server.terminate()
        server.wait(30)
    measured = times[messages // 10 :]
    return measured, cpu * 1e6 / len(measured)


def serve(implementation: str, port: int) -> None:
    app = Starlette(routes=[WebSocketRoute("/ws", echo)])
    uvicorn.run(app, port=port, ws=implementation, log_level="error", lifespan="off")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    walls: dict[str, list[float]] = {name: [] for name in IMPLEMENTATIONS}
    cpus: dict[str, list[float]] = {name: [] for name in IMPLEMENTATIONS}
    for _ in range(args.rounds):
        for name in IMPLEMENTATIONS:
            wall, cpu = round_trips(name, args.messages)
            walls[name] += wall
            cpus[name].append(cpu)
    rows: list[dict[str, Any]] = [
        {
            "uvicorn_ws": name,
            "server_cpu_us_per_message": statistics.median(cpus[name]),
            "round_trip_p50_us": statistics.median(walls[name]),
            "round_trip_p99_us": pct(walls[name], 0.99),
        }
        for name in IMPLEMENTATIONS
    ]
    print(
        f"{args.messages} messages x {args.rounds} rounds ({platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, uvicorn {uvicorn.__version__})\n"
    )
    print(table(rows, ["uvicorn_ws", "server_cpu_us_per_message", "round_trip_p50_us", "round_trip_p99_us"]))


if __name__ == "__main__":
    main()
