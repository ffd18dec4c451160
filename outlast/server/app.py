"""The HTTP server: one Starlette app on one port, composed from each concern's route list.

Each module under `outlast.server` that serves HTTP exposes `routes(engine, config)`; the order
below is the order Starlette matches them in (specific paths first, the dashboard's catch-alls last).
"""

from __future__ import annotations

import contextlib
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from outlast.runtime.engine import Engine
from outlast.server import api, dashboard, events, health, inngest_api, metrics, pausing, signals, sync
from outlast.server.config import ServerConfig

ROUTE_MODULES = (
    events,
    health,
    metrics,
    inngest_api,
    signals,
    sync,
    pausing,
    api,
    dashboard,
)  # the dashboard's catch-alls last


def create_app(engine: Engine, config: ServerConfig) -> Starlette:
    routes: list[BaseRoute] = []
    for module in ROUTE_MODULES:
        routes += module.routes(engine, config)
    return Starlette(routes=routes)


def http_server(app: Starlette, *, host: str, port: int) -> Any:
    """A uvicorn server for `app` that leaves signal handling to its caller (which stops workers
    and server together)."""
    import uvicorn

    class Server(uvicorn.Server):
        def capture_signals(self) -> Any:
            return contextlib.nullcontext()

    return Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off", timeout_graceful_shutdown=2)
    )  # open event streams must not hold a stop
