"""How local functions reach the engine: a small protocol the SDK's `Outlast` app satisfies."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from outlast.core.config import FunctionConfig


class LocalFunction(Protocol):
    """A function whose handler runs in this process."""

    @property
    def config(self) -> FunctionConfig: ...

    @property
    def handler(self) -> Callable[..., Any]: ...

    @property
    def is_async(self) -> bool: ...

    def parse_events(self, events: list[Any]) -> list[Any]:
        """The run's events as the handler sees them (typed events' data as their models)."""
        ...


class FunctionSource(Protocol):
    """An app of local functions (`outlast.Outlast`)."""

    @property
    def id(self) -> str: ...

    @property
    def functions(self) -> Mapping[str, LocalFunction]: ...
