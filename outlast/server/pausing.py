"""Pausing from HTTP, in the read API: `POST /api/functions/{app_id}/{function_id}/pause` and
`.../resume` answer `{"app_id", "function_id", "paused", "changed"}`; a function nobody serves is
a 404. Guarded like the rest of `/api/` (login in production; a JSON body or a CSRF token); the
dashboard's button posts a form and is sent back to the function's page."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from outlast.errors import OutlastError, StoreError
from outlast.server.guards import api
from outlast.server.services import services


async def pause(request: Request) -> Response:
    return await set_paused(request, paused=True)


async def resume(request: Request) -> Response:
    return await set_paused(request, paused=False)


async def set_paused(request: Request, *, paused: bool) -> Response:
    app_id, function_id = request.path_params["app_id"], request.path_params["function_id"]
    try:
        changed = await services(request).engine.set_paused(app_id, function_id, paused=paused)
    except StoreError as exc:
        return JSONResponse({"error": f"store unavailable, retry: {exc}"}, status_code=503)
    except OutlastError as exc:
        return JSONResponse({"error": str(exc)}, status_code=404)
    if not request.headers.get("content-type", "").startswith("application/json"):  # the dashboard's button
        return RedirectResponse(f"/functions/{quote(app_id, safe='')}/{quote(function_id, safe='')}", status_code=303)
    return JSONResponse({"app_id": app_id, "function_id": function_id, "paused": paused, "changed": changed})


ROUTES: list[BaseRoute] = [
    Route("/api/functions/{app_id}/{function_id}/pause", api(pause), methods=["POST"]),
    Route("/api/functions/{app_id}/{function_id}/resume", api(resume), methods=["POST"]),
]
