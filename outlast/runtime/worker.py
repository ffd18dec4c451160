"""A worker: claims due items within the engine's scopes, runs their attempts concurrently through
the driver of each function's runtime, keeps leases alive, and announces itself."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import socket
from typing import Any, NamedTuple

from outlast.core.ids import new_token
from outlast.core.models import AppScope, Claimed, Claims, WorkerInfo
from outlast.errors import StoreError
from outlast.runtime.deploys import restore_own_configs
from outlast.runtime.drivers.base import Driver
from outlast.runtime.engine import Engine, SendClaim
from outlast.runtime.executor import Executor
from outlast.runtime.matcher import Matcher
from outlast.runtime.pruner import Pruner

log = logging.getLogger("outlast.worker")
HEARTBEAT_S = 5.0
LISTEN_POLL_FACTOR = 10
#: a worker not heard from for this long is no longer listed, and its functions may be forgotten
WORKER_TIMEOUT_MS = 30_000
#: an item claimed by a worker that cannot run it is handed back, due again this much later
RELEASE_DELAY_MS = 1_000
#: the first wait when due work was passed over by the claim (flow control holds it back); it
#: doubles each time the same happens again, up to the poll interval
HELD_BACK_FIRST_S = 0.01


class _Claimed(NamedTuple):
    """One claim over the worker's scopes: runs taken; whether more may be due now (a scope gave
    all it was asked, or fired items that started runs); else the next due time it read."""

    runs: int
    more: bool
    next_due: int | None


class Worker:
    def __init__(self, engine: Engine, *, concurrency: int | None = None) -> None:
        self.engine = engine
        self.executor = Executor(engine)
        self.concurrency = concurrency or engine.settings.worker_concurrency
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{new_token()[:6]}"
        self.leases: dict[str, str] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.last_error: str | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listening: bool | None = None  # None: not asked yet; False: the store cannot tell us
        self._next_scope = 0
        #: idles in a row that found work due which the claim before had passed over
        self._held_back = 0
        self._matches = Matcher(engine)
        #: waiting in `_idle` (a send may then claim for this worker: `offer`)
        self._idling = False
        #: room promised to sends claiming for this worker, not yet handed over
        self._reserved = 0
        #: wake-ups so far, counted on the loop (`_ring`)
        self._wakes = 0
        #: a send that claimed for this worker while it idled, without filling its room: the count
        #: of wake-ups once that send's own has come, and the next due time its claim read
        self._handed: tuple[int, int | None] | None = None

    # -- running -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set, then let running attempts finish and leave the workers list."""
        self._attach()
        self.engine.idle_claimers.append(self.offer)
        chores = [
            asyncio.create_task(c)
            for c in (
                self._keep_leases(stop),
                self._refresh_functions(stop),
                self._announce(stop),
                Pruner(self.engine, self.owner).run(stop),
                self._matches.run(stop),
            )
        ]
        try:
            while not stop.is_set():
                assert self._wake is not None
                self._wake.clear()  # before the claim: a commit it does not see wakes us again
                free = self.concurrency - len(self.tasks) - self._reserved
                claimed = await self._claim_safely(free) if free > 0 else _Claimed(0, False, None)
                if claimed is None:
                    continue  # the store failed; `_claim_safely` waited before we try again
                if claimed.runs:
                    self._held_back = 0
                if not claimed.more:
                    await self._idle_until_claim_needed(stop, claimed.next_due)
        finally:
            if self.tasks:
                await asyncio.gather(*self.tasks, return_exceptions=True)
            for chore in chores:
                chore.cancel()
            self.engine.idle_claimers.remove(self.offer)
            self._detach()
            await self._leave()

    async def drain(self) -> None:
        """Run everything due now, and what that makes due now, until nothing is left.

        Only a claim that started with no attempt running and found nothing proves there is
        nothing left: one that started while an attempt ran may have read the queue before that
        attempt's last commit (its runs may have made more work due, or freed a concurrency slot).
        A claim that returns no run may still have fired cron ticks or timeouts whose runs are
        due now: when work is still due, one more claim takes them (a second empty one means
        what is due is held back by flow control).
        """
        self._attach()
        try:
            claimed_again = False
            while True:
                started_idle = not self.tasks
                await self._matches.match(new_only=True)
                claimed = (await self._claim(self.concurrency - len(self.tasks))).runs
                if not claimed and not self.tasks and started_idle:
                    if claimed_again or not await self._due_now():
                        return
                    claimed_again = True
                    continue
                claimed_again = False
                if self.tasks and (not claimed or len(self.tasks) >= self.concurrency):
                    await asyncio.wait(self.tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._detach()

    def _attach(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.engine.wakers.append(self._on_wake)
        if self._listening is None:  # other processes' work (SQLite files, PostgreSQL)
            self._listening = self.engine.store.add_listener(self._on_other_process)

    def _detach(self) -> None:
        if self._on_wake in self.engine.wakers:
            self.engine.wakers.remove(self._on_wake)

    def _on_other_process(self) -> None:
        self._matches.others = True  # another process may have left events for expression waits
        self._on_wake()

    def _on_wake(self) -> None:
        self._matches.wake()
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        if asyncio._get_running_loop() is loop:  # the engine woke us from our own loop: no self-pipe write
            self._ring()
        else:
            loop.call_soon_threadsafe(self._ring)

    def _ring(self) -> None:
        """On the loop: end the idle wait, counting the wake-up (see `_idle_until_claim_needed`)."""
        if self._wake is not None:
            self._wakes += 1
            self._wake.set()

    async def _idle_until_claim_needed(self, stop: asyncio.Event, next_due: int | None) -> None:
        """`_idle`, again while the only wake-up was that of a send that claimed for this worker
        (`offer`) and found no more than it took: that claim read the queue after the send's own
        commit, so a claim now would find nothing new. Any other wake-up (counted on the loop,
        where the send's hand-over happens too) means claim."""
        while True:
            await self._idle(stop, next_due)
            handed, self._handed = self._handed, None
            if handed is None or handed[0] != self._wakes or stop.is_set():
                return
            next_due = handed[1]
            assert self._wake is not None
            self._wake.clear()

    async def _idle(self, stop: asyncio.Event, next_due: int | None) -> None:
        """Wait for a wake-up, the next due item (`next_due`, as the claim just before read it in
        its own transaction), or the poll. No wake-up is lost: the flag was cleared before that
        claim, and a commit is announced only once it is done, so a commit the claim did not see
        has set it again by now (or will), and the wait below ends at once."""
        assert self._wake is not None
        timeout = self.engine.settings.poll_interval_ms / 1000
        if self._listening:
            timeout *= LISTEN_POLL_FACTOR  # notifications wake us; polling is only a safety net
        now = self.engine.clock.now_ms()
        timeout = idle_timeout(next_due=next_due, now_ms=now, poll_s=timeout, held_back=self._held_back)
        self._held_back = self._held_back + 1 if next_due is not None and next_due <= now else 0
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        self._idling = True
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._idling = False
        for w in waiters:
            w.cancel()

    async def _due_now(self) -> bool:
        due = await self._next_due()
        return due is not None and due <= self.engine.clock.now_ms()

    async def _next_due(self) -> int | None:
        times = []
        for scope in self.engine.claim_scopes():
            try:
                due = await self.engine.store.next_due_at(scope)
            except StoreError:
                continue
            if due is not None:
                times.append(due)
        return min(times, default=None)

    # -- claiming ------------------------------------------------------------------------------

    async def _claim_safely(self, free: int) -> _Claimed | None:
        try:
            return await self._claim(free)
        except StoreError as exc:
            self.last_error = str(exc)
            log.warning("claim failed, retrying: %s", exc)
            await asyncio.sleep(min(5.0, self.engine.settings.poll_interval_ms / 1000 * 10))
            return None

    async def _claim(self, free: int) -> _Claimed:
        """Claim from each scope in turn (a different one first each time, so no app starves)."""
        scopes = self.engine.claim_scopes()
        total, more, due = 0, False, []
        for i in range(len(scopes)):
            if free - total <= 0:
                more = True  # scopes not asked: claim again once there is room
                break
            scope = scopes[(self._next_scope + i) % len(scopes)]
            claims = await self._claim_in(scope, free - total)
            total += len(claims)
            more |= claims.full
            if claims.next_due_at is not None:
                due.append(claims.next_due_at)
        self._next_scope += 1
        return _Claimed(total, more, None if more else min(due, default=None))

    async def _claim_in(self, scope: AppScope, free: int) -> Claims:
        engine = self.engine
        claimed = await engine.store.claim(
            scope,
            self.owner,
            free,
            engine.clock.now_ms(),
            engine.settings.lease_ms,
            max_crashes=engine.settings.max_crashed_attempts,
            crash_backoff_scale=engine.settings.backoff_scale,
        )
        self._start(claimed)
        return claimed

    def _start(self, claimed: Claims) -> None:
        for item in claimed:
            self.leases[item.item_id] = item.lease_token
            task = asyncio.create_task(self._execute(item), context=contextvars.Context())
            self.tasks.add(task)
            task.add_done_callback(self._done(item.item_id))

    def offer(self) -> SendClaim | None:
        """While this worker idles with room, a send of this process claims for it in its own
        transaction (`Engine._ingest`), so the runs it starts begin at once, without a claim of
        their own. The room is promised until the send answers. One scope only: a claim over
        several takes turns between them."""
        free = self.concurrency - len(self.tasks) - self._reserved
        if not self._idling or free <= 0:
            return None  # decided before the scopes are built: a busy worker's sends pay nothing
        scopes = self.engine.claim_scopes()
        if len(scopes) != 1:
            return None
        self._reserved += free

        def take(claimed: Claims) -> None:
            self._reserved -= free
            self._start(claimed)
            if not claimed.full and self._idling:  # the send's wake-up, next, needs no claim
                self._handed = (self._wakes + 1, claimed.next_due_at)

        def release() -> None:
            self._reserved -= free
            self._on_wake()  # the send failed: claim as usual

        return SendClaim(scope=scopes[0], owner=self.owner, limit=free, take=take, release=release)

    def _done(self, item_id: str) -> Any:
        def callback(task: asyncio.Task[None]) -> None:
            self.tasks.discard(task)
            self.leases.pop(item_id, None)
            self._ring()  # capacity is free again
            if not task.cancelled() and task.exception() is not None:
                self.last_error = repr(task.exception())
                log.error("attempt crashed", exc_info=task.exception())

        return callback

    # -- one attempt ---------------------------------------------------------------------------

    async def _execute(self, item: Claimed) -> None:
        run = item.run
        function = self.engine.function(run.app_id, run.function_id)
        if function is None:
            await self.engine.refresh_registry(force=True)  # a sync may have just added it
            function = self.engine.function(run.app_id, run.function_id)
        driver = self._driver_for(function.runtime.kind if function else None, run.app_id, run.function_id)
        if function is None:
            from outlast.runtime.drivers.missing import MissingFunction, missing_config

            await self.executor.execute(item, missing_config(run.app_id, run.function_id), MissingFunction())
        elif driver is None:
            await self.engine.store.release(
                item.item_id, item.lease_token, self.engine.clock.now_ms() + RELEASE_DELAY_MS
            )
        else:
            await self.executor.execute(item, function, driver)

    def _driver_for(self, runtime: str | None, app_id: str, function_id: str) -> Driver | None:
        if runtime == "local" and self.engine.local_function(app_id, function_id) is None:
            return None  # another version of the app serves it
        return self.engine.drivers.get(runtime or "")

    # -- upkeep --------------------------------------------------------------------------------

    async def _keep_leases(self, stop: asyncio.Event) -> None:
        period = self.engine.settings.lease_ms / 3000
        while not stop.is_set():
            await asyncio.sleep(period)
            if not self.leases:
                continue
            until = self.engine.clock.now_ms() + self.engine.settings.lease_ms
            try:
                lost = await self.engine.store.extend_leases(self.owner, dict(self.leases), until)
            except StoreError as exc:
                self.last_error = str(exc)
                log.warning("lease extension failed: %s", exc)
                continue
            for item_id in lost:
                self.leases.pop(item_id, None)

    def info(self, started: int) -> list[WorkerInfo]:
        """This worker as the workers list shows it: one row per local app it serves (or one)."""
        now = self.engine.clock.now_ms()
        apps: list[tuple[str, list[str]]] = [
            (app_id, sorted(source.functions)) for app_id, source in sorted(self.engine.sources.items())
        ]
        return [
            WorkerInfo(
                id=self.owner if i == 0 else f"{self.owner}/{app_id}",
                app_id=app_id,
                host=socket.gethostname(),
                pid=os.getpid(),
                started_at=started,
                heartbeat_at=now,
                functions=functions,
                in_flight=len(self.tasks),
                last_error=self.last_error,
            )
            for i, (app_id, functions) in enumerate(apps or [("", [])])
        ]

    async def _announce(self, stop: asyncio.Event) -> None:
        started = self.engine.clock.now_ms()
        while not stop.is_set():
            try:
                await self.announce(started)
            except StoreError as exc:
                self.last_error = str(exc)
                log.warning("worker heartbeat failed: %s", exc)
            await asyncio.sleep(HEARTBEAT_S)

    async def announce(self, started: int) -> None:
        """One heartbeat of the worker's rows (which also keeps the functions it serves known);
        then take over a sender's provisional functions of its apps, put back the configurations
        of functions this worker is the newest to serve (see `deploys`), and forget local
        functions nobody has served for a while."""
        rows = self.info(started)
        for info in rows:
            await self.engine.store.heartbeat(info)
        stale_before = self.engine.clock.now_ms() - WORKER_TIMEOUT_MS
        live = await self.engine.store.list_workers(stale_before)
        await self._take_over_provisional(live)
        restored = await restore_own_configs(self.engine, worker_ids={r.id for r in rows}, live=live)
        if restored:
            log.info("the newest live worker of %s again: its configuration is stored", ", ".join(restored))
        gone = await self.engine.store.prune_functions(stale_before)
        if gone:
            log.info("no live worker serves %s any more", ", ".join(f"{app}/{fn}" for app, fn in gone))
            await self.engine.refresh_registry(force=True)

    async def _take_over_provisional(self, live: list[WorkerInfo]) -> None:
        """Replace the provisional functions a sender stored for an app this worker serves, as a
        starting worker does. They exist here only after a gap: this worker missed its heartbeats,
        its functions were forgotten, and a sender then stored its own. Those no live worker
        serves are forgotten, so their runs fail clearly instead of waiting for a worker."""
        settled = False
        for app_id in sorted(self.engine.sources):
            served = {f for w in live if w.app_id == app_id for f in w.functions}
            settled |= await self.engine.store.settle_provisional(app_id, served, self.engine.clock.now_ms())
        if settled:
            await self.engine.refresh_registry(force=True)

    async def _leave(self) -> None:
        """A worker that stops cleanly leaves the workers list at once."""
        for info in self.info(0):
            try:
                await self.engine.store.forget_worker(info.id)
            except StoreError as exc:
                log.warning("could not remove worker %s from the list: %s", info.id, exc)

    async def _refresh_functions(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(self.engine.settings.refresh_functions_ms / 1000)
            try:
                await self.engine.refresh_registry()
            except StoreError as exc:
                log.warning("could not refresh function configurations: %s", exc)


def idle_timeout(*, next_due: int | None, now_ms: int, poll_s: float, held_back: int) -> float:
    """How long an idle worker waits (a wake-up ends the wait sooner).

    Until the next item is due, at most the poll interval. An item already due was passed over
    by the claim that just found nothing: flow control holds it back (a concurrency limit), and
    the commit that frees its slot wakes us. Waiting 0 would spin on the database until then, so
    the wait starts at HELD_BACK_FIRST_S and doubles while it goes on (`held_back` times so far),
    in case the item became due only after the claim read the queue.
    """
    if next_due is None:
        return poll_s
    until_due = (next_due - now_ms) / 1000
    if until_due > 0:
        return min(poll_s, until_due)
    return min(poll_s, HELD_BACK_FIRST_S * float(2 ** min(held_back, 16)))
