"""Inngest's event API: `POST /e/{event_key}` with one event or a list, answered with their ids.

Production mode requires event keys: a request with a missing or unknown key is refused (401)
and stores nothing; development mode accepts any key, as Inngest's dev server does. A bad event
is refused (400) with the error naming it, and none of the request's events is stored. The
events go through the engine's one send path (`Engine.send`), as every other ingest does.
"""

from __future__ import annotations

import hmac
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from outlast.core import jsonutil
from outlast.core.trace_context import trace_headers
from outlast.errors import InvalidEventError, PayloadTooLargeError, StoreDataError, StoreError
from outlast.server.body import BodyTooLargeError, read_body
from outlast.server.mode import ServerConfig
from outlast.server.services import services

MAX_EVENTS_PER_REQUEST = 5000


def check_event_keys(config: ServerConfig) -> None:
    """Production mode refuses to serve the event API without a key (it would accept anything)."""
    if config.production and (not config.event_keys or not all(config.event_keys)):
        raise ValueError("the event API needs at least one non-empty event key in production mode")


def _known(config: ServerConfig, key: str) -> bool:
    if not config.production:
        return True
    return any(hmac.compare_digest(key.encode(), k.encode()) for k in config.event_keys)


async def receive(request: Request) -> JSONResponse:
    key = request.path_params.get("key", "")
    if not key:
        return _error(401, "Event key is required")
    if not _known(services(request).config, key):
        return _error(401, "Event key not found")
    try:
        payload: Any = jsonutil.loads(await read_body(request))
    except BodyTooLargeError as exc:
        return _error(413, str(exc))
    except ValueError as exc:
        return _error(400, f"request body is not valid JSON: {exc}")
    events = payload if isinstance(payload, list) else [payload]
    if len(events) > MAX_EVENTS_PER_REQUEST:
        return _error(400, f"{len(events)} events in one request, the limit is {MAX_EVENTS_PER_REQUEST}")
    try:
        # a W3C traceparent header stays with the events: the runs they start continue that trace
        ids = await services(request).engine.send(events, trace=trace_headers(request.headers))
    except (InvalidEventError, PayloadTooLargeError) as exc:
        return _error(400, str(exc))
    except StoreDataError as exc:  # a value the database cannot hold: retrying would fail the same way
        return _error(400, f"the database refused a value of these events: {exc}")
    except StoreError as exc:
        return _error(503, f"store unavailable, retry: {exc}")
    return JSONResponse({"ids": ids, "status": 200})


async def no_key(_request: Request) -> Response:
    return _error(401, "Event key is required")


ROUTES: list[BaseRoute] = [
    Route("/e/{key}", receive, methods=["POST"]),
    Route("/e/", no_key, methods=["POST"]),
]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"ids": [], "status": status, "error": message}, status_code=status)
