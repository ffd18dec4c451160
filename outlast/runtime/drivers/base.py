"""The seam between the executor and a driver.

The executor owns an attempt: the lease, the memo, the commits, the retry decisions and the
outcome. A driver owns the conversation with the user's code and reports it in ops
(`outlast.core.ops`). It never writes to the store itself, and the executor never knows which
driver it talks to.

    outcome = await driver.execute(host)

During `execute` the driver calls `host.apply(ops)` whenever steps finish, fail or suspend; each
call commits under the run's lease (raising `LeaseLost` if the lease is gone: stop at once,
write nothing more) and updates `host.run.memo` in place. `execute` returns how the attempt
ends: `RunComplete`, `FunctionError` or `Suspended`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from outlast.core.config import FunctionConfig
from outlast.core.models import LogLine, MemoEntry, RunState
from outlast.core.ops import Lease, Outcome, StepOp


class AttemptHost(Protocol):
    """One attempt of one run, as the executor offers it to a driver."""

    @property
    def run(self) -> RunState:
        """The run: its events, its function-level attempt count and its memo (kept current)."""
        ...

    @property
    def function(self) -> FunctionConfig: ...

    def now_ms(self) -> int: ...

    async def apply(self, ops: Sequence[StepOp], *, defer: bool = False) -> list[MemoEntry]:
        """Commit step ops under the lease; return their memo entries as stored (a `StepAttemptFailed`
        comes back `retrying` or, if its retries are spent, `failed`). Raises `LeaseLost`.
        `defer`: finished results may wait for the attempt's next commit (see `executor`)."""
        ...

    async def durable(self) -> None:
        """Before a step body starts: commit results `apply` let wait, so the body cannot use a
        result that is not stored (see `executor`). Raises `LeaseLost`."""
        ...

    def log(self, line: LogLine) -> None:
        """Keep a line the function logged; it is stored with the attempt's next commit."""
        ...

    async def paused(self) -> bool:
        """Whether the run's function is paused (then no new step body may start)."""
        ...

    @property
    def dispatch(self) -> Lease:
        """The lease this attempt runs under (an SDK names it when it checkpoints: `ctx.qi_id`)."""
        ...

    async def refresh(self) -> None:
        """Take in steps the SDK checkpointed on its own since the last call."""
        ...

    def completion_order(self) -> list[str]:
        """Keys of the run's finished steps in the order they finished (Inngest's `ctx.stack`)."""
        ...


class Driver(Protocol):
    async def execute(self, host: AttemptHost) -> Outcome:
        """Run the attempt to its end, reporting steps through `host.apply`."""
        ...


@runtime_checkable
class Connected(Protocol):
    """A driver that reaches an app only through connections held by this process (Connect):
    its runs are claimed only where one of the app's workers is connected."""

    def serves(self, app_id: str) -> bool: ...


__all__ = ["AttemptHost", "Connected", "Driver"]
