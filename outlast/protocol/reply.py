"""Call responses (app -> server) read into the engine's op vocabulary (`outlast.core.ops`).

Status codes, as Inngest's executor reads them:
- 200: the function returned; the body is its output.
- 206: a list of opcodes (a single object is accepted too).
- 201: a streamed response; the body (after keep-alive whitespace) wraps the real status,
  headers and body (Python sends that body as a JSON string).
- anything else: a function-level error; the body is the SDK's error object.
A 2xx without `X-Inngest-SDK` is not an SDK talking: it is an error. `X-Inngest-No-Retry` and
`Retry-After` become the `ErrorInfo` the retry decision reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from outlast.core.defers import DeferAbort, DeferAdd
from outlast.core.ops import (
    FunctionError,
    InvokeFunction,
    RunComplete,
    Sleep,
    StepAttemptFailed,
    StepFailed,
    StepOp,
    StepPlanned,
    StepRun,
    WaitForEvent,
    WaitForSignal,
)
from outlast.core.retry import ErrorInfo
from outlast.protocol.timestr import TimeError, duration_ms, retry_after_ms, sleep_until_ms

SDK_HEADER = "x-inngest-sdk"
NO_RETRY_HEADER = "x-inngest-no-retry"
RETRY_AFTER_HEADER = "retry-after"
#: a response body larger than this is refused (Inngest's MaxSDKResponseBodySize)
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
MAX_OPS_PER_RESPONSE = 1000
UNSUPPORTED_OPCODE_ERROR = "UnsupportedOpcodeError"


@dataclass(frozen=True, slots=True, kw_only=True)
class Discovery:
    """The SDK asks to be called again without a target (DiscoveryRequest, StepNotFound, None)."""

    key: str = ""


@dataclass(slots=True, kw_only=True)
class Ops:
    """A 206: step ops to commit, planned steps to call, or the run's end (RunComplete)."""

    steps: list[StepOp] = field(default_factory=list)
    planned: list[StepPlanned] = field(default_factory=list)
    complete: RunComplete | None = None
    #: requests the server makes for the function (`step.fetch`, `step.ai.infer`), each a step
    gateways: list[GatewayRequest] = field(default_factory=list)
    discovery: bool = False
    #: how many opcodes the response held (>1 opens a parallel group), `defer()`'s lazy ones
    #: (which ride along with another) not counted, as Inngest's `OpcodeIsLazy`
    count: int = 0


Reply = RunComplete | FunctionError | Ops


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayRequest:
    """A `Gateway` opcode (`step.fetch`) or an `AIGateway` one (`step.ai.infer`, `ai` set): an
    HTTP request the server makes, durably, as a step (`outlast.runtime.gateways`); the response
    is the step's output. Headers and the provider's key may be secret: they are left out of
    the repr, and nothing stores them."""

    key: str
    step_id: str
    url: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    body: str | None = field(default=None, repr=False)
    #: `step.ai.infer`: the provider's request format (`openai-chat`, `anthropic`, `gemini`,
    #: `bedrock`), which says where its key goes
    ai: str | None = None
    auth_key: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Unsupported:
    """An opcode Outlast does not carry out. It fails the run (no retry): a run that went on
    without it would complete having silently skipped what the user asked for."""

    op: str
    step_id: str
    feature: str

    def error(self, url: str) -> ErrorInfo:
        return ErrorInfo(
            name=UNSUPPORTED_OPCODE_ERROR,
            no_retry=True,
            message=f"{url} sent {self.op!r} for step {self.step_id!r}: Outlast does not support {self.feature}",
        )


def is_unsupported(error: ErrorInfo) -> bool:
    """Whether the error is an `Unsupported` opcode's (it fails the run, wherever it came)."""
    return error.name == UNSUPPORTED_OPCODE_ERROR and error.no_retry


def parse_reply(status: int, headers: Mapping[str, str], body: bytes, *, now_ms: int, url: str = "the app") -> Reply:
    """What a response to a call request means. `headers` must have lower-case names."""
    if status == 201:
        unwrapped = _unwrap_stream(body)
        if isinstance(unwrapped, FunctionError):
            return unwrapped
        status, inner_headers, body = unwrapped
        headers = {**headers, **inner_headers}
    if 200 <= status < 300 and not headers.get(SDK_HEADER):
        return _not_sdk(url, status, body)
    if status == 200:
        try:
            return RunComplete(output=_json(body) if body.strip() else None)
        except ValueError as exc:
            return FunctionError(
                error=ErrorInfo(
                    name="InvalidSDKResponseError", message=f"{url} answered 200 with a body that is not JSON: {exc}"
                )
            )
    if status == 206:
        return _ops(body, headers, now_ms, url)
    return FunctionError(error=_function_error(status, headers, body, now_ms, url))


def _not_sdk(url: str, status: int, body: bytes) -> FunctionError:
    return FunctionError(
        error=ErrorInfo(
            name="NotAnSDKResponseError",
            message=(
                f"{url} answered {status} without an X-Inngest-SDK header: this is not an Inngest SDK endpoint, "
                f"or a proxy answered for it (body starts {_excerpt(body)})"
            ),
        )
    )


def _excerpt(body: bytes) -> str:
    text = body[:120].decode("utf-8", "replace")
    return repr(text) + ("..." if len(body) > 120 else "")


def _json(body: bytes) -> Any:
    return orjson.loads(body)


def _unwrap_stream(body: bytes) -> tuple[int, dict[str, str], bytes] | FunctionError:
    try:
        wrapper = _json(body.strip())
        status = int(wrapper["status"])
        headers = {str(k).lower(): str(v) for k, v in (wrapper.get("headers") or {}).items()}
        inner = wrapper.get("body")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return FunctionError(
            error=ErrorInfo(
                name="InvalidSDKResponseError", message=f"a streamed response (201) could not be read: {exc!r}"
            )
        )
    raw = inner.encode() if isinstance(inner, str) else orjson.dumps(inner)
    return status, headers, raw


def error_info(
    raw: Any, *, no_retry: bool = False, retry_at: int | None = None, default_name: str = "Error"
) -> ErrorInfo:
    """An SDK's error object (`{name, message, stack}`, JS's serialized form, or a string)."""
    if isinstance(raw, dict):
        message = raw.get("message")
        if message is None:
            message = raw.get("error")
        name = raw.get("name") or default_name
        stack = raw.get("stack") or ""
        return ErrorInfo(
            name=str(name),
            message="" if message is None else str(message),
            stack=stack if isinstance(stack, str) else "",
            no_retry=no_retry,
            retry_at=retry_at,
            sent=raw,
        )
    return ErrorInfo(name=default_name, message="" if raw is None else str(raw), no_retry=no_retry, retry_at=retry_at)


def _retry_hints(status: int, headers: Mapping[str, str], now_ms: int) -> tuple[bool, int | None]:
    header = headers.get(NO_RETRY_HEADER)
    no_retry = header.strip().lower() == "true" if header is not None else False
    return no_retry, retry_after_ms(headers.get(RETRY_AFTER_HEADER), now_ms)


def _function_error(status: int, headers: Mapping[str, str], body: bytes, now_ms: int, url: str) -> ErrorInfo:
    no_retry, retry_at = _retry_hints(status, headers, now_ms)
    try:
        raw = _json(body) if body.strip() else None
    except ValueError:
        raw = None
    if not headers.get(SDK_HEADER) and not isinstance(raw, dict):
        return ErrorInfo(
            name="FatalUpstreamError",
            no_retry=no_retry,
            retry_at=retry_at,
            message=f"{url} answered {status} (body starts {_excerpt(body)})",
        )
    info = error_info(raw, no_retry=no_retry, retry_at=retry_at)
    if not info.message and raw is None:
        return ErrorInfo(
            name=info.name, message=f"{url} answered {status}", no_retry=no_retry, retry_at=retry_at, status=status
        )
    return replace(info, status=status)


def _ops(body: bytes, headers: Mapping[str, str], now_ms: int, url: str) -> Reply:
    try:
        raw = _json(body) if body.strip() else []
    except ValueError as exc:
        return FunctionError(
            error=ErrorInfo(
                name="InvalidSDKResponseError", message=f"{url} answered 206 with a body that is not JSON: {exc}"
            )
        )
    items = raw if isinstance(raw, list) else [raw]
    if len(items) > MAX_OPS_PER_RESPONSE:
        return FunctionError(
            error=ErrorInfo(
                name="FunctionOverflowedError",
                no_retry=True,
                message=(f"{url} reported {len(items)} steps in one response, the limit is {MAX_OPS_PER_RESPONSE}"),
            )
        )
    no_retry, retry_at = _retry_hints(206, headers, now_ms)
    out = Ops(count=sum(1 for item in items if not _is_lazy(item)))
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("op"), str):
            return FunctionError(
                error=ErrorInfo(
                    name="InvalidSDKResponseError",
                    message=f"{url} answered 206 with an opcode that is not an object "
                    f"with an 'op' (item {i}: {item!r:.100})",
                )
            )
        parsed = to_op(item, now_ms=now_ms, no_retry=no_retry, retry_at=retry_at)
        if isinstance(parsed, Unsupported):
            return FunctionError(error=parsed.error(url))
        if isinstance(parsed, RunComplete):
            out.complete = parsed
        elif isinstance(parsed, GatewayRequest):
            out.gateways.append(parsed)
        elif isinstance(parsed, StepPlanned):
            out.planned.append(parsed)
        elif isinstance(parsed, Discovery):
            out.discovery = True
        else:
            out.steps.append(parsed)
    return out


def _is_lazy(item: Any) -> bool:
    return isinstance(item, dict) and str(item.get("op")).lower() in ("deferadd", "deferabort")


def to_op(
    item: dict[str, Any], *, now_ms: int, no_retry: bool = False, retry_at: int | None = None
) -> StepOp | StepPlanned | RunComplete | Discovery | GatewayRequest | Unsupported:
    """One opcode as an op. Names match exactly or in lower case, as Inngest accepts them."""
    op = str(item["op"]).lower()
    key = str(item.get("id") or "")
    step_id = _user_id(item)
    opts: dict[str, Any] = item["opts"] if isinstance(item.get("opts"), dict) else {}
    if op == "runcomplete":
        return RunComplete(output=item.get("data"))
    if op in ("discoveryrequest", "stepnotfound", "none", "syncruncomplete") or not key:
        return Discovery(key=key)
    if op in ("steprun", "step"):
        data = item.get("data")
        if op == "step" and isinstance(data, dict) and set(data) == {"data"}:
            data = data["data"]  # the legacy opcode's data may come wrapped already
        kind = "send_event" if opts.get("type") == "step.sendEvent" else "run"
        return StepRun(key=key, step_id=step_id, output=data, kind=kind)
    if op == "steperror":
        return StepAttemptFailed(
            key=key, step_id=step_id, error=error_info(item.get("error"), no_retry=no_retry, retry_at=retry_at)
        )
    if op == "stepfailed":
        return StepFailed(
            key=key, step_id=step_id, error=error_info(item.get("error") or item.get("data"), no_retry=True)
        )
    if op == "stepplanned":
        return StepPlanned(key=key, step_id=step_id, race=opts.get("parallelMode") == "race")
    try:
        return _async_op(op, key, step_id, item, opts, now_ms)
    except TimeError as exc:
        return StepFailed(
            key=key,
            step_id=step_id,
            error=ErrorInfo(name="StepUsageError", no_retry=True, message=f"step {step_id!r}: {exc}"),
        )


def _async_op(
    op: str, key: str, step_id: str, item: dict[str, Any], opts: dict[str, Any], now_ms: int
) -> StepOp | GatewayRequest | Unsupported:
    if op == "sleep":
        return Sleep(
            key=key, step_id=step_id, until_ms=sleep_until_ms(opts.get("duration") or item.get("name"), now_ms)
        )
    if op == "waitforevent":
        timeout = opts.get("timeout")
        expires = now_ms + (duration_ms(timeout) if timeout else 0)  # no timeout: expired already, as Inngest
        return WaitForEvent(
            key=key,
            step_id=step_id,
            event=str(opts.get("event") or item.get("name") or ""),
            expression=opts.get("if") or None,
            expires_at=expires,
        )
    if op == "waitforsignal":
        timeout = opts.get("timeout")
        return WaitForSignal(
            key=key,
            step_id=step_id,
            signal=str(opts.get("signal") or item.get("name") or ""),
            expires_at=now_ms + (duration_ms(timeout) if timeout else 0),
            on_conflict=str(opts.get("conflict") or "fail"),
        )
    if op == "invokefunction":
        payload: dict[str, Any] = opts["payload"] if isinstance(opts.get("payload"), dict) else {}
        data: dict[str, Any] = payload["data"] if isinstance(payload.get("data"), dict) else {}
        user: dict[str, Any] = payload["user"] if isinstance(payload.get("user"), dict) else {}
        timeout = opts.get("timeout")
        return InvokeFunction(
            key=key,
            step_id=step_id,
            function_slug=str(opts.get("function_id") or ""),
            data=data,
            user=user,
            expires_at=now_ms + duration_ms(timeout) if timeout else None,
        )
    if op == "gateway":
        return _gateway(key, step_id, opts)
    if op == "deferadd":
        fn_slug = opts.get("fn_slug")
        return DeferAdd(
            key=key,
            step_id=step_id,
            function_slug=fn_slug if isinstance(fn_slug, str) else "",
            input=opts.get("input"),
            meta=opts.get("meta"),
        )
    if op == "deferabort":
        return DeferAbort(key=key, step_id=step_id, target=str(opts.get("target_hashed_id") or ""))
    if op == "aigateway":
        return _ai_gateway(key, step_id, opts)
    return Unsupported(op=str(item["op"]), step_id=step_id, feature=f"the {item['op']!r} opcode")


def _gateway(key: str, step_id: str, opts: dict[str, Any]) -> GatewayRequest:
    headers = opts.get("headers")
    body = opts.get("body")
    return GatewayRequest(
        key=key,
        step_id=step_id,
        url=str(opts.get("url") or ""),
        method=str(opts.get("method") or "GET").upper(),
        headers={str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {},
        body=body if isinstance(body, str) or body is None else orjson.dumps(body).decode(),
    )


def _ai_gateway(key: str, step_id: str, opts: dict[str, Any]) -> GatewayRequest:
    """`step.ai.infer`: always a JSON POST (Inngest's `aigateway.Request`)."""
    headers = opts.get("headers")
    body = opts.get("body")
    return GatewayRequest(
        key=key,
        step_id=step_id,
        url=str(opts.get("url") or ""),
        method="POST",
        headers={str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {},
        body=body if isinstance(body, str) else orjson.dumps(body).decode(),
        ai=str(opts.get("format") or "openai-chat"),
        auth_key=str(opts.get("auth_key") or ""),
    )


def _user_id(item: dict[str, Any]) -> str:
    """The step's id as the user wrote it (for traces); the hashed id if the SDK gave no other."""
    userland = item.get("userland")
    if isinstance(userland, dict) and isinstance(userland.get("id"), str):
        return str(userland["id"])
    if isinstance(item.get("displayName"), str) and item["displayName"]:
        return str(item["displayName"])
    name = item.get("name")  # a sleep's or a wait's name is its time or event, not its id
    if isinstance(name, str) and name and str(item["op"]).lower() not in ("sleep", "waitforevent", "waitforsignal"):
        return name
    return str(item.get("id") or "")
