"""The HTTP server: one Starlette app on one port, composed from each concern's route table.

Each module under `outlast.server` that serves HTTP has a module-level `ROUTES` list of
module-level handlers; `create_app` builds what they share once (`Services`, in
`app.state.services`). The order below is the order Starlette matches them in (specific paths
first, the dashboard last).
"""

from __future__ import annotations

import contextlib
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from outlast.runtime.engine import Engine
from outlast.server import (
    api,
    checkpoint,
    connect,
    dashboard,
    endpoints,
    events,
    gateway_port,
    health,
    inngest_api,
    inngest_realtime,
    inngest_realtime_ws,
    metrics,
    pausing,
    realtime,
    signals,
    sync,
)
from outlast.server.guesses import GuessLimiter, TooManyGuessesError, too_many_guesses
from outlast.server.mode import ServerConfig
from outlast.server.nul import RefuseNulInUrls
from outlast.server.offloop import ReadsOffTheLoop
from outlast.server.services import Services

ROUTES: list[BaseRoute] = [
    *events.ROUTES,
    *health.ROUTES,
    *metrics.ROUTES,
    *inngest_api.ROUTES,
    *inngest_realtime.ROUTES,
    *inngest_realtime_ws.ROUTES,
    *signals.ROUTES,
    *checkpoint.ROUTES,
    *endpoints.ROUTES,
    *sync.ROUTES,
    *realtime.ROUTES,
    *pausing.ROUTES,
    *connect.ROUTES,
    *api.ROUTES,
    *dashboard.ROUTES,
]


def create_app(engine: Engine, config: ServerConfig) -> Starlette:
    """The server for `engine`; raises ValueError for a config it cannot serve safely."""
    events.check_event_keys(config)
    app = Starlette(
        routes=ROUTES if config.production else [*sync.DEV_ROUTES, *ROUTES],
        middleware=[Middleware(RefuseNulInUrls), Middleware(ReadsOffTheLoop)],
        exception_handlers={TooManyGuessesError: too_many_guesses},
    )
    app.state.services = Services.build(engine, config)
    app.state.guesses = GuessLimiter(config.guess_limits)  # one per server, shared by its guards
    return app


#: uvicorn's WebSocket implementation, for Connect workers: the sans-I/O one, not uvicorn's default
#: on `websockets.legacy`, which websockets 14 deprecated (it warns on import); a message costs
#: the server the same CPU on either (`bench.websocket_impls`)
WEBSOCKETS = "websockets-sansio"


def http_server(app: Starlette, *, host: str, port: int, connect_port: int | None = None) -> Any:
    """A uvicorn server for `app` that leaves signal handling to its caller (which stops workers
    and server together); with `connect_port`, it listens there too for the Connect gateway
    (`outlast.server.gateway_port`)."""
    import uvicorn

    class Server(uvicorn.Server):
        def capture_signals(self) -> Any:
            return contextlib.nullcontext()

        async def startup(self, sockets: Any = None) -> None:
            extra = None
            if connect_port is not None and connect_port != port:
                extra = await gateway_port.listen(self, host=host, port=connect_port)
            await super().startup(sockets)
            if extra is not None:
                self.servers.append(extra)  # closed with the others on shutdown
                app.state.services.connect.port = connect_port

    return Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=2,  # open event streams must not hold a stop
            ws=WEBSOCKETS,
        )
    )
