"""What is true of the code running right now: inside a step body or not, and which attempt.

Context variables in a leaf module, so the SDK's `Context` and the local driver can both read
them without importing each other.
"""

from __future__ import annotations

from contextvars import ContextVar

#: True inside a step body (a step called there is a nested step, which cannot work)
in_step: ContextVar[bool] = ContextVar("outlast_in_step", default=False)
#: the 0-based attempt of the step body running in this context (None outside step bodies)
step_attempt: ContextVar[int | None] = ContextVar("outlast_step_attempt", default=None)
