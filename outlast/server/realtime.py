"""Realtime over HTTP: `GET /api/realtime` (server-sent events) and `POST /api/realtime/token`.

The stream sends one SSE event per message: its `id:` the message id, its `data:` the JSON object
`{id, channel, topic, data, run_id, ts}`. A reconnecting EventSource sends `Last-Event-ID` and
resumes after it (so does `since=`), losing nothing the store still keeps. A subscriber too slow
for its buffer is told (`event: overflow`, with the last id it got) and reads on from the store;
the stream goes on. In production the stream needs `token=` for its channel (minted by a
logged-in or signing-key caller at `POST /api/realtime/token`); without a valid one it answers 401.
Bad input answers 400 with `{"error": ...}` naming what is wrong.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from outlast.core.realtime import Message, channel_problem, run_channel, topics_problem
from outlast.errors import StoreError, SubscriptionError
from outlast.runtime.realtime import Subscription
from outlast.server.body import BodyTooLargeError, read_body
from outlast.server.realtime_tokens import TokenError
from outlast.server.services import Services, services

KEEPALIVE_S = 15.0
RECONNECT_MS = 2000
#: a token request is a channel and a few topics
MAX_TOKEN_BODY_BYTES = 64 * 1024


class RealtimeHttp:
    """The routes' work over the server's services: the engine, login, bearer keys, tokens."""

    def __init__(self, found: Services) -> None:
        self.engine = found.engine
        self.config = found.config
        self.auth = found.auth
        self.bearer = found.bearer
        self.tokens = found.tokens

    def may_mint(self, request: Request) -> bool:
        """A logged-in user (dashboard session or password bearer) or a signing-key caller."""
        return self.auth.logged_in(request) or (
            self.config.production and self.bearer.refusal(request, what="the realtime API") is None
        )

    async def stream(self, request: Request) -> Response:
        params = request.query_params
        channel, run_id = params.get("channel"), params.get("run_id")
        if (channel is None) == (run_id is None):
            return error(400, "give channel= (or run_id= for every message of one run), not both or neither")
        topics = split_topics(params.get("topics"))
        token = params.get("token")
        if token or self.config.production:
            # a run's messages are granted by a token for its own channel
            granted = channel if channel is not None else run_channel(run_id or "")
            try:
                now = self.engine.clock.now_ms()
                grant = self.tokens.check(token or "", channel=granted, topics=topics, now_ms=now)
            except TokenError as exc:
                return error(401, str(exc) if token else "a channel token is required: POST /api/realtime/token")
            topics = topics if topics is not None else (None if grant.topics is None else list(grant.topics))
        since = request.headers.get("last-event-id") or params.get("since")
        try:
            hub = await self.engine.realtime()
            subscription = await hub.subscribe(channel, topics=topics, since=parse_since(since), run_id=run_id)
        except SubscriptionError as exc:
            return error(400, str(exc))
        except StoreError as exc:
            return error(503, f"the store is unavailable: {exc}")
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(sse_events(subscription), media_type="text/event-stream", headers=headers)

    async def token(self, request: Request) -> Response:
        if not self.may_mint(request):
            return error(401, "log in, or send Authorization: Bearer <signing key>, to get a channel token")
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return error(400, 'send a JSON body: {"channel": "...", "topics": ["..."]}')
        try:
            body = json.loads(await read_body(request, MAX_TOKEN_BODY_BYTES))
        except BodyTooLargeError as exc:
            return error(413, str(exc))
        except ValueError:
            return error(400, "the body is not JSON")
        if not isinstance(body, dict):
            return error(400, 'the body must be a JSON object: {"channel": "...", "topics": ["..."]}')
        channel, topics = body.get("channel"), body.get("topics")
        if (problem := channel_problem(channel) or topics_problem(topics)) is not None:
            return error(400, problem)
        token = self.tokens.mint(channel=str(channel), topics=topics, now_ms=self.engine.clock.now_ms())
        return JSONResponse({"token": token})


def outlast_event(message: Message) -> str:
    return f"id: {message.id}\ndata: {json.dumps(message.to_json(), separators=(',', ':'))}\n\n"


async def sse_events(
    subscription: Subscription, render: Callable[[Message], str] = outlast_event
) -> AsyncIterator[str]:
    """The subscription as SSE text, with keep-alive comments, until the client goes away."""
    told, last = 0, subscription.cursor
    try:
        yield f"retry: {RECONNECT_MS}\n\n"
        while True:
            try:
                async with asyncio.timeout(KEEPALIVE_S):
                    message = await subscription.next_message()
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            if message is None:  # the server is stopping
                return
            if subscription.overflows != told:
                told = subscription.overflows
                yield f"event: overflow\ndata: {json.dumps({'after_id': last, 'overflows': told})}\n\n"
            yield render(message)
            last = message.id
    finally:
        subscription.close()


def split_topics(raw: str | None) -> list[str] | None:
    return None if raw is None or not raw.strip() else [t.strip() for t in raw.split(",") if t.strip()]


def parse_since(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.strip().isdigit():
        raise SubscriptionError(f"since (or Last-Event-ID) must be a message id, got {raw!r}")
    return int(raw)


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def stream(request: Request) -> Response:
    return await RealtimeHttp(services(request)).stream(request)


async def token(request: Request) -> Response:
    return await RealtimeHttp(services(request)).token(request)


ROUTES: list[BaseRoute] = [
    Route("/api/realtime", stream, methods=["GET"]),
    Route("/api/realtime/token", token, methods=["POST"]),
]
