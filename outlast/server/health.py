"""`/health`: the process is up and serving. `/ready`: it can do its work: the database answers and
every migration of this version is applied (503 with the reason otherwise)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from outlast.errors import StoreError
from outlast.runtime.engine import Engine
from outlast.server.mode import ServerConfig

#: a database that has not answered in this long is not ready (a probe must not hang)
READY_TIMEOUT_S = 2.0


def routes(engine: Engine, config: ServerConfig) -> list[BaseRoute]:
    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "mode": config.mode, "apps": sorted(engine.sources)})

    async def ready(_request: Request) -> JSONResponse:
        try:
            await asyncio.wait_for(engine.store.check(), READY_TIMEOUT_S)
        except StoreError as exc:
            return JSONResponse({"status": "unavailable", "error": str(exc)}, status_code=503)
        except TimeoutError:
            return JSONResponse(
                {"status": "unavailable", "error": f"the database did not answer within {READY_TIMEOUT_S:g} s"},
                status_code=503,
            )
        return JSONResponse({"status": "ready"})

    return [Route("/health", health, methods=["GET"]), Route("/ready", ready, methods=["GET"])]
