"""The executor: one attempt of a run, through whichever driver runs the function's code.

It holds the lease (the worker's keeper extends it), turns the driver's ops into commits
(`outlast.core.ops`), retries a commit the store could not make while the lease can still be
ours, and commits the attempt's outcome. What happens is told to observers as typed events.

A commit that reports the lease lost, or a driver that raises `LeaseLost`, ends the attempt
at once with nothing more written: another worker owns the run, or it was cancelled.

Deferred checkpoints. A step result the driver lets wait (`apply(..., defer=True)`: the local
driver's plain step results) is kept in memory and committed with the attempt's next commit: a
step that cannot wait (an error, a retry, a sent event, a wait, a child run, a published
message), the attempt's suspension or end. By default it waits no longer than until the next
step BODY is about to start: the driver calls `durable` first, which commits what waits (and
awaits commits under way that carry some) before the body runs. So a step's result is stored
before anything that can depend on it leaves the function: only the function's own code between
steps (which replays anyway) runs before it is durable. A run whose steps run one after another
commits each result as the next body starts, and the last with its end (a 3-step run: the send,
two checkpoints, the end); a step followed by a sleep or wait rides with it; results of parallel
steps that finish together are stored in one commit. If the process dies before, the steps whose
results were not stored run again on the next attempt, and no later step body has used them.

`Settings.step_commit_delay_ms` above 0 (opt-in) lets results wait longer: later step bodies
run before they are durable, and a timer commits them after the delay if no other commit took
them first. The cost: if the process dies within the delay, the steps since the last commit run
again and recompute what later step bodies already used.

Either way, nothing a step caused through the engine (a sent event, a child run, a published
message, a wait) is ever deferred: such a commit takes the deferred results with it (after any
commit already carrying some has landed), so they are stored no later than anything that depends
on them. Observers hear of a deferred step (`StepEnded`) once it is committed; the store's
readers (the dashboard, the API) see it once committed. An attempt that loses its lease drops
what waits (`abandon`). A deferred value the database refuses is stored as the step's failure
and the attempt ends, its item due again at once (`_refusal_of`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from outlast.core import logcontext
from outlast.core.config import FunctionConfig
from outlast.core.defers import is_defer
from outlast.core.interrupts import LeaseLost
from outlast.core.models import (
    RETRYING,
    Claimed,
    Commit,
    CommitResult,
    Finish,
    LogLine,
    MemoEntry,
    RunState,
    StepRecord,
    StepWrite,
    Suspend,
)
from outlast.core.observe import AttemptEnded, AttemptStarted, StepEnded
from outlast.core.ops import FunctionError, Lease, OpRules, Outcome, StepFailed, StepOp, outcome_commit, step_commit
from outlast.core.retry import ErrorInfo, RetryPolicy
from outlast.core.trace_context import carry_trace
from outlast.errors import StoreDataError, StoreError
from outlast.runtime.drivers.base import Driver

if TYPE_CHECKING:
    from outlast.runtime.engine import Engine

log = logging.getLogger("outlast.worker")


class Attempt:
    """One attempt as a driver sees it (`AttemptHost`)."""

    def __init__(self, engine: Engine, claimed: Claimed, function: FunctionConfig) -> None:
        self.engine = engine
        self._run = claimed.run
        self._function = function
        self.lease = Lease(item_id=claimed.item_id, token=claimed.lease_token)
        self.rules = op_rules(engine, function)
        #: a step of this attempt is pending or due to retry: the attempt can only suspend
        self.suspended = False
        #: this attempt made progress after function-level failures: the count starts again
        self.attempts_reset = False
        #: the dispatch was named to the SDK since the memo was last read (see `dispatch`)
        self._named = False
        #: calls made at once (a parallel group) each refresh first: all wait for one reload
        self._reloading = asyncio.Lock()
        self._logs: list[LogLine] = []
        #: step results remembered but not committed yet (see "Deferred checkpoints" above)
        self._deferred: Commit | None = None
        #: the longest a deferred result waits for the next commit; 0: until the next step body
        self._defer_s = engine.settings.step_commit_delay_ms / 1000
        #: commits under way that carry deferred results (`_commit_with_deferred`)
        self._landing: set[asyncio.Future[None]] = set()
        self._flush_timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        #: a commit carrying deferred results found the lease gone: commit nothing more
        self._lost = False

    @property
    def run(self) -> RunState:
        return self._run

    @property
    def dispatch(self) -> Lease:
        """The lease, as a call names it to the SDK (`ctx.qi_id`). Once named, the SDK may
        checkpoint steps under it through any server process on this database, not only this
        one: the next `refresh` reads them from the store."""
        self._named = True
        return self.lease

    async def refresh(self) -> None:
        """Take in steps an SDK checkpointed under this attempt's lease (`runtime.checkpoints`):
        the SDK waits for each checkpoint's answer, so they are committed by the time its call
        has answered and the driver makes its next one."""
        async with self._reloading:
            if not self._named:
                return
            self._named = False
            run = await self.engine.reads.get_run(self._run.run_id)
            for key, entry in memo_of(run.steps if run is not None else []).items():
                if key not in self._run.memo:
                    self._run.memo[key] = replace(entry, seq=len(self._run.memo))
                    if entry.final:
                        self._progressed()

    @property
    def function(self) -> FunctionConfig:
        return self._function

    def now_ms(self) -> int:
        return self.engine.clock.now_ms()

    def log(self, line: LogLine) -> None:
        self._logs.append(line)

    async def paused(self) -> bool:
        return await self.engine.paused.is_paused(self._run.app_id, self._run.function_id)

    def completion_order(self) -> list[str]:
        done = [m for m in self._run.memo.values() if m.final and not is_defer(m.kind)]
        return [m.key for m in sorted(done, key=lambda m: (m.ended_at or 0, m.seq))]

    async def apply(self, ops: Sequence[StepOp], *, defer: bool = False) -> list[MemoEntry]:
        commit = step_commit(
            self._run, ops, lease=self.lease, now=self.now_ms(), rules=self.rules, logs=self._take_logs()
        )
        if defer and _deferrable(commit):
            self._defer(commit)
            return [self._run.memo[op.key] for op in ops]
        try:
            await self._commit_with_deferred(commit)
        except StoreDataError as exc:  # a value the database cannot hold: those steps fail, clearly
            commit = step_commit(
                self._run, [_refused(op, exc) for op in ops], lease=self.lease, now=self.now_ms(), rules=self.rules
            )
            await self._commit(commit)
        for write in commit.steps:
            self._remember(write)
        self._announce(commit.steps)
        return [self._run.memo[op.key] for op in ops]

    def _defer(self, commit: Commit) -> None:
        """Remember a checkpoint's steps now; commit them with the next commit (or, with a delay
        set, when it runs out)."""
        for write in commit.steps:
            self._remember(write)
        if self._deferred is not None:
            self._deferred.steps.extend(commit.steps)
            self._deferred.logs.extend(commit.logs)
            return
        self._deferred = commit
        if self._defer_s > 0:
            self._flush_timer = asyncio.get_running_loop().call_later(self._defer_s, self._start_flush)

    async def durable(self) -> None:
        """Commit the results waiting so far, and wait for commits under way that carry some:
        called before a step body starts, so no body runs with a result that is not stored.
        Raises `LeaseLost` if one of those commits found the lease gone (or ended the attempt
        over a refused value). With a delay set, results wait on (the opt-in trade)."""
        if self._defer_s <= 0:
            await self._commit_with_deferred(None)

    def abandon(self) -> None:
        """The attempt ended without its lease: deferred results are not committed."""
        self._take_deferred()

    def _take_deferred(self) -> Commit | None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        deferred, self._deferred = self._deferred, None
        return deferred

    def _start_flush(self) -> None:
        """The delay ran out before the next commit: commit the deferred results alone."""
        self._flush_timer = None
        flush = asyncio.get_running_loop().create_task(self._flush_deferred())
        self._flushes.add(flush)  # held until done: the loop keeps only weak references to tasks
        flush.add_done_callback(self._flushes.discard)

    async def _flush_deferred(self) -> None:
        with contextlib.suppress(LeaseLost):  # the next commit or body finds it (`_lost`)
            await self._commit_with_deferred(None)

    async def _commit_with_deferred(self, commit: Commit | None) -> None:
        """Commit `commit` (None: only the deferred results) with the deferred results ahead of it,
        in one transaction, once the commits already under way that carry deferred results have
        landed: whatever the caller saw is then stored no later than this commit. What it takes
        is under way (`_landing`) from the moment it is taken, for callers that come meanwhile.
        If it fails other than by refusing a value of its own, the results it took may not be
        stored: the attempt goes no further (`_lost`)."""
        earlier = set(self._landing)
        deferred = self._take_deferred()
        if deferred is None:
            await self._after(earlier)
            if commit is not None:
                await self._commit(commit)
            return
        landed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._landing.add(landed)
        try:
            await self._after(earlier)
            if commit is None:
                await self._commit_deferred(deferred)
            else:
                merged = replace(commit, steps=deferred.steps + commit.steps, logs=deferred.logs + commit.logs)
                await self._commit_merged(merged, deferred)
        except StoreDataError:
            raise
        except BaseException:
            self._lost = True
            raise
        finally:
            self._landing.discard(landed)
            landed.set_result(None)

    async def _after(self, earlier: set[asyncio.Future[None]]) -> None:
        """Wait for `earlier` commits carrying deferred results; `LeaseLost` if one failed."""
        if earlier:
            await asyncio.wait(earlier)
        if self._lost:
            raise LeaseLost()

    async def _commit_merged(self, merged: Commit, deferred: Commit) -> None:
        try:
            await self._commit(merged)
        except StoreDataError:
            await self._refusal_of(deferred)  # else the refused value is one of the commit's own
            raise
        self._announce(deferred.steps)

    async def _commit_deferred(self, deferred: Commit) -> None:
        try:
            await self._commit(deferred)
        except StoreDataError:
            await self._refusal_of(deferred)
            return
        self._announce(deferred.steps)

    async def _refusal_of(self, deferred: Commit) -> None:
        """The database refused a commit holding deferred results: commit each alone. The handler
        has already gone on with their values: if one is refused, it is stored as failed and the
        attempt ends (`LeaseLost`), its item due again now, so the next attempt meets the failure
        where the step was."""
        if await self._refused_alone(deferred):
            await self.engine.store.release(self.lease.item_id, self.lease.token, self.now_ms())
            raise LeaseLost()

    async def _refused_alone(self, deferred: Commit) -> bool:
        """Commit each deferred result alone, a refused one as failed; whether any was refused."""
        refused = False
        for i, w in enumerate(deferred.steps):
            try:
                await self._commit(replace(deferred, steps=[w], logs=deferred.logs if i == 0 else []))
                self._announce([w])
            except StoreDataError as exc:
                refused = True
                self._run.memo.pop(w.key, None)
                failed = step_commit(
                    self._run, [_refused_write(w, exc)], lease=self.lease, now=self.now_ms(), rules=self.rules
                )
                await self._commit(failed)
                self._announce(failed.steps)
        return refused

    async def end(self, outcome: Outcome) -> Commit:
        commit = outcome_commit(
            self._run,
            outcome,
            lease=self.lease,
            now=self.now_ms(),
            rules=self.rules,
            suspended_in_attempt=self.suspended,
            attempts_reset=self.attempts_reset,
            logs=self._take_logs(),
        )
        try:
            await self._commit_with_deferred(commit)
        except StoreDataError as exc:  # e.g. an output the database cannot hold: the run fails, saying so
            refused = FunctionError(
                error=ErrorInfo(
                    name="StoreDataError", no_retry=True, message=f"the database refused the run's outcome: {exc}"
                )
            )
            commit = outcome_commit(
                self._run,
                refused,
                lease=self.lease,
                now=self.now_ms(),
                rules=self.rules,
                suspended_in_attempt=self.suspended,
                attempts_reset=self.attempts_reset,
            )
            await self._commit(commit)
        return commit

    def _progressed(self) -> None:
        """A step finished or an async step began: as on Inngest, where the next call is a new
        queue item, function-level attempts count afresh (`ctx.attempt` 0, all retries again)."""
        if self._run.attempt:
            self._run.attempt = 0
            self.attempts_reset = True

    def _take_logs(self) -> list[LogLine]:
        logs, self._logs = self._logs, []
        return logs

    def _remember(self, w: StepWrite) -> None:
        previous = self._run.memo.get(w.key)
        self._run.memo[w.key] = MemoEntry(
            key=w.key,
            step_id=w.step_id,
            kind=w.kind,
            status=w.status,
            attempts=w.attempts,
            output=w.output,
            error=w.error,
            started_at=w.started_at,
            ended_at=w.ended_at,
            deadline=w.deadline,
            seq=previous.seq if previous is not None else len(self._run.memo),
        )
        if w.status not in ("completed", "failed"):
            self.suspended = True
        if w.status != RETRYING:
            self._progressed()

    def _announce(self, writes: Sequence[StepWrite]) -> None:
        """Tell observers of committed step writes."""
        if not self.engine.bus:
            return
        for w in writes:
            self.engine.bus.emit(
                StepEnded(
                    run_id=self._run.run_id,
                    app_id=self._run.app_id,
                    function_id=self._run.function_id,
                    step_id=w.step_id,
                    kind=w.kind,
                    status=w.status,
                    attempt=w.attempts - 1,
                    error=w.error,
                    duration_ms=max(0, (w.ended_at or self.now_ms()) - (w.started_at or self.now_ms())),
                )
            )

    async def _commit(self, commit: Commit) -> None:
        if commit.events and self.engine.bus.trace_for is not None:
            carry_trace(commit.events, self.engine.bus.trace_for(self._run.run_id))
        result = await self._commit_retrying(commit)
        if not result.ok:
            raise LeaseLost()

    async def _commit_retrying(self, commit: Commit) -> CommitResult:
        """A StoreError means nothing was committed, and a commit is safe to repeat (the lease token,
        insert-once memo rows and event ids make a repeat harmless): retry with backoff while the
        lease can still be ours, then give the run up to whoever takes the expired lease."""
        delay, spent = 0.05, 0.0
        while True:
            try:
                return await self.engine.commit(commit)
            except StoreDataError:
                raise  # the database refused a value: the same commit would fail again
            except StoreError as exc:
                if spent + delay > self.engine.settings.lease_ms / 1000:
                    log.warning("giving up a commit of run %s: %s", commit.run_id, exc)
                    raise LeaseLost() from exc
                log.warning("commit of run %s failed, retrying: %s", commit.run_id, exc)
                await asyncio.sleep(delay)
                spent, delay = spent + delay, min(delay * 2, 2.0)


def _refused(op: StepOp, exc: StoreDataError) -> StepFailed:
    return StepFailed(
        key=op.key,
        step_id=op.step_id,
        error=ErrorInfo(
            name="StoreDataError", no_retry=True, message=f"the database refused step {op.step_id!r}'s result: {exc}"
        ),
    )


def _deferrable(commit: Commit) -> bool:
    """Only finished step results may wait: nothing the commit would make visible besides them."""
    return (
        not (commit.events or commit.messages or commit.waits or commit.signal_waits)
        and commit.outcome is None
        and all(w.status == "completed" for w in commit.steps)
    )


def _refused_write(w: StepWrite, exc: StoreDataError) -> StepFailed:
    return StepFailed(
        key=w.key,
        step_id=w.step_id,
        error=ErrorInfo(
            name="StoreDataError",
            no_retry=True,
            message=f"the database refused step {w.step_id!r}'s result: {exc}",
        ),
    )


def memo_of(steps: Sequence[StepRecord]) -> dict[str, MemoEntry]:
    """A run's stored steps as an attempt's memo."""
    return {
        s.key: MemoEntry(
            key=s.key,
            step_id=s.id,
            kind=s.kind,
            status=s.status,
            attempts=s.attempts,
            output=s.output,
            error=s.error,
            started_at=s.started_at,
            ended_at=s.ended_at,
            deadline=s.deadline,
            seq=i,
        )
        for i, s in enumerate(steps)
    }


def op_rules(engine: Engine, function: FunctionConfig) -> OpRules:
    """What translating ops needs besides the run: the function's retry policy, the limits."""
    return OpRules(
        policy=RetryPolicy(
            max_attempts=function.max_attempts,
            backoff_scale=engine.settings.backoff_scale,
            rng=engine.rng,
            backoff=function.backoff,
        ),
        max_output_bytes=engine.settings.max_step_output_bytes,
        max_steps_per_run=engine.settings.max_steps_per_run,
        known_function=engine.known_function,
    )


class Executor:
    """Runs attempts for a worker; knows drivers only through `Driver.execute`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def execute(self, claimed: Claimed, function: FunctionConfig, driver: Driver) -> str:
        """Run one attempt to its end; return what became of it (see `AttemptEnded.outcome`)."""
        attempt = Attempt(self.engine, claimed, function)
        run = claimed.run
        started = time.monotonic()
        bound = logcontext.current.set(
            logcontext.RunContext(
                run_id=run.run_id, app_id=run.app_id, function_id=run.function_id, attempt=run.attempt
            )
        )
        self._started(run)
        try:
            outcome = await driver.execute(attempt)
            commit = await attempt.end(outcome)
        except LeaseLost:
            attempt.abandon()
            return self._ended(run, "lost", started, None)
        finally:
            logcontext.current.reset(bound)
        label, error = _describe(commit)
        return self._ended(run, label, started, error, ended=isinstance(commit.outcome, Finish))

    def _started(self, run: RunState) -> None:
        if self.engine.bus:
            self.engine.bus.emit(
                AttemptStarted(
                    run_id=run.run_id,
                    app_id=run.app_id,
                    function_id=run.function_id,
                    attempt=run.attempt,
                    first_start=run.attempt == 0 and not run.memo,
                    created_at=run.created_at,
                    started_at=self.engine.clock.now_ms(),
                    trace=run.events[0].trace if run.events else None,
                )
            )

    def _ended(
        self, run: RunState, label: str, started: float, error: dict[str, object] | None, *, ended: bool = False
    ) -> str:
        if self.engine.bus:
            now = self.engine.clock.now_ms()
            self.engine.bus.emit(
                AttemptEnded(
                    run_id=run.run_id,
                    app_id=run.app_id,
                    function_id=run.function_id,
                    outcome=label,
                    attempt=run.attempt,
                    duration_ms=int((time.monotonic() - started) * 1000),
                    error=error,
                    run_duration_ms=now - (run.started_at or now) if ended else None,
                )
            )
        return label


def _describe(commit: Commit) -> tuple[str, dict[str, object] | None]:
    outcome = commit.outcome
    if isinstance(outcome, Finish):
        return outcome.status, outcome.error
    assert isinstance(outcome, Suspend)
    return ("retrying", outcome.error) if outcome.error is not None else ("suspended", None)
