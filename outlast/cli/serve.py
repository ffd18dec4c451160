"""Commands that run the engine: `dev`, `start` (workers and the HTTP server) and `worker`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from dataclasses import dataclass
from typing import Any

from outlast.cli import served
from outlast.cli.apps import load_app
from outlast.cli.common import Subparsers, command, local_time, settings_from
from outlast.cli.devlog import print_observation
from outlast.client import Outlast
from outlast.core.config import CronTrigger
from outlast.core.drivers.http import HttpDriver
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
    #: signing keys (production): requests to served apps are signed, apps authenticate with them
    signing_keys: tuple[str, ...] = ()
    #: apps on the official Inngest SDKs to sync once the server listens (`--sdk-url`)
    sdk_urls: tuple[str, ...] = ()


async def run(app: Outlast | None, settings: Settings, *, verbose: bool, http: Http | None) -> None:
    """Run workers (and the server, if `http`) until SIGINT or SIGTERM, then stop cleanly."""
    engine = Engine.from_settings(settings)
    if app is not None:
        app.settings = settings
        await engine.add_source(app)
    await engine.open()
    if verbose:
        engine.bus.subscribe(print_observation)
        _print_banner(app, settings, engine.clock.now_ms())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = _server(engine, http) if http is not None else None
    if http is not None:
        served.install_http_driver(engine, settings, http.signing_keys)
    try:
        tasks = [asyncio.create_task(Worker(engine).run(stop))]
        if server is not None:
            tasks.append(asyncio.create_task(server.serve()))
        if server is not None and http is not None and http.sdk_urls:
            syncing = asyncio.create_task(served.sync_sdk_urls(engine, list(http.sdk_urls), server,
                                                               production=http.mode == "production"))
        await stop.wait()
        if server is not None:
            server.should_exit = True
        if http is not None and http.sdk_urls:
            syncing.cancel()
        await asyncio.gather(*tasks)
    finally:
        driver = engine.drivers.get("http")
        if isinstance(driver, HttpDriver):
            await driver.aclose()
        await engine.close()
        if verbose:
            print("outlast: stopped", flush=True)


def _server(engine: Engine, http: Http) -> Any:
    from outlast.server.app import create_app, http_server
    from outlast.server.config import ServerConfig

    config = ServerConfig(mode="production" if http.mode == "production" else "dev", event_keys=http.event_keys,
                          signing_keys=http.signing_keys)
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
    http = Http(host=args.host, port=args.port, mode="dev", sdk_urls=tuple(args.sdk_url or ()))
    asyncio.run(run(app, settings_from(args, backoff_scale=DEV_BACKOFF_SCALE), verbose=True, http=http))
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    """Production mode: event and signing keys are required; workers plus the HTTP server in one process."""
    keys = served.event_keys(args)
    if not keys:
        raise OutlastError("start: production mode needs an event key (--event-key, OUTLAST_EVENT_KEY or "
                           "INNGEST_EVENT_KEY; several may be given, comma-separated)")
    signing = served.signing_keys(args)
    if not signing:
        raise OutlastError("start: production mode needs a signing key (--signing-key, OUTLAST_SIGNING_KEY or "
                           "INNGEST_SIGNING_KEY), shaped 'signkey-<env>-<hex>'")
    app = load_app(args.app) if args.app else None
    http = Http(host=args.host, port=args.port, mode="production", event_keys=keys, signing_keys=signing,
                sdk_urls=tuple(args.sdk_url or ()))
    asyncio.run(run(app, settings_from(args), verbose=True, http=http))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    asyncio.run(run(app, settings_from(args), verbose=args.verbose, http=None))
    return 0


def _http_options(c: argparse.ArgumentParser, *, app_required: bool) -> None:
    c.add_argument("app", nargs=None if app_required else "?",
                   help="the app: path/to/file.py, module or module:attr" +
                        ("" if app_required else " (none: serve apps on the official Inngest SDKs only)"))
    c.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    c.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})")
    c.add_argument("--sdk-url", action="append", metavar="URL",
                   help="an app on an official Inngest SDK to sync at start (its serve URL); repeatable")


def register(sub: Subparsers) -> None:
    dev = command(sub, "dev", cmd_dev, "run everything locally: workers, timers and the HTTP server (no keys)")
    _http_options(dev, app_required=False)
    st = command(sub, "start", cmd_start, "production mode: workers and the HTTP server; keys required")
    _http_options(st, app_required=False)
    st.add_argument("--event-key", default=None, help="accepted event keys, comma-separated")
    st.add_argument("--signing-key", default=None,
                    help="signing key shared with served apps (default: OUTLAST_SIGNING_KEY or INNGEST_SIGNING_KEY)")
    w = command(sub, "worker", cmd_worker, "run workers only, joining the same database")
    w.add_argument("app", help="the app: path/to/file.py, module or module:attr")
    w.add_argument("-v", "--verbose", action="store_true", help="print every run state change")
