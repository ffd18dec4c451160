"""`/metrics`: Prometheus metrics of this process's engine (the `metrics` extra; 501 without it)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from outlast.observability.metrics import install_metrics
from outlast.runtime.engine import Engine
from outlast.server.mode import ServerConfig

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def routes(engine: Engine, config: ServerConfig) -> list[BaseRoute]:
    metrics = install_metrics(engine)

    async def scrape(_request: Request) -> Response:
        if metrics is None:
            return PlainTextResponse(
                "metrics need prometheus_client: pip install 'outlast[metrics]'\n", status_code=501
            )
        await metrics.sample()
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    return [Route("/metrics", scrape, methods=["GET"])]
