"""Checkpoints SDKs post while they run a call: `POST /v1/checkpoint/{run_id}/async` (inngest@4's
async checkpointing; `outlast.runtime.checkpoints` says what is committed, and when a dispatch is
stale). Behind the signing key in production, as the rest of Inngest's `/v1` API."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from outlast.core import jsonutil
from outlast.protocol.checkpoint import CheckpointBodyError, parse_checkpoint
from outlast.runtime.checkpoints import CheckpointError, checkpoint
from outlast.server.body import BodyTooLargeError, read_body
from outlast.server.inngest_api import ApiError, endpoint
from outlast.server.services import services


async def checkpoint_async(request: Request) -> JSONResponse:
    engine = services(request).engine
    try:
        body = jsonutil.loads(await read_body(request))
        posted = parse_checkpoint(body, run_id=request.path_params["run_id"], now_ms=engine.clock.now_ms())
        written = await checkpoint(engine, posted)
    except BodyTooLargeError as exc:
        raise ApiError(413, f"checkpoint {exc}") from exc
    except CheckpointBodyError as exc:
        raise ApiError(400, f"checkpoint: {exc}") from exc
    except CheckpointError as exc:
        raise ApiError(exc.status, str(exc)) from exc
    except ValueError as exc:
        raise ApiError(400, f"checkpoint body is not valid JSON: {exc}") from exc
    return JSONResponse({"data": {"steps": written}, "status": 200})


ROUTES: list[BaseRoute] = [
    Route("/v1/checkpoint/{run_id}/async", endpoint(checkpoint_async), methods=["POST"]),
]
