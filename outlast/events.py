"""Events as users send and receive them, and typed events (`EventType`: a name and a Pydantic
model, validated when an event is created and when a typed function's run starts).

Pydantic is imported only when an `EventType` is made: `import outlast` stays light."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic

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
from outlast.errors import EventValidationError, FunctionConfigError, InvalidEventError

if TYPE_CHECKING:
    from typing_extensions import TypeVar  # a default: a bare `Event`/`Context` has dict data

    D = TypeVar("D", covariant=True, default=dict[str, Any])
    M = TypeVar("M")
else:
    from typing import TypeVar

    D = TypeVar("D", covariant=True)
    M = TypeVar("M")


@dataclass
class Event(Generic[D]):
    """An event as users send and receive it. `ts` is milliseconds since the epoch. `data` is a
    JSON object, or in a typed function (`Context[Model]`) the event type's model instance."""

    name: str
    data: D = field(default_factory=dict)  # type: ignore[assignment]
    id: str | None = None
    ts: int | None = None
    user: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "data": self.data, "user": self.user, "ts": self.ts}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Event:
        """An event a step received (a wait's match): the Inngest shape, with missing parts empty."""
        data: dict[str, Any] = raw.get("data") or {}
        return Event(name=raw["name"], data=data, id=raw.get("id"), ts=raw.get("ts"), user=raw.get("user") or {})

    @classmethod
    def from_record(cls, record: EventRecord) -> Event:
        return cls.from_dict(record.to_dict())


class EventType(Generic[M]):
    """An event name with the model its data follows: `EventType("shop/order.created", OrderCreated)`.

    Use it as a trigger (alone, in `TriggerEvent`, in a list), in a wait or in a cancel rule; `create(...)`
    makes a validated `Event` to send. `model` is a Pydantic model, or any type Pydantic
    validates into a JSON object (a dataclass, a TypedDict)."""

    def __init__(self, name: str, model: type[M]) -> None:
        from pydantic import TypeAdapter
        from pydantic.errors import PydanticUserError

        if not isinstance(name, str) or not name.strip() or name.lower().startswith(SYSTEM_PREFIX):
            raise FunctionConfigError(f"EventType: name: expected an event name, got {name!r}")
        self.name = name
        self.model = model
        try:
            self._adapter: Any = TypeAdapter(model)
            self.schema: dict[str, Any] = self._adapter.json_schema()
        except PydanticUserError as exc:  # a field of a type with no JSON form
            where = _unjsonable_field(model) or str(exc).splitlines()[0]
            raise FunctionConfigError(f"EventType {name!r}: model {_name(model)} has no JSON form: {where}") from None
        if self.schema.get("type") != "object":
            raise FunctionConfigError(f"EventType {name!r}: model {_name(model)} must describe a JSON object")

    def __repr__(self) -> str:
        return f"EventType({self.name!r}, {_name(self.model)})"

    def create(
        self, data: M | dict[str, Any] | None = None, *, id: str | None = None, ts: int | None = None, **fields: Any
    ) -> Event:
        """A validated event to send: `data` (a model instance or a dict) or the fields as keywords.
        InvalidEventError names the field that does not validate."""
        if data is not None and fields:
            raise InvalidEventError(f"event {self.name!r}: give data or fields as keywords, not both")
        value = self.parse(fields if data is None else data, error=InvalidEventError, event_id=id)
        return Event(name=self.name, data=self._adapter.dump_python(value, mode="json"), id=id, ts=ts)

    def typed(self, event: Event) -> Event[M]:
        """`event` (a typed function's trigger, or a wait's match) with its data as the model;
        EventValidationError naming the field and the event id when it does not validate."""
        return Event(
            name=event.name, data=self.parse(event.data, event_id=event.id), id=event.id, ts=event.ts, user=event.user
        )

    def parse(self, data: Any, *, error: type[Exception] = EventValidationError, event_id: str | None = None) -> M:
        """`data` as the model; `error` (EventValidationError by default) naming the field and the
        event id when it does not validate."""
        from pydantic import ValidationError

        try:
            return self._adapter.validate_python(data)  # type: ignore[no-any-return]
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in ("data", *first["loc"]))
            of = f"event {self.name!r}" + (f" {event_id}" if event_id else "")
            raise error(f"{of}: {where}: {first['msg']} (model {_name(self.model)})") from None


def event_name(event: str | EventType[Any]) -> str:
    """The name of a trigger's, wait's or cancel rule's event, given as a string or an `EventType`."""
    return event.name if isinstance(event, EventType) else event


def _unjsonable_field(model: Any) -> str | None:
    """The first field of a Pydantic model whose type has no JSON form, as `field 'x' (type)`."""
    from pydantic import TypeAdapter
    from pydantic.errors import PydanticUserError

    for field_name, info in getattr(model, "model_fields", {}).items():
        try:
            TypeAdapter(info.annotation).json_schema()
        except PydanticUserError:
            return f"field {field_name!r} ({info.annotation!r}) cannot be written as JSON"
    return None


def _name(model: Any) -> str:
    return getattr(model, "__name__", repr(model))


__all__ = [
    "FUNCTION_CANCELLED",
    "FUNCTION_FAILED",
    "FUNCTION_FINISHED",
    "FUNCTION_INVOKED",
    "MAX_NAME_LENGTH",
    "SCHEDULED_TIMER",
    "SYSTEM_PREFIX",
    "Event",
    "EventType",
]
