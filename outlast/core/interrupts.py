"""Control flow that ends an attempt. BaseException, so `except Exception` cannot swallow it."""

from __future__ import annotations


class Interrupt(BaseException):
    """Base of the engine's control-flow signals."""


class StepSuspended(Interrupt):
    """The run must wait (sleep, event, child run, step retry); its memo is already committed."""


class LeaseLost(Interrupt):
    """Another worker owns the run now, or it was cancelled: stop without writing anything."""
