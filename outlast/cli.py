"""The `outlast` command: run workers, send events, inspect and cancel runs."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import importlib.util
import json
import logging
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from outlast.client import Outlast
from outlast.core.config import CronTrigger
from outlast.core.engine import Engine
from outlast.core.models import Run, RunFilter
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


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    return Settings.from_env(database_url=getattr(args, "database_url", None), **overrides)


def _stamp() -> str:
    return datetime.now().strftime("%H:%M:%S")


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
    server = _http_server(engine, *http) if http else None
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
        print(f"{_stamp()}  {o.run_id}  {o.function_id:<24} running", flush=True)
    elif isinstance(o, AttemptEnded):
        print(f"{_stamp()}  {o.run_id}  {o.function_id:<24} {o.outcome}", flush=True)


def _http_server(engine: Engine, host: str, port: int, event_keys: list[str]) -> Any:
    import uvicorn

    from outlast.server.events import event_api

    class Server(uvicorn.Server):
        def capture_signals(self) -> Any:  # ours stop worker and server together
            return contextlib.nullcontext()

    config = uvicorn.Config(event_api(engine, event_keys), host=host, port=port, log_level="warning",
                            lifespan="off")
    return Server(config)


def cmd_start(args: argparse.Namespace) -> int:
    """Production mode: event keys are required; workers plus the event API in one process."""
    keys = [k.strip() for k in (args.event_key or os.environ.get("OUTLAST_EVENT_KEY", "")).split(",") if k.strip()]
    if not keys:
        raise OutlastError("start: production mode needs an event key (--event-key or OUTLAST_EVENT_KEY; "
                           "several may be given, comma-separated)")
    app = load_app(args.app)
    asyncio.run(_serve(app, _settings(args), verbose=True, http=(args.host, args.port, keys)))
    return 0


def _print_cron_ticks(app: Outlast, now_ms: int) -> None:
    from outlast.core.cron import parse_schedule

    for fn in app.functions.values():
        for trigger in fn.config.triggers:
            if isinstance(trigger, CronTrigger):
                tick = parse_schedule(trigger.cron).next_after(now_ms)
                print(f"outlast: cron {fn.id} ({trigger.cron}) next at {_time(tick)}", flush=True)


def cmd_dev(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s  %(name)s  %(levelname)s  %(message)s",
                        datefmt="%H:%M:%S")
    app = load_app(args.app)
    asyncio.run(_serve(app, _settings(args, backoff_scale=DEV_BACKOFF_SCALE), verbose=True))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    asyncio.run(_serve(app, _settings(args), verbose=args.verbose))
    return 0


async def _with_store(args: argparse.Namespace, work: Any) -> Any:
    engine = Engine.from_settings(_settings(args))
    await engine.open()
    try:
        return await work(engine)
    finally:
        await engine.close()


def cmd_send(args: argparse.Namespace) -> int:
    try:
        data = json.loads(args.data)
    except json.JSONDecodeError as exc:
        raise OutlastError(f"--data: not valid JSON: {exc}") from None
    event = {"name": args.name, "data": data, "id": args.id}
    ids = asyncio.run(_with_store(args, lambda engine: engine.send(event)))
    print(ids[0])
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    flt = RunFilter(function_id=args.function, status=args.status, limit=args.limit)
    runs = asyncio.run(_with_store(args, lambda engine: engine.store.list_runs(flt)))
    print(f"{'RUN':<26}  {'FUNCTION':<24}  {'STATUS':<10}  {'CREATED':<19}  DURATION")
    for run in runs:
        print(f"{run.id:<26}  {run.function_id:<24}  {run.status:<10}  {_time(run.created_at):<19}  {_span(run)}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    run = asyncio.run(_with_store(args, lambda engine: engine.store.get_run(args.run_id)))
    if run is None:
        print(f"no run {args.run_id!r}", file=sys.stderr)
        return 1
    print(f"run {run.id}  function {run.function_id}  status {run.status}  started {_time(run.started_at)}"
          f"  ended {_time(run.ended_at)}")
    if run.output is not None:
        print(f"output: {json.dumps(run.output)}")
    if run.error:
        print(f"error: {run.error.get('name')}: {run.error.get('message')}")
    print(f"\n{'STEP':<24}  {'KIND':<14}  {'STATUS':<10}  {'ATTEMPTS':>8}  {'STARTED':<19}  {'DURATION':>9}  RESULT")
    for s in run.steps:
        result = json.dumps(s.output) if s.error is None else f"{s.error.get('name')}: {s.error.get('message')}"
        duration = f"{s.ended_at - s.started_at} ms" if s.started_at and s.ended_at else "-"
        print(f"{s.id[:24]:<24}  {s.kind:<14}  {s.status:<10}  {s.attempts:>8}  {_time(s.started_at):<19}"
              f"  {duration:>9}  {result[:60]}")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    if asyncio.run(_with_store(args, lambda engine: engine.cancel_run(args.run_id))):
        print(f"cancelled {args.run_id}")
        return 0
    print(f"run {args.run_id!r} is not active (or does not exist)", file=sys.stderr)
    return 1


def cmd_workers(args: argparse.Namespace) -> int:
    from outlast.core.worker import WORKER_TIMEOUT_MS

    async def workers(engine: Engine) -> Any:
        return await engine.store.list_workers(engine.clock.now_ms() - WORKER_TIMEOUT_MS)

    rows = asyncio.run(_with_store(args, workers))
    print(f"{'WORKER':<40}  {'APP':<16}  {'HOST':<20}  {'PID':>7}  {'STARTED':<19}  LAST HEARTBEAT")
    for w in rows:
        print(f"{w.id:<40}  {w.app_id:<16}  {w.host:<20}  {w.pid:>7}  {_time(w.started_at):<19}  "
              f"{_time(w.heartbeat_at)}")
    return 0


def _time(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _span(run: Run) -> str:
    return f"{run.ended_at - run.started_at} ms" if run.started_at and run.ended_at else "-"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="outlast", description="Durable, event-driven functions.")
    sub = p.add_subparsers(dest="command", required=True)

    def command(name: str, func: Any, help: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help)
        c.add_argument("--database-url", help="sqlite:///path.db, postgresql://… (default: OUTLAST_DATABASE_URL)")
        c.set_defaults(func=func)
        return c

    command("dev", cmd_dev, "run workers and timers locally, printing every run state change").add_argument("app")
    st = command("start", cmd_start, "production mode: workers and the event API; event keys required")
    st.add_argument("app")
    st.add_argument("--host", default="127.0.0.1")
    st.add_argument("--port", type=int, default=8288)
    st.add_argument("--event-key", default=None, help="accepted event keys, comma-separated")
    w = command("worker", cmd_worker, "run workers only, joining the same database")
    w.add_argument("app")
    w.add_argument("-v", "--verbose", action="store_true")
    s = command("send", cmd_send, "send an event")
    s.add_argument("name")
    s.add_argument("--data", default="{}", help="the event's data, a JSON object")
    s.add_argument("--id", default=None, help="idempotency id (an event id seen in 24 h starts no run)")
    r = command("runs", cmd_runs, "list runs, newest first")
    r.add_argument("--function")
    r.add_argument("--status")
    r.add_argument("--limit", type=int, default=50)
    command("run", cmd_run, "show a run and its step trace").add_argument("run_id")
    command("cancel", cmd_cancel, "cancel a run").add_argument("run_id")
    command("workers", cmd_workers, "list live worker processes")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except OutlastError as exc:
        print(f"outlast: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
