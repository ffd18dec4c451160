"""Commands that run the engine: `dev`, `start` (workers and the HTTP server) and `worker`."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from dataclasses import dataclass
from typing import Any

from outlast.cli import reload, served
from outlast.cli.common import Subparsers, command, settings_from, whole_number, zoned_time
from outlast.cli.devlog import DevLog
from outlast.cli.loader import load_app
from outlast.cli.logs import configure as configure_logs
from outlast.cli.logs import log_observation
from outlast.cli.observers import MetricsEndpoint, start_observers
from outlast.client import Outlast
from outlast.core.collector import tuned_for_service
from outlast.core.config import CronTrigger
from outlast.errors import OutlastError
from outlast.runtime.drivers.connect import ConnectDriver
from outlast.runtime.drivers.http import HttpDriver
from outlast.runtime.engine import Engine
from outlast.runtime.worker import Worker
from outlast.server.gateway_port import DEFAULT_CONNECT_PORT, parse_connect_port
from outlast.settings import Settings

DEV_BACKOFF_SCALE = 0.01  # dev mode: a 15 s retry waits 150 ms
#: dev mode takes events as large as Inngest's dev server does (its AbsoluteMaxEventSize);
#: production keeps the `max_event_bytes` setting (512 KiB, Inngest's DefaultMaxEventSize)
DEV_MAX_EVENT_BYTES = 3 * 1024 * 1024
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
    #: the dashboard login (production mode)
    dashboard_password: str = ""
    #: the Connect gateway's own port (Inngest's 8289), None: the main port only
    connect_port: int | None = None


async def run(
    app: Outlast | None,
    settings: Settings,
    *,
    verbose: bool,
    http: Http | None,
    devlog: bool = False,
    metrics: MetricsEndpoint | None = None,
    served_apps_keys: tuple[str, ...] | None = None,
) -> None:
    """Run workers (and the server, if `http`) until SIGINT or SIGTERM, then stop cleanly.

    `verbose`: print the banner (app, database, cron times); `devlog`: print the dev log, one
    line per run state change; otherwise run events go to the `outlast.runs` logger. `metrics`:
    serve Prometheus metrics on their own port (bare workers; the server has `/metrics`).
    `served_apps_keys`: a bare worker also runs served apps' functions, signing with these keys.
    """
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
    dev = DevLog(engine) if devlog else None
    engine.bus.subscribe(dev.observe if dev is not None else log_observation)
    if verbose:
        _print_banner(app, settings, engine.clock.now_ms())
    if http is not None or served_apps_keys is not None:
        keys = http.signing_keys if http is not None else served_apps_keys or ()
        served.install_http_driver(engine, settings, keys)
    try:
        await _serve_until_stopped(engine, http, dev)
    finally:
        driver = engine.drivers.get("http")
        if isinstance(driver, HttpDriver):
            await driver.aclose()
        await stop_observers()
        await engine.close()
        if verbose:
            print("outlast: stopped", flush=True)


async def _serve_until_stopped(engine: Engine, http: Http | None, dev: DevLog | None) -> None:
    """The worker (and the dev log's follower, the server, the SDK apps' sync) until SIGINT or
    SIGTERM; then each is told to stop and awaited."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = _server(engine, http) if http is not None else None
    with tuned_for_service():  # start-up is over: what it loaded lives as long as the process
        tasks = [asyncio.create_task(Worker(engine).run(stop))]
        if dev is not None:
            tasks.append(asyncio.create_task(dev.follow_cancellations(stop)))
        if server is not None:
            tasks.append(asyncio.create_task(server.serve()))
        syncing = None
        if server is not None and http is not None and http.sdk_urls:
            production = http.mode == "production"
            syncing = asyncio.create_task(
                served.sync_sdk_urls(engine, list(http.sdk_urls), server, production=production)
            )
        await stop.wait()
        connect = engine.drivers.get("connect")
        if isinstance(connect, ConnectDriver):
            await connect.drain()
        if server is not None:
            server.should_exit = True
        if syncing is not None:
            syncing.cancel()
        await asyncio.gather(*tasks)


def _server(engine: Engine, http: Http) -> Any:
    from outlast.server.app import create_app, http_server
    from outlast.server.mode import ServerConfig

    config = ServerConfig(
        mode="production" if http.mode == "production" else "dev",
        event_keys=http.event_keys,
        signing_keys=http.signing_keys,
        dashboard_password=http.dashboard_password,
    )
    print(f"outlast: serving on http://{http.host}:{http.port} (dashboard at /)", flush=True)
    if http.connect_port is not None and http.connect_port != http.port:
        print(f"outlast: Connect gateway also on ws://{http.host}:{http.connect_port}/v0/connect", flush=True)
    return http_server(create_app(engine, config), host=http.host, port=http.port, connect_port=http.connect_port)


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
                schedule = parse_schedule(trigger.cron)
                tick = schedule.next_after(now_ms)
                print(f"outlast: cron {fn.id} ({trigger.cron}) next at {zoned_time(tick, schedule.zone)}", flush=True)


def cmd_dev(args: argparse.Namespace) -> int:
    if args.reload:
        return reload_on_change(args)
    reload.die_with_parent()
    configure_logs(level=args.log_level or "info", fmt=args.log_format)
    settings = dev_settings(args)
    app = load_app(args.app) if args.app else None
    http = Http(
        host=args.host,
        port=args.port,
        mode="dev",
        sdk_urls=tuple(args.sdk_url or ()),
        connect_port=connect_port(args),
    )
    asyncio.run(run(app, settings, verbose=True, http=http, devlog=args.log_format != "json"))
    return 0


def dev_settings(args: argparse.Namespace) -> Settings:
    """`outlast dev`'s settings: retries wait 1 % of their backoff and events may be as large as on
    Inngest's dev server, unless `OUTLAST_BACKOFF_SCALE` or `OUTLAST_MAX_EVENT_BYTES` say otherwise."""
    return settings_from(args, defaults={"backoff_scale": DEV_BACKOFF_SCALE, "max_event_bytes": DEV_MAX_EVENT_BYTES})


def reload_on_change(args: argparse.Namespace) -> int:
    """`dev --reload`: run `dev` in a child process, restarted (stopped cleanly first) whenever a
    Python file under the app's directory changes."""
    where = (
        os.path.dirname(os.path.abspath(args.app.partition(":")[0]))
        if args.app and (args.app.endswith(".py") or os.sep in args.app)
        else os.getcwd()
    )
    return reload.supervise(where, [a for a in args.argv if a != "--reload"])


def cmd_start(args: argparse.Namespace) -> int:
    """Production mode: event and signing keys are required; workers plus the HTTP server in one process."""
    keys = served.event_keys(args)
    if not keys:
        raise OutlastError(
            "start: production mode needs an event key (--event-key, OUTLAST_EVENT_KEY or "
            "INNGEST_EVENT_KEY; several may be given, comma-separated)"
        )
    signing = served.signing_keys(args)
    if not signing:
        raise OutlastError(
            "start: production mode needs a signing key (--signing-key, OUTLAST_SIGNING_KEY or "
            "INNGEST_SIGNING_KEY), shaped 'signkey-<env>-<hex>'"
        )
    password = os.environ.get("OUTLAST_DASHBOARD_PASSWORD", "")
    if not password:
        raise OutlastError(
            "start: production mode needs a dashboard password (OUTLAST_DASHBOARD_PASSWORD): "
            "the dashboard and /api/ require a login"
        )
    served.refuse_weak_secrets(event_keys=keys, signing_keys=signing, password=password)
    configure_logs(level=args.log_level or "warning", fmt=args.log_format)
    settings = settings_from(args)
    app = load_app(args.app) if args.app else None
    http = Http(
        host=args.host,
        port=args.port,
        mode="production",
        event_keys=keys,
        signing_keys=signing,
        sdk_urls=tuple(args.sdk_url or ()),
        dashboard_password=password,
        connect_port=connect_port(args),
    )
    asyncio.run(run(app, settings, verbose=True, http=http))
    return 0


def connect_port(args: argparse.Namespace) -> int | None:
    """The Connect gateway's port: `--connect-port`, else `OUTLAST_CONNECT_PORT`, else 8289; None: off."""
    if args.connect_port is not None:
        return int(args.connect_port) or None
    text = os.environ.get("OUTLAST_CONNECT_PORT", "").strip()
    try:
        return (parse_connect_port(text) if text else DEFAULT_CONNECT_PORT) or None
    except ValueError as exc:
        raise OutlastError(f"OUTLAST_CONNECT_PORT: {exc}") from None


def _port_or_off(text: str) -> int:
    try:
        return parse_connect_port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_worker(args: argparse.Namespace) -> int:
    """Workers only. With APP they run its functions; they also run served apps' functions when no APP
    is given or a signing key is (a worker without the key must not call apps that check it)."""
    configure_logs(level=args.log_level or "warning", fmt=args.log_format)
    settings = settings_from(args)
    app = load_app(args.app) if args.app else None
    signing = served.signing_keys(args)
    served_keys = signing if (app is None or signing) else None
    metrics = None if args.metrics_port is None else MetricsEndpoint(host=args.metrics_host, port=args.metrics_port)
    asyncio.run(
        run(
            app,
            settings,
            verbose=args.verbose,
            http=None,
            devlog=args.verbose,
            metrics=metrics,
            served_apps_keys=served_keys,
        )
    )
    return 0


def _http_options(c: argparse.ArgumentParser, *, app_required: bool) -> None:
    c.add_argument(
        "app",
        nargs=None if app_required else "?",
        help="the app: path/to/file.py, module or module:attr"
        + ("" if app_required else " (none: serve apps on the official Inngest SDKs only)"),
    )
    c.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    c.add_argument(
        "--port", type=whole_number(0, 65535), default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})"
    )
    c.add_argument(
        "--connect-port",
        type=_port_or_off,
        default=None,
        metavar="PORT",
        help=f"also listen on PORT for Connect workers' gateway, as Inngest does (default {DEFAULT_CONNECT_PORT} "
        "or OUTLAST_CONNECT_PORT; 'off' or 0: the main port only; a busy port falls back to it)",
    )
    c.add_argument(
        "--sdk-url",
        action="append",
        metavar="URL",
        help="an app on an official Inngest SDK to sync at start (its serve URL); repeatable",
    )


def register(sub: Subparsers) -> None:
    dev = command(sub, "dev", cmd_dev, "run everything locally: workers, timers and the HTTP server (no keys)")
    _http_options(dev, app_required=False)
    dev.add_argument("--reload", action="store_true", help="restart when a Python file in the app's directory changes")
    st = command(sub, "start", cmd_start, "production mode: workers and the HTTP server; keys required")
    _http_options(st, app_required=False)
    st.add_argument("--event-key", default=None, help="accepted event keys, comma-separated")
    st.add_argument(
        "--signing-key",
        default=None,
        help="signing key shared with served apps (default: OUTLAST_SIGNING_KEY or INNGEST_SIGNING_KEY)",
    )
    w = command(sub, "worker", cmd_worker, "run workers only, joining the same database")
    w.add_argument(
        "app",
        nargs="?",
        help="the app: path/to/file.py, module or module:attr (none: run only "
        "the functions of apps on the official Inngest SDKs)",
    )
    w.add_argument(
        "--signing-key",
        default=None,
        help="signing key for calls to served apps (default: OUTLAST_SIGNING_KEY or INNGEST_SIGNING_KEY)",
    )
    w.add_argument("-v", "--verbose", action="store_true", help="print every run state change")
    w.add_argument(
        "--metrics-port",
        type=whole_number(0, 65535),
        default=None,
        metavar="P",
        help="serve Prometheus metrics on http://HOST:P/metrics (needs outlast[metrics])",
    )
    w.add_argument("--metrics-host", default="127.0.0.1", help="interface for --metrics-port (default 127.0.0.1)")
