"""A function's configuration as the engine stores and obeys it, wherever it came from.

Two builders produce it: `outlast.function` from the Python option types, and
`outlast.protocol` from an Inngest SDK's sync payload. Both hand it to `outlast.core.validation.validate`, the
one place that decides what can be honoured; its errors name the function and the option. The stored form
(`to_json`) is what any process reads to route events without importing user code.

Durations are integer milliseconds here; parsing "1h30m" is the builders' job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from outlast.core import jsonutil
from outlast.core.retry import BackoffRule

MAX_TRIGGERS = 10
MAX_RETRIES = 20
DEFAULT_RETRIES = 4
MAX_CANCELS = 5
MAX_CONCURRENCY_LIMITS = 2
MAX_LIMIT = 100_000
MAX_BATCH_SIZE = 1000
SECOND_MS = 1000
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
YEAR_MS = 366 * DAY_MS
PRIORITY_LIMIT_S = 43_200
CONCURRENCY_SCOPES = ("fn", "app", "account")
SINGLETON_MODES = ("skip", "cancel")
#: options Inngest does not allow together with batching
NOT_WITH_BATCH = ("cancel", "debounce", "singleton", "priority", "idempotency")


@dataclass(frozen=True, slots=True, kw_only=True)
class EventTrigger:
    event: str
    expression: str | None = None
    #: a typed trigger's JSON Schema of the event's data, as JSON text (kept hashable)
    schema: str | None = None

    def data_schema(self) -> dict[str, Any] | None:
        return None if self.schema is None else jsonutil.loads(self.schema)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True, kw_only=True)
class CronTrigger:
    cron: str
    jitter_ms: int | None = None


Trigger = EventTrigger | CronTrigger


@dataclass(frozen=True, slots=True, kw_only=True)
class ConcurrencyRule:
    limit: int
    key: str | None = None
    scope: str = "fn"


@dataclass(frozen=True, slots=True, kw_only=True)
class ThrottleRule:
    limit: int
    period_ms: int
    burst: int = 1
    key: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimitRule:
    limit: int
    period_ms: int
    key: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DebounceRule:
    period_ms: int
    timeout_ms: int | None = None
    key: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchRule:
    max_size: int
    timeout_ms: int
    key: str | None = None
    expression: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelRule:
    """Cancel the run when `event` arrives and `expression` (over `event` and `async`) holds."""

    event: str
    expression: str | None = None
    timeout_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeoutRule:
    start_ms: int | None = None
    finish_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SingletonRule:
    key: str | None = None
    mode: str = "skip"


@dataclass(frozen=True, slots=True, kw_only=True)
class Runtime:
    """Where the function's code runs: in a worker process (`local`), in a served app (`http`), or
    in a worker connected over Inngest's Connect (`connect`; `url` names the app and function)."""

    kind: Literal["local", "http", "connect", "endpoint"] = "local"
    url: str | None = None


LOCAL = Runtime()


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionConfig:
    app_id: str
    id: str
    name: str
    triggers: tuple[Trigger, ...]
    retries: int = DEFAULT_RETRIES
    cancel: tuple[CancelRule, ...] = ()
    timeouts: TimeoutRule | None = None
    idempotency: str | None = None
    #: for an on-failure handler: the id of the function whose failures it handles
    failure_of: str | None = None
    concurrency: tuple[ConcurrencyRule, ...] = ()
    throttle: ThrottleRule | None = None
    rate_limit: RateLimitRule | None = None
    debounce: DebounceRule | None = None
    batch: BatchRule | None = None
    #: expression giving seconds to move a run's start ahead (positive) or back
    priority: str | None = None
    singleton: SingletonRule | None = None
    runtime: Runtime = field(default=LOCAL)
    #: retries' backoff (None: Inngest's table)
    backoff: BackoffRule | None = None

    @property
    def slug(self) -> str:
        """Inngest's composite id, `<app_id>-<fn_id>`."""
        return f"{self.app_id}-{self.id}"

    @property
    def max_attempts(self) -> int:
        return self.retries + 1

    # -- the stored form -----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "app_id": self.app_id,
            "name": self.name,
            "retries": self.retries,
            "triggers": [_trigger_json(t) for t in self.triggers],
            "cancel": [{"event": c.event, "if": c.expression, "timeout_ms": c.timeout_ms} for c in self.cancel],
            "timeouts": _json(self.timeouts),
            "idempotency": self.idempotency,
            "failure_of": self.failure_of,
            "concurrency": [_json(c) for c in self.concurrency],
            "throttle": _json(self.throttle),
            "rate_limit": _json(self.rate_limit),
            "debounce": _json(self.debounce),
            "batch": None
            if self.batch is None
            else {
                "max_size": self.batch.max_size,
                "timeout_ms": self.batch.timeout_ms,
                "key": self.batch.key,
                "if": self.batch.expression,
            },
            "priority": None if self.priority is None else {"run": self.priority},
            "singleton": _json(self.singleton),
            "runtime": _json(self.runtime),
            **({"backoff": _json(self.backoff)} if self.backoff is not None else {}),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> FunctionConfig:
        """The stored form back; also reads the first schema's form (cancel `match`, `{}` timeouts)."""
        batch = raw.get("batch")
        return cls(
            app_id=raw["app_id"],
            id=raw["id"],
            name=raw.get("name") or raw["id"],
            retries=raw.get("retries", DEFAULT_RETRIES),
            triggers=tuple(_trigger_from_json(t) for t in raw.get("triggers") or []),
            cancel=tuple(_cancel_from_json(c) for c in raw.get("cancel") or []),
            timeouts=TimeoutRule(**raw["timeouts"]) if raw.get("timeouts") else None,
            idempotency=raw.get("idempotency"),
            failure_of=raw.get("failure_of"),
            concurrency=tuple(ConcurrencyRule(**c) for c in raw.get("concurrency") or []),
            throttle=ThrottleRule(**raw["throttle"]) if raw.get("throttle") else None,
            rate_limit=RateLimitRule(**raw["rate_limit"]) if raw.get("rate_limit") else None,
            debounce=DebounceRule(**raw["debounce"]) if raw.get("debounce") else None,
            batch=None
            if not batch
            else BatchRule(
                max_size=batch["max_size"],
                timeout_ms=batch["timeout_ms"],
                key=batch.get("key"),
                expression=batch.get("if"),
            ),
            priority=(raw.get("priority") or {}).get("run"),
            singleton=SingletonRule(**raw["singleton"]) if raw.get("singleton") else None,
            runtime=Runtime(**raw["runtime"]) if raw.get("runtime") else LOCAL,
            backoff=BackoffRule(**raw["backoff"]) if raw.get("backoff") else None,
        )


def match_expression(match: str) -> str:
    """Inngest's `match="data.x"` shorthand as the expression it stands for."""
    return f"event.{match} == async.{match}"


def cancel_expression(match: str | None, condition: str | None) -> str | None:
    """A cancel rule's expression from the Python options `match=` and `if_=`."""
    parts = ([match_expression(match)] if match else []) + ([f"({condition})"] if condition else [])
    return " && ".join(parts) or None


def _json(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    return {name: getattr(value, name) for name in value.__slots__}


def _trigger_json(t: Trigger) -> dict[str, Any]:
    if isinstance(t, EventTrigger):
        typed = {} if t.schema is None else {"schema": t.data_schema()}
        return {"event": t.event, "if": t.expression, **typed}
    return {"cron": t.cron, "jitter_ms": t.jitter_ms}


def _trigger_from_json(raw: dict[str, Any]) -> Trigger:
    if "cron" in raw:
        return CronTrigger(cron=raw["cron"], jitter_ms=raw.get("jitter_ms"))
    schema = raw.get("schema")
    return EventTrigger(
        event=raw["event"], expression=raw.get("if"), schema=None if schema is None else jsonutil.dumps(schema)
    )


def _cancel_from_json(raw: dict[str, Any]) -> CancelRule:
    expression = cancel_expression(raw["match"], raw.get("if")) if raw.get("match") else raw.get("if")
    return CancelRule(event=raw["event"], expression=expression, timeout_ms=raw.get("timeout_ms"))
