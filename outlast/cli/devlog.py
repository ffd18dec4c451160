"""The dev log: one line per run state change, printed by `outlast dev` (and `worker -v`).

Besides what this process's workers observe, it follows cancellations made anywhere (another
terminal's `outlast cancel`, the dashboard, a cancel event) through the `inngest/function.cancelled`
events in the store, and says what became of an attempt that lost its lease.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from outlast.cli.common import stamp
from outlast.core.events import FUNCTION_CANCELLED
from outlast.core.models import EventFilter
from outlast.core.observe import AttemptEnded, AttemptStarted, Observation, StepEnded
from outlast.errors import StoreError
from outlast.runtime.engine import Engine

#: how often the dev log looks for cancellations made by other processes
FOLLOW_S = 1.0


class DevLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.cancelled: set[str] = set()
        self._checks: set[asyncio.Task[None]] = set()

    def line(self, run_id: str, function_id: str, what: str) -> None:
        print(f"{stamp()}  {run_id}  {function_id:<24} {what}", flush=True)

    def observe(self, o: Observation) -> None:
        if isinstance(o, AttemptStarted):
            self.line(o.run_id, o.function_id, "running")
        elif isinstance(o, StepEnded) and o.status in ("retrying", "failed") and o.error:
            then = "retrying" if o.status == "retrying" else "failed"
            self.line(
                o.run_id, o.function_id, f"step {o.step_id!r} attempt {o.attempt + 1} failed, {then}: {_error(o.error)}"
            )
        elif isinstance(o, AttemptEnded) and o.outcome == "lost":
            task = asyncio.get_running_loop().create_task(self._explain_lost(o))
            self._checks.add(task)
            task.add_done_callback(self._checks.discard)
        elif isinstance(o, AttemptEnded):
            why = f"  {_error(o.error)}" if o.error else ""
            self.line(o.run_id, o.function_id, f"{o.outcome}{why}")

    async def _explain_lost(self, o: AttemptEnded) -> None:
        """A lost lease is a cancellation (say so once) or another worker taking the run over."""
        try:
            run = await self.engine.reads.get_run(o.run_id)
        except StoreError:
            run = None
        if run is not None and run.status == "cancelled":
            self._cancelled(o.run_id, o.function_id)
        else:
            self.line(o.run_id, o.function_id, "lost its lease (another worker goes on with it)")

    def _cancelled(self, run_id: str, function_id: str) -> None:
        if run_id not in self.cancelled:
            self.cancelled.add(run_id)
            self.line(run_id, function_id, "cancelled")

    async def follow_cancellations(self, stop: asyncio.Event) -> None:
        """Print a `cancelled` line for each run cancelled from now on, by whichever process."""
        since = self.engine.clock.now_ms()
        seen: set[str] = set()
        while not stop.is_set():
            try:
                found = await self.engine.reads.list_events(EventFilter(name=FUNCTION_CANCELLED, since=since))
            except StoreError:
                found = []
            for event in reversed(found):
                if event.id in seen:
                    continue
                seen.add(event.id)
                since = max(since, event.ts - 1000)
                await self._print_cancel(event.data)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), FOLLOW_S)

    async def _print_cancel(self, data: dict[str, Any]) -> None:
        run_id = str(data.get("run_id", ""))
        try:
            run = await self.engine.reads.get_run(run_id)
        except StoreError:
            run = None
        self._cancelled(run_id, run.function_id if run is not None else str(data.get("function_id", "")))


def _error(error: dict[str, Any]) -> str:
    return f"{error.get('name', 'Error')}: {error.get('message', '')}"
