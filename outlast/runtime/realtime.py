"""Realtime fan-out in one process: a `Hub` per store, and the `Subscription`s it feeds.

The hub reads messages once for every subscriber of the process: when the store says messages
were committed (its message listener: NOTIFY on PostgreSQL, wake-up sockets and the writer's own
count on SQLite) it reads on from its cursor and offers each message to the subscribers of its
channel. A subscriber never slows the hub or the others: each has a buffer of `buffer_limit`
messages; when it is full, the hub stops offering to that subscriber (an overflow, counted in
`Subscription.overflows`) and the subscriber, once it has drained its buffer, reads on from the
store after the last id it received, then rejoins. Nothing is lost while the store keeps it
(`OUTLAST_REALTIME_RETENTION`).

A subscription starts after `since` (a message id), or after the newest message when it is
None; it catches up from the store, then goes live once the hub has read no further than the
subscriber (so no message falls between the two).

A run's own channel is written only while the run is watched (`Store.watch_run`): subscribing to
`run:<id>` (or to a run's messages) watches the run first, and the hub renews the watch of every
run with an open subscription, for the retention plus a renewal, so a subscriber that drops
can resume with its last id for as long as messages are kept.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from outlast.core.realtime import MAX_CHANNEL_CHARS, Message, name_problem, topics_problem
from outlast.errors import StoreError, SubscriptionError

if TYPE_CHECKING:
    from outlast.storage.base import Store

log = logging.getLogger("outlast.realtime")
#: messages a subscriber may have waiting before it is cut off the live feed and reads on from the store
DEFAULT_BUFFER = 1000
#: messages the hub reads at once
READ_BATCH = 1000
#: how often the hub looks anyway: when nobody can tell it (poll), and as a safety net (heard)
POLL_S = 0.1
SAFETY_POLL_S = 1.0
#: how often the watches of runs with open subscriptions are renewed
RENEW_WATCHES_S = 60.0
RUN_CHANNEL_PREFIX = "run:"


class Hub:
    def __init__(
        self,
        store: Store,
        *,
        retention_ms: int,
        now_ms: Callable[[], int],
        buffer_limit: int = DEFAULT_BUFFER,
    ) -> None:
        self.store = store
        self.buffer_limit = buffer_limit
        self.retention_ms = retention_ms
        self.now_ms = now_ms
        #: open subscriptions per watched run id (live or catching up)
        self._watching: collections.Counter[str] = collections.Counter()
        self._renewed_at = asyncio.get_running_loop().time()
        #: the last id read for the live subscribers; None while there are none
        self.cursor: int | None = None
        self._live: dict[tuple[str, str], set[Subscription]] = {}
        self._poke = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._heard = store.add_message_listener(self._poke_threadsafe)
        self._task = self._loop.create_task(self._pump(), name="outlast-realtime-hub")

    async def subscribe(
        self,
        channel: str | None,
        *,
        topics: Iterable[str] | None = None,
        since: int | None = None,
        run_id: str | None = None,
    ) -> Subscription:
        """A subscription to `channel` (or, with `run_id` instead, to every message that run
        published, its own channel's too), with one of `topics` (or any), after message `since`
        (or after the newest one). SubscriptionError when an argument is bad."""
        wanted = list(topics) if topics is not None and not isinstance(topics, str) else topics
        if (channel is None) == (run_id is None):
            raise SubscriptionError("subscribe to a channel or to a run's messages (run_id), not both or neither")
        key = ("channel", channel) if channel is not None else ("run", run_id or "")
        what = "channel" if channel is not None else "run_id"
        problem = name_problem(key[1], what=what, limit=MAX_CHANNEL_CHARS) or topics_problem(wanted)
        if problem is not None:
            raise SubscriptionError(problem)
        if since is not None and (isinstance(since, bool) or not isinstance(since, int) or since < 0):
            raise SubscriptionError(f"since must be a message id (a whole number from 0), got {since!r}")
        if (watched := _watched_run(key)) is not None:
            await self._watch(watched)
        newest = await self.store.last_message_id()
        if since is None:
            since = newest
        elif since > newest:
            raise SubscriptionError(f"since {since} is in the future: the newest message id is {newest}")
        subscription = Subscription(self, key, None if wanted is None else frozenset(wanted), since)
        if watched is not None:
            self._watching[watched] += 1
        await subscription.catch_up()  # live from here on, unless `since` left more to read than a buffer
        return subscription

    async def _watch(self, run_id: str) -> None:
        """Have the run's own channel written for the retention and a renewal from now."""
        await self.store.watch_run(run_id, until_ms=self.now_ms() + self.retention_ms + int(RENEW_WATCHES_S * 1000))

    def unwatch(self, subscription: Subscription) -> None:
        """A subscription closed: its run's watch is no longer renewed for it (it lasts on)."""
        if (watched := _watched_run(subscription.key)) is not None:
            self._watching[watched] -= 1
            if self._watching[watched] <= 0:
                del self._watching[watched]

    async def _renew_watches(self) -> None:
        if self._loop.time() - self._renewed_at < RENEW_WATCHES_S:
            return
        self._renewed_at = self._loop.time()
        for run_id in list(self._watching):
            await self._watch(run_id)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        for subscribers in list(self._live.values()):
            for subscription in list(subscribers):
                subscription.close()

    # -- subscribers joining and leaving -------------------------------------------------------

    def join(self, subscription: Subscription, caught_up_to: int) -> bool:
        """Make `subscription` live if the hub has read no further than `caught_up_to` (what the
        subscriber read from the store itself); False: it must read on first."""
        if self.cursor is not None and self.cursor > caught_up_to:
            return False
        if self.cursor is None:
            self.cursor = caught_up_to
        self._live.setdefault(subscription.key, set()).add(subscription)
        self._poke.set()  # what was committed while nobody was live has not been read yet
        return True

    def leave(self, subscription: Subscription) -> None:
        subscribers = self._live.get(subscription.key)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._live[subscription.key]
        if not self._live:
            self.cursor = None

    # -- reading ---------------------------------------------------------------------------------

    def _poke_threadsafe(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed
            self._loop.call_soon_threadsafe(self._poke.set)

    async def _pump(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SAFETY_POLL_S if self._heard else POLL_S):
                    await self._poke.wait()
            self._poke.clear()
            try:
                await self._renew_watches()
                while self.cursor is not None and await self._read_once():
                    pass
            except StoreError as exc:
                log.warning("reading realtime messages failed, will try again: %s", exc)
            except Exception:  # the hub must outlive any one bad read
                log.exception("realtime fan-out failed; it goes on")

    async def _read_once(self) -> bool:
        """Read on from the cursor and offer what came; True if there may be more."""
        assert self.cursor is not None
        page = await self.store.read_messages(channels=None, after_id=self.cursor, limit=READ_BATCH)
        if self.cursor is None or not page:
            return False
        for message in page:
            for subscription in [*self._live.get(("channel", message.channel), ()), *self._by_run(message)]:
                subscription.offer(message)
        if self.cursor is None:  # every subscriber left (or fell behind) meanwhile
            return False
        self.cursor = max(self.cursor, page[-1].id)
        return len(page) == READ_BATCH

    def _by_run(self, message: Message) -> set[Subscription]:
        return self._live.get(("run", message.run_id), set()) if message.run_id is not None else set()


class Subscription:
    """Messages of one channel in id order: `async for m in subscription` (or `await next_message()`)."""

    def __init__(self, hub: Hub, key: tuple[str, str], topics: frozenset[str] | None, since: int) -> None:
        self.hub = hub
        #: ("channel", name) or ("run", run id)
        self.key = key
        self.topics = topics
        #: the id of the last message put in the buffer (resume after it)
        self.cursor = since
        #: how many times the buffer was full and the subscriber read on from the store
        self.overflows = 0
        self.live = False
        self.closed = False
        self._buffer: collections.deque[Message] = collections.deque()
        self._ready = asyncio.Event()

    def offer(self, message: Message) -> None:
        """From the hub: queue the message, or, with the buffer full, leave the live feed."""
        if message.id <= self.cursor or (self.topics is not None and message.topic not in self.topics):
            return
        if len(self._buffer) >= self.hub.buffer_limit:
            self.overflows += 1
            self.live = False
            self.hub.leave(self)
            log.info("a subscriber of %s %r fell behind after id %d; it reads on", *self.key, self.cursor)
        else:
            self._buffer.append(message)
            self.cursor = message.id
        self._ready.set()

    async def next_message(self) -> Message | None:
        """The next message, waiting for it; None once the subscription is closed."""
        while True:
            if self._buffer:
                return self._buffer.popleft()
            if self.closed:
                return None
            if not self.live:
                await self.catch_up()
                continue
            self._ready.clear()
            await self._ready.wait()

    async def catch_up(self) -> None:
        """Read what the store holds after the cursor; go live once nothing falls in between."""
        newest = await self.hub.store.last_message_id()
        topics = None if self.topics is None else sorted(self.topics)
        kind, name = self.key
        page = await self.hub.store.read_messages(
            channels=[name] if kind == "channel" else None,
            run_id=name if kind == "run" else None,
            after_id=self.cursor,
            topics=topics,
            limit=self.hub.buffer_limit,
            until_id=newest,
        )
        if self.closed or self.live:
            return
        self._buffer.extend(page)
        if page:
            self.cursor = page[-1].id
        if len(page) < self.hub.buffer_limit:
            self.cursor = max(self.cursor, newest)
            self.live = self.hub.join(self, self.cursor)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.hub.leave(self)
            self.hub.unwatch(self)
            self._ready.set()

    def __aiter__(self) -> AsyncIterator[Message]:
        return self

    async def __anext__(self) -> Message:
        message = await self.next_message()
        if message is None:
            raise StopAsyncIteration
        return message


def _watched_run(key: tuple[str, str]) -> str | None:
    """The run whose own channel a subscription reads, if any."""
    kind, name = key
    if kind == "run":
        return name
    return name.removeprefix(RUN_CHANNEL_PREFIX) if name.startswith(RUN_CHANNEL_PREFIX) else None


class Subscribing:
    """`async with app.subscribe(channel, topics=, since=) as messages: async for m in messages`."""

    def __init__(self, hub: Callable[[], Awaitable[Hub]], channel: str | None, **options: Any) -> None:
        self._hub = hub
        self._channel = channel
        self._options = options
        self._subscription: Subscription | None = None

    async def __aenter__(self) -> Subscription:
        hub = await self._hub()
        self._subscription = await hub.subscribe(self._channel, **self._options)
        return self._subscription

    async def __aexit__(self, *exc: object) -> None:
        if self._subscription is not None:
            self._subscription.close()
