"""Inngest's realtime routes, onto Outlast's channels: what apps on the official SDKs call.

- `POST /v1/realtime/publish?channel=&topic=&run_id=`: the body is the message's data (JSON, or
  text kept as a string); `text/stream` bodies are published chunk by chunk, as they arrive.
  `step.realtime.publish` (inngest@4) and `inngest.realtime.publish` both land here.
- `POST /v1/realtime/publish/tee?channel=`: raw bytes (a Durable Endpoint's stream: server-sent
  events), published as they arrive, whole events at a time, on topic `stream` of the channel;
  `/v1/realtime/sse` writes them back raw.
- `POST /v1/realtime/token`: `[{"channel", "name", "kind"}]` (one channel) → `{"jwt"}`, a channel
  token (the same as `POST /api/realtime/token` mints; opaque to the SDK).
- `GET /v1/realtime/sse?token=`: the token's channel as server-sent events, each message as
  Inngest's JSON (`{kind, channel, topic, data, created_at, run_id?}`), with Outlast's ids, so
  `Last-Event-ID` resumes. A token for topic `stream` alone (the `realtime_token` of a Durable
  Endpoint's run) reads the stream from its start: raw bytes have no ids to resume from, and a
  stream joined half way is unreadable; so a caller that follows its redirect late loses nothing
  (Inngest relays only what comes after it connects). That stream ends after the endpoint's
  `inngest.response` event.

Publishing needs a signing key in production, as on Inngest; in development, nothing. Messages
land on the same channels as `ctx.step.publish`: the dashboard and Python subscribers see them.
Inngest's WebSocket subscription, `/v1/realtime/connect`, is in `inngest_realtime_ws`.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from outlast.core.realtime import Message, MessageRecord, channel_problem, name_problem, topic_problem, topics_problem
from outlast.errors import StoreError, SubscriptionError
from outlast.server.body import BodyTooLargeError, read_body
from outlast.server.realtime import MAX_TOKEN_BODY_BYTES, error, parse_since, sse_events
from outlast.server.realtime_tokens import TokenError
from outlast.server.services import Services, services

#: the topic raw bytes from `publish/tee` are published on
TEE_TOPIC = "stream"
_RESPONSE = re.compile(r"^event: ?inngest\.response\r?$", re.MULTILINE)
DEFAULT_TOPIC = "default"


class InngestRealtime:
    """The routes' work over the server's services (the engine, the signing-key guard, tokens)."""

    def __init__(self, found: Services) -> None:
        self.engine = found.engine
        self.bearer = found.bearer
        self.tokens = found.tokens
        self.max_bytes = found.engine.settings.max_step_output_bytes

    async def publish(self, request: Request) -> Response:
        if (refusal := self.bearer.refusal(request, what="Inngest's realtime API")) is not None:
            return error(401, refusal)
        params = request.query_params
        channel, topic, run_id = params.get("channel", ""), params.get("topic") or DEFAULT_TOPIC, params.get("run_id")
        problem = channel_problem(channel) or topic_problem(topic)
        problem = problem or (None if run_id is None else name_problem(run_id, what="run_id", limit=64))
        if problem is not None:
            return error(400, problem)
        if request.headers.get("content-type", "").split(";")[0].strip() == "text/stream":
            return await self._stream(request, channel=channel, topic=topic, run_id=run_id)
        body = await self._body(request)
        if body is None:
            return error(400, f"the message is over the step output limit ({self.max_bytes} bytes)")
        await self._publish([self._record(channel, topic, _data(body), run_id)])
        return JSONResponse({"ok": True})

    async def tee(self, request: Request) -> Response:
        if (refusal := self.bearer.refusal(request, what="Inngest's realtime API")) is not None:
            return error(401, refusal)
        channel = request.query_params.get("channel", "")
        if (problem := channel_problem(channel)) is not None:
            return error(400, problem)
        return await self._tee(request, channel=channel)

    async def token(self, request: Request) -> Response:
        if (refusal := self.bearer.refusal(request, what="Inngest's realtime API")) is not None:
            return error(401, refusal)
        try:
            topics = json.loads(await read_body(request, MAX_TOKEN_BODY_BYTES))
        except BodyTooLargeError as exc:
            return error(413, str(exc))
        except ValueError:
            return error(400, 'the body must be a JSON list: [{"channel": "...", "name": "<topic>", "kind": "run"}]')
        if not isinstance(topics, list) or not all(isinstance(t, dict) for t in topics):
            return error(400, 'the body must be a JSON list: [{"channel": "...", "name": "<topic>", "kind": "run"}]')
        channels = {t.get("channel") for t in topics}
        names = [t.get("name") for t in topics]
        if len(channels) != 1:
            return error(400, "a token is for exactly one channel")
        [channel] = channels
        if (problem := channel_problem(channel) or topics_problem(names)) is not None:
            return error(400, problem)
        jwt = self.tokens.mint(channel=channel, topics=names or None, now_ms=self.engine.clock.now_ms())
        return JSONResponse({"jwt": jwt}, status_code=201)

    async def sse(self, request: Request) -> Response:
        try:
            grant = self.tokens.read(request.query_params.get("token", ""), now_ms=self.engine.clock.now_ms())
        except TokenError as exc:
            return error(401, str(exc))
        try:
            hub = await self.engine.realtime()
            since = parse_since(request.headers.get("last-event-id"))
            topics = None if grant.topics is None else [*grant.topics, TEE_TOPIC]
            if since is None and grant.topics == (TEE_TOPIC,):
                since = 0  # a raw stream is read from its start (see `tee`)
            subscription = await hub.subscribe(grant.channel, topics=topics, since=since)
        except SubscriptionError as exc:
            return error(400, str(exc))
        except StoreError as exc:
            return error(503, f"the store is unavailable: {exc}")
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        events = sse_events(subscription, inngest_event)
        if grant.topics == (TEE_TOPIC,):
            events = _until_response(events)
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)

    # -- helpers -------------------------------------------------------------------------------

    async def _body(self, request: Request) -> bytes | None:
        """The whole body, or None once it is over the limit (it is not read further)."""
        try:
            return await read_body(request, self.max_bytes)
        except BodyTooLargeError:
            return None

    async def _stream(self, request: Request, *, channel: str, topic: str, run_id: str | None) -> Response:
        """Publish a body chunk by chunk as it arrives (each chunk one message, in order)."""
        sent = 0
        try:
            async for chunk in request.stream():
                if chunk:
                    sent += len(chunk)
                    text = chunk.decode("utf-8", "replace")
                    await self._publish([self._record(channel, topic, text, run_id)])
        except ClientDisconnect:
            pass
        return JSONResponse({"ok": True, "bytes": sent})

    async def _tee(self, request: Request, *, channel: str) -> Response:
        """Publish raw SSE bytes as they arrive, one message per run of whole events (a chunk
        that ends inside an event waits for the rest, up to the step output limit), so a relay
        never splits an event or a UTF-8 character, and keep-alives fall between events."""
        sent, pending = 0, b""
        try:
            async for chunk in request.stream():
                sent += len(chunk)
                whole, cut, pending = (pending + chunk).rpartition(b"\n\n")
                if len(pending) > self.max_bytes:  # no event boundary in sight: pass it on
                    whole, cut, pending = whole + cut + pending, b"", b""
                await self._tee_publish(channel, whole + cut)
        except ClientDisconnect:
            pass
        await self._tee_publish(channel, pending)
        return JSONResponse({"ok": True, "bytes": sent})

    async def _tee_publish(self, channel: str, raw: bytes) -> None:
        if raw:
            await self._publish([self._record(channel, TEE_TOPIC, raw.decode("utf-8", "replace"), None)])

    def _record(self, channel: str, topic: str, data: Any, run_id: str | None) -> MessageRecord:
        return MessageRecord(channel=channel, topic=topic, data=data, ts=self.engine.clock.now_ms(), run_id=run_id)

    async def _publish(self, records: list[MessageRecord]) -> None:
        await self.engine.store.publish(records)


async def _until_response(events: AsyncIterator[str]) -> AsyncIterator[str]:
    """A Durable Endpoint's stream, ended after its `inngest.response` event (the endpoint has
    answered; nothing follows it). Inngest's relay stays open until the caller leaves; its
    client stops reading there too. Events are stored whole (`tee`), and pushed data is JSON on
    `data:` lines, so the event's own line cannot be mistaken."""
    try:
        async for text in events:
            yield text
            if _RESPONSE.search(text):
                return
    finally:
        if isinstance(events, AsyncGenerator):
            await events.aclose()  # its subscription ends now, not when it is collected


def _data(body: bytes) -> Any:
    """JSON as its value; anything else as text (Inngest does not double-encode JSON)."""
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


def inngest_message(message: Message) -> dict[str, Any]:
    """A message as Inngest's JSON: no `run_id` when there is none (Inngest omits it, and its
    client refuses a null one)."""
    created = datetime.fromtimestamp(message.ts / 1000, UTC).isoformat().replace("+00:00", "Z")
    body = {"kind": "data", "channel": message.channel, "topic": message.topic, "data": message.data}
    body["created_at"] = created
    if message.run_id is not None:
        body["run_id"] = message.run_id
    return body


def inngest_event(message: Message) -> str:
    """A message as Inngest's SSE subscribers read it; raw stream bytes as they were sent."""
    if message.topic == TEE_TOPIC and isinstance(message.data, str):
        return message.data
    return f"id: {message.id}\ndata: {json.dumps(inngest_message(message), separators=(',', ':'))}\n\n"


async def publish(request: Request) -> Response:
    return await InngestRealtime(services(request)).publish(request)


async def tee(request: Request) -> Response:
    return await InngestRealtime(services(request)).tee(request)


async def token(request: Request) -> Response:
    return await InngestRealtime(services(request)).token(request)


async def sse(request: Request) -> Response:
    return await InngestRealtime(services(request)).sse(request)


ROUTES: list[BaseRoute] = [
    Route("/v1/realtime/publish", publish, methods=["POST"]),
    Route("/v1/realtime/publish/tee", tee, methods=["POST"]),
    Route("/v1/realtime/token", token, methods=["POST"]),
    Route("/v1/realtime/sse", sse, methods=["GET"]),
]
