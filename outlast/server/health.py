"""`/health`: the process is up and serving. `/ready`: it can do its work: the database answers,
every migration of this version is applied, and a SQLite database's disk is not full (503 with
the reason otherwise)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from outlast.errors import StoreError
from outlast.server.services import services
from outlast.storage.disk import disk_problem

#: a database that has not answered in this long is not ready (a probe must not hang)
READY_TIMEOUT_S = 2.0


async def health(request: Request) -> JSONResponse:
    found = services(request)
    return JSONResponse({"status": "ok", "mode": found.config.mode, "apps": sorted(found.engine.sources)})


async def ready(request: Request) -> JSONResponse:
    engine = services(request).engine
    try:
        await asyncio.wait_for(engine.store.check(), READY_TIMEOUT_S)
    except StoreError as exc:
        return JSONResponse({"status": "unavailable", "error": str(exc)}, status_code=503)
    except TimeoutError:
        return JSONResponse(
            {"status": "unavailable", "error": f"the database did not answer within {READY_TIMEOUT_S:g} s"},
            status_code=503,
        )
    if problem := await asyncio.to_thread(disk_problem, engine.store, engine.settings.min_free_disk_mb):
        return JSONResponse({"status": "unavailable", "error": problem}, status_code=503)
    return JSONResponse({"status": "ready"})


ROUTES: list[BaseRoute] = [Route("/health", health, methods=["GET"]), Route("/ready", ready, methods=["GET"])]
