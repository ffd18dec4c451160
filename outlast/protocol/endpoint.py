"""Durable Endpoints (SDK -> server): inngest@4's `inngest.endpoint(handler)`.

An endpoint is an ordinary HTTP handler whose steps run durably. The SDK makes the run itself
(its id is a ULID the SDK chose) and checkpoints as the handler goes:

    POST /v1/checkpoint               {"run_id", "event", "steps", "ts", "request_version", "retries"}
      -> {"data": {"fn_id", "app_id", "run_id", "token", "realtime_token"}}
    POST /v1/checkpoint/{run_id}/steps  {"fn_id", "app_id", "run_id", "steps", "ts"}

`event` is `inngest/http.request` with the request the endpoint served: `data.domain`
(scheme and host), `method`, `path`, `query_params`, `content_type`, `body`, `ip` and `fn` (the
function's id, or "" for Inngest's "METHOD /path"). The app is the domain; the function is `fn`
(as on Inngest, `pkg/api/apiv1/checkpoint_types.go`). `steps` are opcodes as in a 206; the run's
end is `RunComplete` whose `data` is the endpoint's HTTP response (`{status, headers, body}`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from outlast.core.ops import RunComplete, StepOp, StepPlanned
from outlast.protocol.reply import Discovery, GatewayRequest, Unsupported, to_op

HTTP_REQUEST_EVENT = "inngest/http.request"
_ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")
_SLUG = re.compile(r"[^a-z0-9]+")
#: Inngest's default when the SDK sends no `retries` (4 retries: 5 attempts)
DEFAULT_RETRIES = 4
MAX_RETRIES = 20


class EndpointBodyError(ValueError):
    """A checkpoint body that cannot be read; the message names the field."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointRequest:
    """The HTTP request an endpoint run started from (its trigger event's data)."""

    domain: str
    method: str
    path: str
    query: str
    content_type: str
    body: str
    fn: str

    @property
    def app_id(self) -> str:
        """The app: the domain, as a slug ("http://127.0.0.1:3000" -> "127-0-0-1-3000")."""
        return _slug(urlsplit(self.domain).netloc) or "endpoints"

    @property
    def function_id(self) -> str:
        return _slug(self.fn) if self.fn else _slug(f"{self.method} {self.path}") or "root"

    @property
    def function_name(self) -> str:
        return self.fn or f"{self.method} {self.path}"

    @property
    def url(self) -> str:
        return self.domain + self.path


@dataclass(frozen=True, slots=True, kw_only=True)
class NewEndpointRun:
    run_id: str
    request: EndpointRequest
    #: the trigger event as the SDK sent it (stored as the run's event)
    event: dict[str, Any]
    retries: int
    ops: list[StepOp | RunComplete | StepPlanned | Discovery]


def _slug(text: str) -> str:
    return _SLUG.sub("-", text.lower()).strip("-")[:120]


def _text(data: dict[str, Any], name: str, *, required: bool = False) -> str:
    value = data.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise EndpointBodyError(f"event.data.{name}: expected a string, got {value!r}")
    return value


def parse_request(event: Any) -> EndpointRequest:
    if not isinstance(event, dict) or event.get("name") != HTTP_REQUEST_EVENT:
        raise EndpointBodyError(f"event: expected the {HTTP_REQUEST_EVENT!r} event the SDK makes for the request")
    data = event.get("data")
    if not isinstance(data, dict):
        raise EndpointBodyError("event.data: expected an object")
    domain = _text(data, "domain", required=True)
    if urlsplit(domain).scheme not in ("http", "https") or not urlsplit(domain).netloc:
        raise EndpointBodyError(f"event.data.domain: expected a scheme and host (http://host:port), got {domain!r}")
    path = _text(data, "path") or "/"
    if not path.startswith("/"):
        raise EndpointBodyError(f"event.data.path: expected an absolute path, got {path!r}")
    return EndpointRequest(
        domain=domain.rstrip("/"),
        method=(_text(data, "method") or "POST").upper(),
        path=path,
        query=_text(data, "query_params"),
        content_type=_text(data, "content_type"),
        body=_text(data, "body"),
        fn=_text(data, "fn"),
    )


def parse_run_id(value: Any, field: str = "run_id") -> str:
    if not isinstance(value, str) or not _ULID.match(value.upper()):
        raise EndpointBodyError(f"{field}: expected the run's ULID (26 characters), got {value!r}")
    return value.upper()


def parse_ops(steps: Any, *, now_ms: int) -> list[StepOp | RunComplete | StepPlanned | Discovery]:
    """The opcodes of a checkpoint: step results, async steps (the run goes on in the
    background), planned steps, a discovery request or the run's end."""
    if steps is None:
        return []
    if not isinstance(steps, list) or not all(isinstance(s, dict) and isinstance(s.get("op"), str) for s in steps):
        raise EndpointBodyError("steps: expected a list of opcodes (objects with an 'op')")
    ops: list[StepOp | RunComplete | StepPlanned | Discovery] = []
    for item in steps:
        op = to_op(item, now_ms=now_ms)
        if isinstance(op, Unsupported | GatewayRequest):
            raise EndpointBodyError(f"steps: opcode {item['op']!r} is not supported in a Durable Endpoint")
        ops.append(op)
    return ops


def parse_new_run(body: Any, *, now_ms: int) -> NewEndpointRun:
    """`POST /v1/checkpoint`'s body; raises `EndpointBodyError` naming the field."""
    if not isinstance(body, dict):
        raise EndpointBodyError("expected a JSON object")
    run_id = parse_run_id(body.get("run_id"))
    request = parse_request(body.get("event"))
    retries = body.get("retries", DEFAULT_RETRIES)
    if retries is None:
        retries = DEFAULT_RETRIES
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= MAX_RETRIES:
        raise EndpointBodyError(f"retries: expected a whole number from 0 to {MAX_RETRIES}, got {retries!r}")
    event = body["event"]
    return NewEndpointRun(
        run_id=run_id,
        request=request,
        event={"name": HTTP_REQUEST_EVENT, "data": event["data"], **({"id": event["id"]} if event.get("id") else {})},
        retries=retries,
        ops=parse_ops(body.get("steps"), now_ms=now_ms),
    )


def parse_steps(body: Any, *, run_id: str, now_ms: int) -> list[StepOp | RunComplete | StepPlanned | Discovery]:
    """`POST /v1/checkpoint/{run_id}/steps`'s body (`run_id` is the path's)."""
    if not isinstance(body, dict):
        raise EndpointBodyError("expected a JSON object")
    if body.get("run_id") not in (None, run_id):
        raise EndpointBodyError(f"run_id: {body.get('run_id')!r} is not the run in the path ({run_id!r})")
    return parse_ops(body.get("steps"), now_ms=now_ms)


def http_result(output: Any) -> tuple[int, dict[str, str], str] | None:
    """The HTTP response an endpoint run ended with (its `RunComplete` data: Inngest's
    `APIResult`: `{status, headers, body}` from the SDK), or None when the output is not one."""
    if not isinstance(output, dict):
        return None
    status = output.get("status", output.get("status_code"))  # the SDK's key, then Inngest's Go struct's
    headers, body = output.get("headers") or {}, output.get("body")
    if not isinstance(status, int) or not 100 <= status <= 599 or not isinstance(headers, dict):
        return None
    text = body if isinstance(body, str) else ""
    return status, {str(k): str(v) for k, v in headers.items()}, text


__all__ = [
    "HTTP_REQUEST_EVENT",
    "EndpointBodyError",
    "EndpointRequest",
    "NewEndpointRun",
    "http_result",
    "parse_new_run",
    "parse_request",
    "parse_run_id",
    "parse_steps",
]
