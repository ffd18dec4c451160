"""Requests the server makes for a function, durably: `step.fetch` (the `Gateway` opcode).

The app describes the request; the server makes it and records the response as the step's
output, in the shape the SDK reads back (`{"status_code", "headers", "body"}`, the body as
text), so the request is made again only if its result was never committed. Any HTTP answer,
whatever its status, is the step's result (as `fetch` resolves on a 500); a request that gets no
answer (refused, timed out, not an http(s) URL) is a step error, retried as a step.

The request's headers and query string may hold credentials: errors name only the method,
scheme, host and path, and nothing here logs a request.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from outlast.core.models import RETRYING, MemoEntry
from outlast.core.ops import StepAttemptFailed, StepOp, StepRun
from outlast.core.retry import ErrorInfo
from outlast.protocol.reply import GatewayRequest

DEFAULT_TIMEOUT_S = 300.0
#: the error of a request that got no answer; a step retrying with it is made again by the
#: server when discovery reports it (a targeted call cannot: the SDK does not run it)
GATEWAY_ERROR = "GatewayError"
#: a response body larger than this fails the step (the memo holds it)
MAX_BODY_BYTES = 4 * 1024 * 1024


def _where(request: GatewayRequest) -> str:
    """The request without what may be secret (query string, credentials in the URL)."""
    parts = urlsplit(request.url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ":?"
    return f"{request.method} {parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


def _failed(request: GatewayRequest, problem: str) -> StepAttemptFailed:
    return StepAttemptFailed(
        key=request.key,
        step_id=request.step_id,
        error=ErrorInfo(name=GATEWAY_ERROR, message=f"step.fetch {_where(request)}: {problem}"),
    )


async def fetch(client: httpx.AsyncClient, request: GatewayRequest, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> StepOp:
    """Make the request; the step op that records its response (or why there was none)."""
    if urlsplit(request.url).scheme not in ("http", "https"):
        return _failed(request, "not an http(s) URL")
    try:
        async with client.stream(
            request.method,
            request.url,
            headers=request.headers,
            content=request.body.encode() if request.body is not None else None,
            timeout=timeout_s,
        ) as response:
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    return _failed(request, f"the response is larger than {MAX_BODY_BYTES} bytes")
                chunks.append(chunk)
            body = b"".join(chunks).decode(response.encoding or "utf-8", "replace")
    except httpx.TimeoutException:
        return _failed(request, f"no answer within {timeout_s:g}s")
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return _failed(request, f"no answer ({type(exc).__name__})")
    output = {"status_code": response.status_code, "headers": dict(response.headers.items()), "body": body}
    return StepRun(key=request.key, step_id=request.step_id, output=output)


def is_gateway_retry(entry: MemoEntry) -> bool:
    """A `step.fetch` whose last request got no answer, waiting to be made again."""
    return entry.status == RETRYING and (entry.error or {}).get("name") == GATEWAY_ERROR


__all__ = ["GATEWAY_ERROR", "fetch", "is_gateway_retry"]
