"""Inngest Connect's wire format: the protobuf messages of `/v0/connect/start` and the gateway.

The message classes are the ones the official `inngest[connect]` package ships
(`inngest.connect._internal.connect_pb2`, generated from Inngest's `connect/v1` proto), imported
lazily so that Outlast without the `connect` extra still imports and serves everything else
(`/v0/connect/start` then answers 501, naming the extra).

What is here is pure translation, no I/O:

- frames: one WebSocket binary message is one `ConnectMessage` (kind + payload bytes);
  `parse_frame` refuses an oversized or malformed frame, or an unknown kind, with a reason;
- the worker's `WORKER_CONNECT` becomes a sync payload (`sync_payload`), read by the same
  `parse_register` as `POST /fn/register`, so one app means the same whichever way it synced;
- an `SDKResponse` becomes the (status, headers, body) an HTTP reply would have had
  (`http_reply`), so the HTTP driver's reply parsing is reused unchanged;
- session tokens: `/v0/connect/start` hands out an HMAC of the connection id and its expiry
  under a server secret (the signing key in production), and the gateway checks it. Any
  process that knows the secret can check a token: nothing is stored per connection.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import time
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any
from urllib.parse import quote, unquote, urlparse

from outlast.core import jsonutil

#: Inngest's servers send up to 4 MB and the SDKs accept 5 MB; a reply may carry a step's output
MAX_FRAME_BYTES = 8 * 1024 * 1024
SUBPROTOCOL = "v0.connect.inngest.com"
GATEWAY_PATH = "/v0/connect"
CONNECT_SCHEME = "connect"
#: what the gateway asks of workers (the SDKs parse "<n>s")
HEARTBEAT_INTERVAL_S = 10
EXTEND_LEASE_INTERVAL_S = 5
SESSION_TTL_S = 300


class ConnectUnavailableError(RuntimeError):
    """The `connect` extra (the official `inngest[connect]` package) is not installed."""


class FrameError(ValueError):
    """A frame that cannot be accepted; the message is the reason the connection is closed for."""


@cache
def pb() -> ModuleType:
    """The protobuf message module of the official package."""
    try:
        return importlib.import_module("inngest.connect._internal.connect_pb2")
    except ImportError as exc:
        raise ConnectUnavailableError(
            f"Connect needs the official protobuf messages: pip install 'outlast[connect]' ({exc})"
        ) from None


def available() -> bool:
    try:
        pb()
    except ConnectUnavailableError:
        return False
    return True


def kind_name(kind: int) -> str:
    try:
        return str(pb().GatewayMessageType.Name(kind))
    except ValueError:
        return f"unknown({kind})"


def frame(kind: str, payload: Any = None) -> bytes:
    """One `ConnectMessage` of kind `kind` (a `GatewayMessageType` name) carrying `payload`."""
    m = pb()
    data = b"" if payload is None else payload.SerializeToString()
    return bytes(m.ConnectMessage(kind=m.GatewayMessageType.Value(kind), payload=data).SerializeToString())


def parse_frame(data: bytes | str) -> tuple[str, bytes]:
    """(kind name, payload) of one frame; FrameError for a text, oversized, malformed or unknown one."""
    if isinstance(data, str):
        raise FrameError("a text frame (Connect speaks protobuf in binary frames)")
    if len(data) > MAX_FRAME_BYTES:
        raise FrameError(f"a frame of {len(data)} bytes (the limit is {MAX_FRAME_BYTES})")
    m = pb()
    message = m.ConnectMessage()
    try:
        message.ParseFromString(data)
    except Exception as exc:  # protobuf's DecodeError, and what a truncated varint raises
        raise FrameError(f"a malformed frame ({exc or type(exc).__name__})") from None
    if message.kind not in m.GatewayMessageType.values():
        raise FrameError(f"an unknown message type ({message.kind})")
    return kind_name(message.kind), bytes(message.payload)


def parse(message_class: str, payload: bytes) -> Any:
    """`payload` read as the message `message_class`; FrameError when it is not one."""
    message = getattr(pb(), message_class)()
    try:
        message.ParseFromString(payload)
    except Exception as exc:
        raise FrameError(f"a malformed {message_class} ({exc or type(exc).__name__})") from None
    return message


# -- sync ------------------------------------------------------------------------------------------


def app_url(app_id: str) -> str:
    """The URL a Connect app is stored with: it names the app, not a place to POST to."""
    return f"{CONNECT_SCHEME}://{quote(app_id, safe='')}"


def app_of(url: str) -> str:
    """The app id of an `app_url`."""
    return unquote(urlparse(url).netloc)


def sync_payload(app: Any, *, sdk_language: str, sdk_version: str) -> dict[str, Any]:
    """A register payload (as `POST /fn/register` carries) for one `AppConfiguration` of a
    `WORKER_CONNECT`; raises ValueError when its functions are not a JSON list."""
    functions = jsonutil.loads(bytes(app.functions)) if app.functions else []
    if not isinstance(functions, list):
        raise ValueError(f"app {app.app_name!r}: its functions must be a JSON list")
    payload: dict[str, Any] = {
        "appName": app.app_name,
        "url": app_url(app.app_name),
        "sdk": sdk_name(sdk_language, sdk_version),
        "framework": "connect",
        "functions": functions,
    }
    if app.HasField("app_version") and app.app_version:
        payload["appVersion"] = app.app_version
    return payload


def sdk_name(language: str, version: str) -> str:
    """`py:v0.5.19`, `typescript:v4.24.0` (the JS SDK's version already starts with a v)."""
    return f"{language}:v{version.removeprefix('v')}" if language else ""


# -- replies ---------------------------------------------------------------------------------------


def http_reply(response: Any) -> tuple[int, dict[str, str], bytes]:
    """What an `SDKResponse` would have been over HTTP: DONE is 200, NOT_COMPLETED 206 (opcodes),
    ERROR 500, with the SDK's retry hints as the headers the HTTP protocol uses."""
    m = pb()
    status = {m.DONE: 200, m.NOT_COMPLETED: 206}.get(response.status, 500)
    headers = {
        "x-inngest-sdk": response.sdk_version or "connect",
        "x-inngest-req-version": str(response.request_version),
    }
    if response.no_retry:
        headers["x-inngest-no-retry"] = "true"
    if response.HasField("retry_after") and response.retry_after:
        headers["retry-after"] = response.retry_after
    return status, headers, bytes(response.body)


# -- session tokens --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sessions:
    """Issues and checks the session token of a connection (see the module docstring)."""

    secret: bytes
    ttl_s: int = SESSION_TTL_S

    def issue(self, connection_id: str, *, now_s: float | None = None) -> str:
        expires = int(time.time() if now_s is None else now_s) + self.ttl_s
        return f"{expires}.{self._mac(connection_id, expires)}"

    def check(self, connection_id: str, token: str, *, now_s: float | None = None) -> str | None:
        """Why `token` does not admit `connection_id`, or None when it does."""
        expires_text, _, mac = token.partition(".")
        if not expires_text.isdigit() or not mac:
            return "the session token is missing or malformed (call /v0/connect/start first)"
        expires = int(expires_text)
        if not hmac.compare_digest(mac, self._mac(connection_id, expires)):
            return "the session token was not issued for this connection by this server"
        if expires < (time.time() if now_s is None else now_s):
            return "the session token has expired (call /v0/connect/start again)"
        return None

    def _mac(self, connection_id: str, expires: int) -> str:
        return hmac.new(self.secret, f"{connection_id}.{expires}".encode(), hashlib.sha256).hexdigest()
