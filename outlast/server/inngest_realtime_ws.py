"""Inngest's realtime WebSocket: `GET /v1/realtime/connect?token=`, what inngest@4's
`subscribe()` (and so `useRealtime`) opens, on the same channels as everything else.

As on Inngest, the subscription token is the whole request: it names the channel and the topics
(minted by `POST /v1/realtime/token`, or `POST /api/realtime/token`), sent as `?token=` or as
`Authorization: Bearer <token>`. Without a valid one the upgrade is refused with HTTP 401
(`{"error": ...}` naming why: missing, altered, minted elsewhere, expired), as Inngest's server
answers; that holds in development too, where anyone may mint a token.

Once open, the server sends each message as one text frame of Inngest's JSON,
`{"kind": "data", "channel", "topic", "data", "created_at", "run_id"?, "id"}` (`id` is Outlast's
message id, an addition the official client ignores). The client may send Inngest's
`{"kind": "sub", "data": "<token>"}` (add that token's channel and topics to this socket) and
`{"kind": "unsub", "data": [{"channel", "name"}...]}`; any other frame is answered with
`{"kind": "error", "error": "..."}` and the socket stays open (Inngest ignores such frames).

Resuming: Inngest's protocol has none (a reconnecting client gets what is published after it
reconnects); here `?since=<message id>` (or `Last-Event-ID`) also delivers what was missed, as
`GET /api/realtime` does. Each subscription has the hub's bounded buffer, so a slow socket never
slows the others; past it the subscription reads on from the store and nothing is lost.
Keepalive is the server's WebSocket ping (uvicorn, every 20 s), as Inngest pings. When the
server stops, it closes the socket with 1001 and reason `closing`, the kind Inngest sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from outlast.core.realtime import Message, channel_problem
from outlast.errors import StoreError, SubscriptionError
from outlast.runtime.realtime import Hub, Subscription
from outlast.server.inngest_realtime import inngest_message
from outlast.server.realtime import parse_since
from outlast.server.realtime_tokens import Grant, TokenError
from outlast.server.services import Services

log = logging.getLogger("outlast.realtime")

CONNECT_PATH = "/v1/realtime/connect"
#: a client frame is a token or a list of topics
MAX_CLIENT_FRAME_CHARS = 64 * 1024
GOING_AWAY, INTERNAL_ERROR = 1001, 1011
NO_TOKEN = "a subscription token is required: ?token= from POST /v1/realtime/token"


@dataclass(slots=True)
class Feed:
    """One channel's subscription on a socket and the task writing it out."""

    subscription: Subscription
    #: the id of the last message written to the socket (a replacement resumes after it)
    sent: int
    task: asyncio.Task[None] | None = None
    dropped: bool = False


class RealtimeSocket:
    """One subscriber's socket, from the upgrade to the close."""

    def __init__(self, found: Services, ws: WebSocket) -> None:
        self.engine, self.tokens, self.ws = found.engine, found.tokens, ws
        self.feeds: dict[str, Feed] = {}
        self._send_lock = asyncio.Lock()
        self._stopping = False

    async def run(self) -> None:
        opened = await self._open()
        if not opened:
            return
        try:
            await self._read()
        finally:
            self._stopping = True
            for feed in list(self.feeds.values()):
                await self._drop(feed)

    # -- opening -----------------------------------------------------------------------------------

    async def _open(self) -> bool:
        """Check the token and subscribe before accepting; refuse with Inngest's status otherwise."""
        try:
            grant = self._grant(_token_of(self.ws))
        except TokenError as exc:
            await self._refuse(401, str(exc))
            return False
        try:
            since = parse_since(self.ws.headers.get("last-event-id") or self.ws.query_params.get("since"))
            subscription, since = await self._subscription(grant.channel, grant.topics, since)
        except SubscriptionError as exc:
            await self._refuse(400, str(exc))
            return False
        except StoreError as exc:
            await self._refuse(503, f"the store is unavailable: {exc}")
            return False
        await self.ws.accept()
        self._start(grant.channel, subscription, sent=since)
        return True

    async def _subscription(
        self, channel: str, topics: Iterable[str] | None, since: int | None
    ) -> tuple[Subscription, int]:
        """A hub subscription and where it starts (after the newest message when `since` is None):
        what its feed has "sent" until it writes a message."""
        if since is None:
            since = await self.engine.store.last_message_id()
        hub: Hub = await self.engine.realtime()
        return await hub.subscribe(channel, topics=topics, since=since), since

    def _grant(self, token: str) -> Grant:
        if not token:
            raise TokenError(NO_TOKEN)
        return self.tokens.read(token, now_ms=self.engine.clock.now_ms())

    async def _refuse(self, status: int, reason: str) -> None:
        """An HTTP answer instead of the upgrade; a 1008 close where the server cannot send one."""
        try:
            await self.ws.send_denial_response(JSONResponse({"error": reason}, status_code=status))
        except RuntimeError:
            await self.ws.close(1008, reason[:120])

    # -- writing -----------------------------------------------------------------------------------

    def _start(self, channel: str, subscription: Subscription, *, sent: int) -> None:
        feed = Feed(subscription, sent=sent)
        feed.task = asyncio.create_task(self._write(feed), name=f"outlast-realtime-ws {channel}")
        self.feeds[channel] = feed

    async def _write(self, feed: Feed) -> None:
        try:
            while (message := await feed.subscription.next_message()) is not None:
                await self._send(frame(message))
                feed.sent = message.id
        except (WebSocketDisconnect, RuntimeError, OSError):
            return  # the client went away; the reader sees it too
        except StoreError as exc:  # reading on from the store after an overflow
            log.warning("realtime socket closed: the store is unavailable: %s", exc)
            with contextlib.suppress(RuntimeError, OSError):
                await self.ws.close(INTERNAL_ERROR, "the store is unavailable; reconnect with since=")
            return
        if feed.dropped or self._stopping:
            return
        # the hub closed the subscription: the server is stopping
        with contextlib.suppress(RuntimeError, OSError):
            await self.ws.close(GOING_AWAY, "closing")

    async def _send(self, text: str) -> None:
        async with self._send_lock:
            await self.ws.send_text(text)

    async def _drop(self, feed: Feed) -> None:
        """End a feed; once this returns, nothing more of it is written (`sent` is final)."""
        feed.dropped = True
        feed.subscription.close()
        if feed.task is not None:
            feed.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feed.task

    # -- reading: sub / unsub ----------------------------------------------------------------------

    async def _read(self) -> None:
        while True:
            try:
                text = await self.ws.receive_text()
            except (WebSocketDisconnect, RuntimeError):
                return  # the client closed the socket (or the server did)
            except KeyError:
                continue  # a binary frame: Inngest ignores them
            problem = await self._handle(text)
            if problem is not None:
                with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
                    await self._send(json.dumps({"kind": "error", "error": problem}))

    async def _handle(self, text: str) -> str | None:
        """Act on one client frame; what is wrong with it, or None."""
        if len(text) > MAX_CLIENT_FRAME_CHARS:
            return f"the frame is {len(text)} characters long; the limit is {MAX_CLIENT_FRAME_CHARS}"
        try:
            request = json.loads(text)
        except ValueError:
            return 'the frame is not JSON: send {"kind": "sub", "data": "<token>"} or {"kind": "unsub", ...}'
        kind = request.get("kind") if isinstance(request, dict) else None
        if kind == "sub":
            return await self._subscribe(request.get("data"))
        if kind == "unsub":
            return await self._unsubscribe(request.get("data"))
        return f'unknown frame kind {kind!r}: a client sends "sub" or "unsub"'

    async def _subscribe(self, token: Any) -> str | None:
        if not isinstance(token, str):
            return 'a "sub" frame\'s data must be a subscription token (a string)'
        try:
            grant = self._grant(token)
        except TokenError as exc:
            return str(exc)
        old = self.feeds.get(grant.channel)
        wanted = None if grant.topics is None else set(grant.topics)
        if old is None:
            return await self._resubscribe(grant.channel, wanted)
        if old.subscription.topics is None or wanted is None:
            return await self._resubscribe(grant.channel, None)
        return await self._resubscribe(grant.channel, wanted | old.subscription.topics)

    async def _unsubscribe(self, topics: Any) -> str | None:
        if not isinstance(topics, list) or not all(_is_topic(t) for t in topics):
            return 'an "unsub" frame\'s data must be a list of topics: [{"channel": "...", "name": "..."}]'
        for channel in {t["channel"] for t in topics}:
            feed = self.feeds.get(channel)
            if feed is None:
                continue
            names = {t.get("name") for t in topics if t.get("channel") == channel}
            if None in names or feed.subscription.topics is None:
                kept: set[str] = set()  # a whole channel, or topics out of "every topic": drop it all
            else:
                kept = set(feed.subscription.topics) - names
            if kept:
                await self._resubscribe(channel, kept)
            else:
                del self.feeds[channel]
                await self._drop(feed)
        return None

    async def _resubscribe(self, channel: str, topics: set[str] | None) -> str | None:
        """Subscribe `channel` with `topics`; a channel already fed is replaced, resuming after
        what its old feed wrote (so nothing is written twice or skipped)."""
        if (problem := channel_problem(channel)) is not None:
            return problem
        since: int | None = None
        if (old := self.feeds.pop(channel, None)) is not None:
            await self._drop(old)
            since = old.sent
        try:
            subscription, since = await self._subscription(channel, topics, since)
        except (SubscriptionError, StoreError) as exc:
            return f"could not subscribe to {channel!r}: {exc}"
        self._start(channel, subscription, sent=since)
        return None


def frame(message: Message) -> str:
    """A message as Inngest's WebSocket subscribers read it, with Outlast's id besides."""
    return json.dumps({**inngest_message(message), "id": message.id}, separators=(",", ":"))


def _is_topic(topic: Any) -> bool:
    """Inngest's topic: a channel, and a name (none: the whole channel)."""
    return (
        isinstance(topic, dict)
        and isinstance(topic.get("channel"), str)
        and isinstance(topic.get("name"), (str, type(None)))
    )


def _token_of(ws: WebSocket) -> str:
    """Inngest's order: a bearer header, then `?token=` (browsers cannot set headers)."""
    header = ws.headers.get("authorization", "")
    if header[:7].lower() == "bearer " and header[7:].strip():
        return header[7:].strip()
    return ws.query_params.get("token", "")


async def connect(ws: WebSocket) -> None:
    found: Services = ws.app.state.services
    await RealtimeSocket(found, ws).run()


ROUTES: list[BaseRoute] = [WebSocketRoute(CONNECT_PATH, connect)]
