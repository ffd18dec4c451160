"""What a log line is about: the run, function, step and attempt of the code that logs it.

The executor binds the run for a whole attempt, and the local driver the step inside a step
body (context variables: concurrent attempts never mix). `RunContextFilter`, on a handler, copies
them onto every record that does not carry them already, so structured logs name the run on
every line that concerns one, whoever logged it: the engine, a driver, or the user's code.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from dataclasses import dataclass

#: the record attributes a bound context fills in
FIELDS = ("run_id", "app_id", "function_id", "step_id", "attempt")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunContext:
    run_id: str
    app_id: str
    function_id: str
    #: 0-based: the function's attempt, or the step's inside a step body
    attempt: int
    step_id: str | None = None


current: ContextVar[RunContext | None] = ContextVar("outlast_run_context", default=None)


def enter_step(step_id: str, attempt: int) -> None:
    """Inside a step body (call in the body's own context): lines name the step and its attempt."""
    run = current.get()
    if run is not None:
        current.set(
            RunContext(
                run_id=run.run_id, app_id=run.app_id, function_id=run.function_id, attempt=attempt, step_id=step_id
            )
        )  # not dataclasses.replace: this runs once per step


class RunContextFilter(logging.Filter):
    """Adds the bound run's fields to records that lack them; lets every record through."""

    def filter(self, record: logging.LogRecord) -> bool:
        bound = current.get()
        if bound is not None:
            for name in FIELDS:
                if getattr(record, name, None) is None:
                    setattr(record, name, getattr(bound, name))
        return True
