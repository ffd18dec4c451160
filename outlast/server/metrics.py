"""`/metrics`: Prometheus metrics of this process's engine (the `metrics` extra; 501 without it)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from outlast.server.services import services

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


async def scrape(request: Request) -> Response:
    metrics = services(request).metrics
    if metrics is None:
        return PlainTextResponse("metrics need prometheus_client: pip install 'outlast[metrics]'\n", status_code=501)
    await metrics.sample()
    return Response(metrics.exposition(), media_type=CONTENT_TYPE)


ROUTES: list[BaseRoute] = [Route("/metrics", scrape, methods=["GET"])]
