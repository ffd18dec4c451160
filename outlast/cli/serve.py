"""Commands that run workers: `dev`, `start`, `worker`."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import logging
import os
import signal
import sys
from pathlib import Path

from outlast.cli.common import Subparsers, command, local_time, settings_from, stamp
from outlast.client import Outlast
from outlast.core.config import CronTrigger
from outlast.core.engine import Engine
from outlast.core.observe import AttemptEnded, AttemptStarted, Observation
from outlast.core.worker import Worker
from outlast.errors import OutlastError
from outlast.settings import Settings

DEV_BACKOFF_SCALE = 0.01  # dev mode: a 15 s retry waits 150 ms


def load_app(spec: str) -> Outlast:
    """`path/to/file.py`, `module` or `module:attr` -> the Outlast app it defines."""
    module_name, _, attr = spec.partition(":")
    if module_name.endswith(".py") or os.sep in module_name:
        path = Path(module_name).resolve()
        if not path.exists():
            raise OutlastError(f"APP: no such file {module_name!r}")
        sys.path.insert(0, str(path.parent))
        loaded = importlib.util.spec_from_file_location(path.stem, path)
        assert loaded is not None and loaded.loader is not None
        module = importlib.util.module_from_spec(loaded)
        sys.modules[path.stem] = module
        loaded.loader.exec_module(module)
    else:
        sys.path.insert(0, os.getcwd())
        module = importlib.import_module(module_name)
    if attr:
        app = getattr(module, attr, None)
        if not isinstance(app, Outlast):
            raise OutlastError(f"APP: {spec!r} is not an outlast.Outlast app")
        return app
    apps = [v for v in vars(module).values() if isinstance(v, Outlast)]
    if len(apps) != 1:
        raise OutlastError(f"APP: {spec!r} defines {len(apps)} Outlast apps; name one as module:attr")
    return apps[0]


async def _serve(app: Outlast, settings: Settings, *, verbose: bool, http: tuple[str, int, list[str]] | None = None
                 ) -> None:
    app.settings = settings
    engine = Engine.from_settings(settings)
    await engine.add_source(app)
    await engine.open()
    if verbose:
        engine.bus.subscribe(_print_observation)
        names = ", ".join(sorted(app.functions)) or "none"
        print(f"outlast: app {app.id!r} on {settings.database_url} — functions: {names}", flush=True)
        _print_cron_ticks(app, engine.clock.now_ms())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = None
    if http is not None:
        from outlast.server.app import create_app, http_server
        from outlast.server.config import ServerConfig

        app_config = ServerConfig(mode="production", event_keys=tuple(http[2]))
        server = http_server(create_app(engine, app_config), host=http[0], port=http[1])
    try:
        tasks = [asyncio.create_task(Worker(engine).run(stop))]
        if server is not None:
            tasks.append(asyncio.create_task(server.serve()))
            if verbose:
                print(f"outlast: event API on http://{http[0]}:{http[1]}/e/<event key>", flush=True)  # type: ignore[index]
        await stop.wait()
        if server is not None:
            server.should_exit = True
        await asyncio.gather(*tasks)
    finally:
        await engine.close()
        if verbose:
            print("outlast: stopped", flush=True)


def _print_observation(o: Observation) -> None:
    if isinstance(o, AttemptStarted):
        print(f"{stamp()}  {o.run_id}  {o.function_id:<24} running", flush=True)
    elif isinstance(o, AttemptEnded):
        print(f"{stamp()}  {o.run_id}  {o.function_id:<24} {o.outcome}", flush=True)


def cmd_start(args: argparse.Namespace) -> int:
    """Production mode: event keys are required; workers plus the event API in one process."""
    keys = [k.strip() for k in (args.event_key or os.environ.get("OUTLAST_EVENT_KEY", "")).split(",") if k.strip()]
    if not keys:
        raise OutlastError("start: production mode needs an event key (--event-key or OUTLAST_EVENT_KEY; "
                           "several may be given, comma-separated)")
    app = load_app(args.app)
    asyncio.run(_serve(app, settings_from(args), verbose=True, http=(args.host, args.port, keys)))
    return 0


def _print_cron_ticks(app: Outlast, now_ms: int) -> None:
    from outlast.core.cron import parse_schedule

    for fn in app.functions.values():
        for trigger in fn.config.triggers:
            if isinstance(trigger, CronTrigger):
                tick = parse_schedule(trigger.cron).next_after(now_ms)
                print(f"outlast: cron {fn.id} ({trigger.cron}) next at {local_time(tick)}", flush=True)


def cmd_dev(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s  %(name)s  %(levelname)s  %(message)s",
                        datefmt="%H:%M:%S")
    app = load_app(args.app)
    asyncio.run(_serve(app, settings_from(args, backoff_scale=DEV_BACKOFF_SCALE), verbose=True))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    asyncio.run(_serve(app, settings_from(args), verbose=args.verbose))
    return 0



def register(sub: Subparsers) -> None:
    command(sub, "dev", cmd_dev, "run workers and timers locally, printing every run state change").add_argument(
        "app", help="the app: path/to/file.py, module or module:attr")
    st = command(sub, "start", cmd_start, "production mode: workers and the event API; event keys required")
    st.add_argument("app", help="the app: path/to/file.py, module or module:attr")
    st.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    st.add_argument("--port", type=int, default=8288, help="port to listen on (default 8288)")
    st.add_argument("--event-key", default=None, help="accepted event keys, comma-separated")
    w = command(sub, "worker", cmd_worker, "run workers only, joining the same database")
    w.add_argument("app", help="the app: path/to/file.py, module or module:attr")
    w.add_argument("-v", "--verbose", action="store_true", help="print every run state change")
