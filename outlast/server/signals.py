"""`POST /v1/signals`: Inngest's route and shapes for resuming the run that waits on a signal.

The body is `{"signal": name, "data": {...}}`, plus Outlast's `hold` (a duration such as "10m"
or milliseconds): a signal nobody waits for is then kept that long for the first wait on its
name. The answer is `{"data": {"run_id": ...}}` when a run was resumed; 404 "No signal found"
when none waits (Inngest's answer, which its SDKs read as "no run"), or 202 with
`{"data": {"run_id": null, "held": true}}` when the signal was held. Bad input is a 400 naming
the field, and changes nothing. Production mode requires the bearer form of a signing key.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from outlast.core import jsonutil
from outlast.errors import InvalidSignalError, StoreError
from outlast.server.body import BodyTooLargeError, read_body
from outlast.server.inngest_api import error
from outlast.server.inngest_shapes import iso
from outlast.server.services import services

log = logging.getLogger("outlast.server")


async def receive_signal(request: Request) -> JSONResponse:
    found = services(request)
    engine = found.engine
    if (refusal := found.bearer.refusal(request, what="Inngest's REST API (/v1)")) is not None:
        return error(401, refusal)
    try:
        body = await read_body(request, engine.settings.max_event_bytes + 4096)
    except BodyTooLargeError as exc:
        return error(413, str(exc))
    try:
        payload = jsonutil.loads(body)
    except ValueError as exc:
        return error(400, f"Invalid signal data: the body is not valid JSON ({exc})")
    if not isinstance(payload, dict):
        return error(400, "Invalid signal data: the body must be a JSON object with signal and data")
    try:
        run_id = await engine.send_signal(payload.get("signal"), payload.get("data"), hold=payload.get("hold"))
    except InvalidSignalError as exc:
        return error(400, f"Invalid signal data: {exc}")
    except StoreError as exc:
        return error(503, f"store unavailable, retry: {exc}")
    except Exception:
        log.exception("POST /v1/signals failed")
        return error(500, "internal error")
    metadata = {"fetched_at": iso(engine.clock.now_ms())}
    if run_id is not None:
        return JSONResponse({"data": {"run_id": run_id}, "metadata": metadata})
    if payload.get("hold") is not None:
        return JSONResponse({"data": {"run_id": None, "held": True}, "metadata": metadata}, status_code=202)
    return error(404, "No signal found")


ROUTES: list[BaseRoute] = [Route("/v1/signals", receive_signal, methods=["POST"])]
