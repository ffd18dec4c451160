"""What a handler receives: the run's events, ids, attempt, steps and a replay-aware logger."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic

from outlast.core import scope
from outlast.events import D, Event

if TYPE_CHECKING:
    from outlast.step import Step, SyncStep

LogSink = Callable[[str, str], None]  # (level name, message)


class ReplayAwareLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Drops records while the run replays memoized steps, so each line is logged once; the lines
    it lets through at INFO and above are also kept with the run (`sink`), for its trace."""

    def __init__(
        self,
        logger: logging.Logger,
        is_replaying: Callable[[], bool],
        extra: dict[str, Any],
        sink: LogSink | None = None,
    ) -> None:
        super().__init__(logger, extra)
        self._is_replaying = is_replaying
        self._sink = sink

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if self._is_replaying():
            return
        if self._sink is not None and level >= logging.INFO:
            try:
                message = str(msg) % args if args else str(msg)
            except (TypeError, ValueError):
                message = f"{msg} {args}"
            self._sink(logging.getLevelName(level), message)
        super().log(level, msg, *args, **kwargs)

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - logging's name
        return not self._is_replaying() and (self._sink is not None or self.logger.isEnabledFor(level))


@dataclass
class _BaseContext(Generic[D]):
    """`Context[Model]`: `ctx.event.data` (and each of `ctx.events`) is the model of the
    function's typed trigger (`EventType`); a bare `Context` has dict data."""

    event: Event[D]
    events: list[Event[D]]
    run_id: str
    function_id: str
    logger: ReplayAwareLogger
    _function_attempt: int

    @property
    def attempt(self) -> int:
        """0-based attempt of the current step inside a step body, of the function elsewhere."""
        step_attempt = scope.step_attempt.get()
        return self._function_attempt if step_attempt is None else step_attempt


@dataclass
class Context(_BaseContext[D]):
    """The context of an `async def` handler; its steps are awaited."""

    step: Step


@dataclass
class SyncContext(_BaseContext[D]):
    """The context of a plain `def` handler; its steps block instead of being awaited."""

    step: SyncStep
