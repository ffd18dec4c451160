"""`/health`: the process is up and serving."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from outlast.core.engine import Engine
from outlast.server.config import ServerConfig


def routes(engine: Engine, config: ServerConfig) -> list[BaseRoute]:
    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "mode": config.mode, "apps": sorted(engine.sources)})

    return [Route("/health", health, methods=["GET"])]
