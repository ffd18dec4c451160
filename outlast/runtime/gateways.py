"""Requests the server makes for a function, durably: `step.fetch` (the `Gateway` opcode) and
`step.ai.infer` (`AIGateway`).

The app describes the request; the server makes it and records the response as the step's
output, so the request is made again only if its result was never committed.

- `step.fetch`: the output is the response in the shape the SDK reads back (`{"status_code",
  "headers", "body"}`, the body as text). Any HTTP answer, whatever its status, is the step's
  result (as `fetch` resolves on a 500).
- `step.ai.infer`: a JSON POST to the provider, its key put where the request's format says
  (`ai_auth`), as Inngest's AI gateway does. The output is the provider's JSON answer itself.
  A non-2xx answer is a step error (`AIGatewayError`, the provider's body as its stack), so
  the inference is retried as a step and, once its retries are spent, fails in the function.

A request that gets no answer (refused, timed out, not an http(s) URL) is a step error, retried
as a step. The request's headers, key and query string may hold credentials: errors name only
the method, scheme, host and path; nothing here logs or stores a request.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import orjson

from outlast.core.models import RETRYING, MemoEntry
from outlast.core.ops import StepAttemptFailed, StepOp, StepRun
from outlast.core.retry import ErrorInfo
from outlast.protocol.reply import GatewayRequest

DEFAULT_TIMEOUT_S = 300.0
#: the error of a request that got no answer; a step retrying with it is made again by the
#: server when discovery reports it (a targeted call cannot: the SDK does not run it)
GATEWAY_ERROR = "GatewayError"
#: the error of an inference the provider did not answer with a 2xx (Inngest's name for it)
AI_GATEWAY_ERROR = "AIGatewayError"
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


def _failed(request: GatewayRequest, problem: str, *, stack: str = "") -> StepAttemptFailed:
    if request.ai is None:
        error = ErrorInfo(name=GATEWAY_ERROR, message=f"step.fetch {_where(request)}: {problem}")
    else:
        message = f"Error making AI request: {_where(request)}: {problem}"
        error = ErrorInfo(name=AI_GATEWAY_ERROR, message=message, stack=stack)
    return StepAttemptFailed(key=request.key, step_id=request.step_id, error=error)


def ai_auth(request: GatewayRequest) -> tuple[str, dict[str, str]]:
    """The URL and headers of an inference: JSON, the key where its format puts it (Inngest's
    `aigateway.Request.SerializableRequest`); the app's own headers are added last. Names are
    sent in Go's canonical case (`X-Api-Key`), as Inngest's server sends them."""
    url, headers = request.url, {"Content-Type": "application/json"}
    if request.ai == "gemini":
        url = str(httpx.URL(url).copy_add_param("key", request.auth_key))
    elif request.ai == "bedrock":
        headers["Authorization"] = request.auth_key
    elif request.ai == "anthropic":
        headers["X-Api-Key"] = request.auth_key
    else:
        headers["Authorization"] = f"Bearer {request.auth_key}"
    return url, {**headers, **{_canonical(k): v for k, v in request.headers.items()}}


def _canonical(name: str) -> str:
    """A header name as Go's `http.CanonicalHeaderKey` writes it."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


async def fetch(client: httpx.AsyncClient, request: GatewayRequest, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> StepOp:
    """Make the request; the step op that records its response (or why there was none)."""
    if urlsplit(request.url).scheme not in ("http", "https"):
        return _failed(request, "not an http(s) URL")
    url, headers = ai_auth(request) if request.ai is not None else (request.url, request.headers)
    try:
        async with client.stream(
            request.method,
            url,
            headers=headers,
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
    if request.ai is not None:
        return _inferred(request, response.status_code, body)
    output = {"status_code": response.status_code, "headers": dict(response.headers.items()), "body": body}
    return StepRun(key=request.key, step_id=request.step_id, output=output)


def _inferred(request: GatewayRequest, status: int, body: str) -> StepOp:
    """An inference's answer: its JSON is the step's output; a non-2xx is a step error."""
    if not 200 <= status < 300:
        return _failed(request, f"unsuccessful status code: {status}", stack=body)
    try:
        output = orjson.loads(body)
    except orjson.JSONDecodeError:
        output = body  # a provider that answers 2xx with text: the text is what it said
    return StepRun(key=request.key, step_id=request.step_id, output=output)


def is_gateway_retry(entry: MemoEntry) -> bool:
    """A `step.fetch` or `step.ai.infer` whose last request failed, waiting to be made again."""
    return entry.status == RETRYING and (entry.error or {}).get("name") in (GATEWAY_ERROR, AI_GATEWAY_ERROR)


__all__ = ["AI_GATEWAY_ERROR", "GATEWAY_ERROR", "ai_auth", "fetch", "is_gateway_retry"]
