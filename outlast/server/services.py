"""What every handler of one server shares, built once by `create_app` into `app.state.services`:
the engine and config, login, the signing-key guard of Inngest's APIs, live updates, bulk jobs and
metrics. Handlers are module-level functions that read it with `services(request)`."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from outlast.observability.metrics import Metrics, install_metrics
from outlast.runtime.engine import Engine
from outlast.server.auth import Auth
from outlast.server.bearer import BearerGuard
from outlast.server.bulk import Bulk
from outlast.server.gateway import Gateway
from outlast.server.live import Live
from outlast.server.mode import ServerConfig
from outlast.server.realtime_tokens import ChannelTokens


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    engine: Engine
    config: ServerConfig
    auth: Auth
    bearer: BearerGuard
    live: Live
    bulk: Bulk
    #: realtime channel tokens (one signer per server, so every route accepts the others' tokens)
    tokens: ChannelTokens
    #: None when prometheus_client is not installed (`/metrics` answers 501)
    metrics: Metrics | None
    #: Inngest Connect: the driver of connected workers and their session tokens
    connect: Gateway

    @classmethod
    def build(cls, engine: Engine, config: ServerConfig) -> Services:
        metrics = install_metrics(engine)
        return cls(
            engine=engine,
            config=config,
            auth=Auth(config),
            bearer=BearerGuard(config),
            live=Live(engine),
            bulk=Bulk(engine),
            tokens=ChannelTokens(config),
            metrics=metrics,
            connect=Gateway.build(engine, config, metrics),
        )


def services(request: Request) -> Services:
    """The services of the app serving `request`."""
    found: Services = request.app.state.services
    return found
