"""Durable Endpoints' routes (inngest@4's `inngest.endpoint`; `outlast.runtime.endpoint_runs`
says what each commits):

- `POST /v1/checkpoint`: make the endpoint's run -> `{"data": {"fn_id", "app_id", "run_id",
  "token", "realtime_token"}}`; 409 if the run exists. `realtime_token` is a channel token for
  the run's stream (see "Streaming" below).
- `POST /v1/checkpoint/{run_id}/steps`: commit the steps the endpoint's request ran.
- `GET /v1/http/runs/{run_id}/output?token=` (and `/v1/checkpoint/{run_id}/output`): where the
  SDK redirects the caller of an endpoint that went on in the background. It waits for the run
  to end (up to `OUTPUT_WAIT_S`, as Inngest does) and answers with the endpoint's response.

Streaming (`stream.push`/`stream.pipe`, inngest@4): a caller that accepts `text/event-stream`
gets server-sent events straight from the endpoint while the request runs it, and an
`inngest.redirect_info` event with `/v1/realtime/sse?token=<realtime_token>`. Once the run goes
on in the background, each attempt the worker makes through the endpoint POSTs its SSE bytes to
`/v1/realtime/publish/tee?channel=<run>`, stored on the run's channel (topic `stream`) as any
realtime message; the redirect URL relays them, from the stream's start (`inngest_realtime`), up
to the final `inngest.response`, and ends there. This is Outlast's one realtime, not a second
pub/sub.

The first two are behind the signing key in production, as the rest of Inngest's `/v1` API;
the output URL is authorised by its `token` (made for the run with the server's signing key).
Bad input is a 400 naming the field, and nothing is stored.
"""

from __future__ import annotations

import asyncio
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from outlast.core import jsonutil
from outlast.core.models import FINAL_STATUSES, Run
from outlast.errors import InvalidEventError, PayloadTooLargeError
from outlast.protocol.endpoint import EndpointBodyError, http_result, parse_new_run, parse_run_id, parse_steps
from outlast.runtime import endpoint_runs
from outlast.runtime.checkpoints import CheckpointError
from outlast.server.body import BodyTooLargeError, read_body
from outlast.server.inngest_api import ApiError, endpoint, error
from outlast.server.inngest_realtime import TEE_TOPIC
from outlast.server.services import services

#: how long the output URL waits for the run to end (Inngest's CheckpointOutputWaitMax)
OUTPUT_WAIT_S = 300.0
POLL_S = 0.2
DEV_SECRET = "outlast-dev"


def _secret(request: Request) -> str:
    keys = services(request).bearer.keys
    return keys[0] if keys else DEV_SECRET


async def _json(request: Request) -> object:
    try:
        return jsonutil.loads(await read_body(request))
    except BodyTooLargeError as exc:
        raise ApiError(413, f"checkpoint {exc}") from exc
    except ValueError as exc:
        raise ApiError(400, f"checkpoint body is not valid JSON: {exc}") from exc


async def new_run(request: Request) -> JSONResponse:
    engine = services(request).engine
    body = await _json(request)
    try:
        new = parse_new_run(body, now_ms=engine.clock.now_ms())
        await endpoint_runs.start(engine, new, secret=_secret(request))
    except (EndpointBodyError, InvalidEventError) as exc:
        raise ApiError(400, f"checkpoint: {exc}") from exc
    except PayloadTooLargeError as exc:
        raise ApiError(413, f"checkpoint: the request's event is too large: {exc}") from exc
    except CheckpointError as exc:
        raise ApiError(exc.status, str(exc)) from exc
    data = {
        "fn_id": new.request.function_id,
        "app_id": new.request.app_id,
        "run_id": new.run_id,
        "token": endpoint_runs.run_token(new.run_id, _secret(request)),
        "realtime_token": _stream_token(request, new.run_id, now_ms=engine.clock.now_ms()),
    }
    return JSONResponse({"data": data})


def _stream_token(request: Request, run_id: str, *, now_ms: int) -> str:
    """The channel token the SDK hands a streaming caller (its `inngest.redirect_info` URL:
    `/v1/realtime/sse?token=`): the run's stream, as Inngest's (channel: the run id, topic
    `stream`, where the endpoint's background attempts tee their SSE bytes)."""
    return services(request).tokens.mint(channel=run_id, topics=[TEE_TOPIC], now_ms=now_ms)


async def steps(request: Request) -> JSONResponse:
    engine = services(request).engine
    body = await _json(request)
    try:
        run_id = parse_run_id(request.path_params["run_id"], "the path's run id")
        ops = parse_steps(body, run_id=run_id, now_ms=engine.clock.now_ms())
        await endpoint_runs.checkpoint_steps(engine, run_id, ops, secret=_secret(request))
    except EndpointBodyError as exc:
        raise ApiError(400, f"checkpoint: {exc}") from exc
    except CheckpointError as exc:
        raise ApiError(exc.status, str(exc)) from exc
    return JSONResponse({"data": {"run_id": run_id}})


async def output(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    if not endpoint_runs.token_matches(run_id, request.query_params.get("token"), _secret(request)):
        return error(401, "Unable to find run with auth token")
    engine = services(request).engine
    deadline = time.monotonic() + OUTPUT_WAIT_S
    run = await engine.reads.get_run(run_id)
    while run is not None and run.status not in FINAL_STATUSES and time.monotonic() < deadline:
        await asyncio.sleep(POLL_S)
        run = await engine.reads.get_run(run_id)
    if run is None:
        return error(404, f"no run {run_id!r}")
    if run.status not in FINAL_STATUSES:
        return JSONResponse({"status": "running", "message": f"run did not end within {OUTPUT_WAIT_S:g} seconds"})
    return _ended(run)


def _ended(run: Run) -> Response:
    if run.status != "completed":
        return JSONResponse({"status": run.status, "error": run.error}, status_code=500)
    result = http_result(run.output)
    if result is None:
        return JSONResponse(run.output)
    status, headers, body = result
    return Response(body, status_code=status, headers=headers)


ROUTES: list[BaseRoute] = [
    Route("/v1/checkpoint", endpoint(new_run), methods=["POST"]),
    Route("/v1/checkpoint/{run_id}/steps", endpoint(steps), methods=["POST"]),
    Route("/v1/http/runs/{run_id}/output", output, methods=["GET"]),
    Route("/v1/checkpoint/{run_id}/output", output, methods=["GET"]),
]
