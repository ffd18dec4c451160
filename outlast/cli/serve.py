"""Commands that run the engine: `dev`, `start` (workers and the HTTP server) and `worker`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from dataclasses import dataclass
from typing import Any

from outlast.cli.apps import load_app
from outlast.cli.common import Subparsers, command, local_time, settings_from
from outlast.cli.devlog import print_observation
from outlast.cli.observers import MetricsEndpoint, start_observers
from outlast.client import Outlast
from outlast.core.config import CronTrigger
from outlast.core.engine import Engine
from outlast.core.worker import Worker
from outlast.errors import OutlastError
from outlast.settings import Settings

DEV_BACKOFF_SCALE = 0.01  # dev mode: a 15 s retry waits 150 ms
DEFAULT_PORT = 8288


@dataclass(frozen=True, slots=True, kw_only=True)
class Http:
    """Where and how the HTTP server listens."""

    host: str
    port: int
    mode: str
    event_keys: tuple[str, ...] = ()


async def run(app: Outlast | None, settings: Settings, *, verbose: bool, http: Http | None,
              metrics: MetricsEndpoint | None = None) -> None:
    """Run workers (and the server, if `http`) until SIGINT or SIGTERM, then stop cleanly."""
    engine = Engine.from_settings(settings)
    if app is not None:
        app.settings = settings
        await engine.add_source(app)
    await engine.open()
    try:
        stop_observers = await start_observers(engine, env=os.environ, metrics=metrics)
    except BaseException:
        await engine.close()
        raise
    if verbose:
        engine.bus.subscribe(print_observation)
        _print_banner(app, settings, engine.clock.now_ms())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = _server(engine, http) if http is not None else None
    try:
        tasks = [asyncio.create_task(Worker(engine).run(stop))]
        if server is not None:
            tasks.append(asyncio.create_task(server.serve()))
        await stop.wait()
        if server is not None:
            server.should_exit = True
        await asyncio.gather(*tasks)
    finally:
        await stop_observers()
        await engine.close()
        if verbose:
            print("outlast: stopped", flush=True)


def _server(engine: Engine, http: Http) -> Any:
    from outlast.server.app import create_app, http_server
    from outlast.server.config import ServerConfig

    config = ServerConfig(mode="production" if http.mode == "production" else "dev", event_keys=http.event_keys)
    print(f"outlast: serving on http://{http.host}:{http.port}", flush=True)
    return http_server(create_app(engine, config), host=http.host, port=http.port)


def _print_banner(app: Outlast | None, settings: Settings, now_ms: int) -> None:
    if app is None:
        print(f"outlast: no local app, on {settings.database_url}", flush=True)
        return
    names = ", ".join(sorted(app.functions)) or "none"
    print(f"outlast: app {app.id!r} on {settings.database_url} — functions: {names}", flush=True)
    from outlast.core.cron import parse_schedule

    for fn in app.functions.values():
        for trigger in fn.config.triggers:
            if isinstance(trigger, CronTrigger):
                tick = parse_schedule(trigger.cron).next_after(now_ms)
                print(f"outlast: cron {fn.id} ({trigger.cron}) next at {local_time(tick)}", flush=True)


def cmd_dev(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s  %(name)s  %(levelname)s  %(message)s",
                        datefmt="%H:%M:%S")
    app = load_app(args.app) if args.app else None
    http = Http(host=args.host, port=args.port, mode="dev")
    asyncio.run(run(app, settings_from(args, backoff_scale=DEV_BACKOFF_SCALE), verbose=True, http=http))
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    """Production mode: event keys are required; workers plus the HTTP server in one process."""
    keys = [k.strip() for k in (args.event_key or os.environ.get("OUTLAST_EVENT_KEY", "")).split(",") if k.strip()]
    if not keys:
        raise OutlastError("start: production mode needs an event key (--event-key or OUTLAST_EVENT_KEY; "
                           "several may be given, comma-separated)")
    app = load_app(args.app) if args.app else None
    http = Http(host=args.host, port=args.port, mode="production", event_keys=tuple(keys))
    asyncio.run(run(app, settings_from(args), verbose=True, http=http))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    metrics = None if args.metrics_port is None else MetricsEndpoint(host=args.metrics_host, port=args.metrics_port)
    asyncio.run(run(app, settings_from(args), verbose=args.verbose, http=None, metrics=metrics))
    return 0


def _http_options(c: argparse.ArgumentParser, *, app_required: bool) -> None:
    c.add_argument("app", nargs=None if app_required else "?",
                   help="the app: path/to/file.py, module or module:attr" +
                        ("" if app_required else " (none: serve apps on the official Inngest SDKs only)"))
    c.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    c.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})")


def register(sub: Subparsers) -> None:
    dev = command(sub, "dev", cmd_dev, "run everything locally: workers, timers and the HTTP server (no keys)")
    _http_options(dev, app_required=False)
    st = command(sub, "start", cmd_start, "production mode: workers and the HTTP server; keys required")
    _http_options(st, app_required=False)
    st.add_argument("--event-key", default=None, help="accepted event keys, comma-separated")
    w = command(sub, "worker", cmd_worker, "run workers only, joining the same database")
    w.add_argument("app", help="the app: path/to/file.py, module or module:attr")
    w.add_argument("-v", "--verbose", action="store_true", help="print every run state change")
    w.add_argument("--metrics-port", type=int, default=None, metavar="P",
                   help="serve Prometheus metrics on http://HOST:P/metrics (needs outlast[metrics])")
    w.add_argument("--metrics-host", default="127.0.0.1", help="interface for --metrics-port (default 127.0.0.1)")
