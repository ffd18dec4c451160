"""What the SDK's `Step` asks of the attempt it runs in (the local driver implements it).

The SDK parses and checks the user's arguments (durations, expressions, event payloads) and
calls these with plain values; the host looks up the memo and either answers from it or
records the step and, for a step that must wait, suspends the handler.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from outlast.core.retry import StepPolicy


class StepHost(Protocol):
    def now_ms(self) -> int: ...

    async def run(
        self,
        step_id: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        policy: StepPolicy | None = None,
    ) -> Any:
        """`fn(*args, **kwargs)`'s JSON value, memoized; StepError once its retries are spent."""
        ...

    async def sleep_until(self, step_id: str, until_ms: int) -> None: ...

    async def wait_for_event(
        self, step_id: str, *, event: str, expression: str | None, expires_at: int, lookback_ms: int | None = None
    ) -> dict[str, Any] | None:
        """The matching event (Inngest's shape) or None when the wait timed out."""
        ...

    async def wait_for_many(
        self,
        step_id: str,
        *,
        mode: str,
        parts: tuple[tuple[str, str | None], ...],
        expires_at: int,
        lookback_ms: int | None,
    ) -> Any:
        """wait_for_any's event (None on timeout), or wait_for_all's list of events and Nones."""
        ...

    async def wait_for_signal(
        self, step_id: str, *, signal: str, expires_at: int, on_conflict: str
    ) -> dict[str, Any] | None:
        """The signal's data, or None when the wait timed out; StepError on a conflict."""
        ...

    async def invoke(self, step_id: str, *, function_slug: str, data: dict[str, Any], expires_at: int | None) -> Any:
        """The invoked function's output; StepError when it failed, timed out or does not exist."""
        ...

    async def send_events(self, step_id: str, events: list[Any]) -> list[str]:
        """Validate and send events once for the run; their ids."""
        ...

    async def publish(self, step_id: str, *, channel: str, topic: str, data: Any, data_bytes: int) -> None:
        """Publish a realtime message once for the run (`data` is plain JSON already)."""
        ...
