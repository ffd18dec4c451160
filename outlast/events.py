"""Events as users send and receive them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from outlast.core.events import (
    FUNCTION_CANCELLED,
    FUNCTION_FAILED,
    FUNCTION_FINISHED,
    FUNCTION_INVOKED,
    MAX_NAME_LENGTH,
    SCHEDULED_TIMER,
    SYSTEM_PREFIX,
)
from outlast.core.models import EventRecord


@dataclass
class Event:
    """An event as users send and receive it. `ts` is milliseconds since the epoch."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    ts: int | None = None
    user: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "data": self.data, "user": self.user, "ts": self.ts}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Event:
        """An event a step received (a wait's match): the Inngest shape, with missing parts empty."""
        return cls(
            name=raw["name"], data=raw.get("data") or {}, id=raw.get("id"), ts=raw.get("ts"), user=raw.get("user") or {}
        )

    @classmethod
    def from_record(cls, record: EventRecord) -> Event:
        return cls.from_dict(record.to_dict())


__all__ = [
    "FUNCTION_CANCELLED",
    "FUNCTION_FAILED",
    "FUNCTION_FINISHED",
    "FUNCTION_INVOKED",
    "MAX_NAME_LENGTH",
    "SCHEDULED_TIMER",
    "SYSTEM_PREFIX",
    "Event",
]
