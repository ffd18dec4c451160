"""Sync: an SDK's register request (`POST /fn/register`) read into `FunctionConfig`s.

Every quirk the official SDKs have is accepted: keys matched case-insensitively (Python sends
`appname` and `deploy_type`), `steps.*.retries.attempts` read as the retry count (as Inngest's
server reads it), concurrency as a number, an object, a list or `{"fn": [...]}`, durations
as strings or milliseconds, crons with a `TZ=` prefix and jitter, onFailure companions (an
ordinary function triggered by `inngest/function.failed`).

Concurrency scopes: `fn` is the function; `env` and `account` both become Outlast's `account`
scope (one limit shared by every function that uses the same key), since one Outlast
deployment is one Inngest environment and there is no wider account to share with.

Whatever the payload asks, `FunctionConfig.validate` decides whether it can be honoured; its
errors, and the errors of reading the payload, name the function and the payload's field.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from outlast.core.config import (
    DEFAULT_RETRIES,
    MAX_RETRIES,
    BatchRule,
    CancelRule,
    ConcurrencyRule,
    CronTrigger,
    DebounceRule,
    EventTrigger,
    FunctionConfig,
    RateLimitRule,
    Runtime,
    SingletonRule,
    ThrottleRule,
    TimeoutRule,
    Trigger,
)
from outlast.core.events import FUNCTION_FAILED, text_problem
from outlast.core.validation import validate
from outlast.errors import FunctionConfigError
from outlast.protocol.jcs import canonical
from outlast.protocol.timestr import TimeError, duration_ms

#: our option names -> the sync payload's field names, for error messages
PAYLOAD_FIELDS = {
    "retries": "steps.step.retries.attempts",
    "trigger": "triggers",
    "trigger.cron": "triggers.cron",
    "trigger.jitter": "triggers.jitter",
    "trigger.if_": "triggers.expression",
    "rate_limit": "rateLimit",
    "batch": "batchEvents",
    "batch.max_size": "batchEvents.maxSize",
    "batch.timeout": "batchEvents.timeout",
    "batch.key": "batchEvents.key",
    "batch.if_": "batchEvents.if",
    "cancel.match": "cancel.if",
}
DEFAULT_BATCH_TIMEOUT_MS = 60_000
SCOPES = {"fn": "fn", "env": "account", "account": "account"}


class SyncError(ValueError):
    """A register request that cannot be accepted; the message says what and where."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncRequest:
    app_id: str
    url: str
    sdk: str
    framework: str
    functions: list[FunctionConfig]
    #: SHA-256 of the canonical payload: identical re-syncs are recognised by it
    checksum: str
    app_version: str | None = None


def field_name(option: str) -> str:
    """The sync payload's name for one of our option names."""
    if option in PAYLOAD_FIELDS:
        return PAYLOAD_FIELDS[option]
    head, _, tail = option.partition(".")
    head = {"rate_limit": "rateLimit", "batch": "batchEvents"}.get(head, head)
    return f"{head}.{tail}" if tail else head


def parse_register(payload: Any) -> SyncRequest:
    """Read a register request body (parsed JSON); raise SyncError or FunctionConfigError naming
    the function and field at fault."""
    if not isinstance(payload, dict):
        raise SyncError("the register request must be a JSON object")
    body = _Keys(payload)
    app_id = body.get("appName")
    if not isinstance(app_id, str) or not app_id.strip():
        raise SyncError("App ID required: the register request has no appName")
    url = body.get("url")
    if not isinstance(url, str) or not url.strip():
        raise SyncError("the register request has no url")
    for field in ("appName", "url", "sdk", "framework", "appVersion"):
        _storable_text(body.get(field), field)
    raw_functions = body.get("functions")
    if not isinstance(raw_functions, list):
        raise SyncError("the register request's functions must be a list")
    configs = [function_config(app_id, raw, index=i) for i, raw in enumerate(raw_functions)]
    seen: set[str] = set()
    for config in configs:
        if config.id in seen:
            raise SyncError(f"function {config.id!r} is defined twice in app {app_id!r}")
        seen.add(config.id)
    return SyncRequest(
        app_id=app_id,
        url=url,
        sdk=str(body.get("sdk") or ""),
        framework=str(body.get("framework") or ""),
        functions=configs,
        checksum=hashlib.sha256(canonical(payload)).hexdigest(),
        app_version=body.get("appVersion") if isinstance(body.get("appVersion"), str) else None,
    )


def _storable_text(value: Any, field: str) -> None:
    """A string kept as text must be storable on every backend (PostgreSQL refuses NUL)."""
    if isinstance(value, str) and (problem := text_problem(value)) is not None:
        raise SyncError(f"{field}: {problem}")


class _Keys:
    """A JSON object read with case-insensitive keys (Go's encoding/json matches them so)."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.folded = {k.lower().replace("_", ""): v for k, v in raw.items() if isinstance(k, str)}

    def get(self, key: str) -> Any:
        if key in self.raw:
            return self.raw[key]
        return self.folded.get(key.lower().replace("_", ""))


def function_config(app_id: str, raw: Any, *, index: int = 0) -> FunctionConfig:
    """One SDK function as a validated configuration that runs over HTTP."""
    if not isinstance(raw, dict):
        raise SyncError(f"functions[{index}] must be an object")
    fn = _Keys(raw)
    slug = fn.get("id")
    if not isinstance(slug, str) or not slug.strip():
        raise SyncError(f"functions[{index}] has no id")
    _storable_text(slug, f"functions[{index}].id")
    _storable_text(fn.get("name"), f"functions[{index}].name")
    fid = slug[len(app_id) + 1 :] if slug.startswith(f"{app_id}-") and len(slug) > len(app_id) + 1 else slug
    reader = _Function(slug, fn)
    triggers = reader.triggers()
    config = FunctionConfig(
        app_id=app_id,
        id=fid,
        name=str(fn.get("name") or fid),
        triggers=triggers,
        retries=reader.retries(),
        cancel=reader.cancels(),
        timeouts=reader.timeouts(),
        idempotency=reader.expression("idempotency"),
        failure_of=_failure_of(app_id, triggers),
        concurrency=reader.concurrency(),
        throttle=reader.throttle(),
        rate_limit=reader.rate_limit(),
        debounce=reader.debounce(),
        batch=reader.batch(),
        priority=reader.priority(),
        singleton=reader.singleton(),
        runtime=Runtime(kind="http", url=reader.url()),
    )
    try:
        return validate(config, field_name=field_name)
    except FunctionConfigError as exc:
        raise FunctionConfigError(str(exc).replace(f"function {fid!r}", f"function {slug!r}", 1)) from None


def _failure_of(app_id: str, triggers: tuple[Trigger, ...]) -> str | None:
    """The parent of an onFailure companion (`event.data.function_id == '<app>-<fn>'`)."""
    for t in triggers:
        if isinstance(t, EventTrigger) and t.event == FUNCTION_FAILED and t.expression:
            quoted = t.expression.split("==", 1)[-1].strip().strip("'\"")
            if quoted.startswith(f"{app_id}-"):
                return quoted[len(app_id) + 1 :]
    return None


class _Function:
    """Reads one function's options, naming the payload field in every error."""

    def __init__(self, slug: str, fn: _Keys) -> None:
        self.slug = slug
        self.fn = fn

    def fail(self, field: str, problem: str) -> FunctionConfigError:
        return FunctionConfigError(f"function {self.slug!r}: option {field!r}: {problem}")

    def obj(self, field: str) -> _Keys | None:
        value = self.fn.get(field)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(field, f"must be an object, got {value!r}")
        return _Keys(value)

    def ms(self, value: Any, field: str, *, required: bool = False) -> int | None:
        if value is None or value == "":
            if required:
                raise self.fail(field, "a duration is required")
            return None
        try:
            return duration_ms(value)
        except TimeError as exc:
            raise self.fail(field, str(exc)) from None

    def integer(self, value: Any, field: str, default: int | None = None) -> int:
        if value is None and default is not None:
            return default
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(field, f"must be an integer, got {value!r}")
        return value

    def text(self, value: Any, field: str) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self.fail(field, f"must be a string, got {value!r}")
        return value

    def expression(self, field: str) -> str | None:
        return self.text(self.fn.get(field), field)

    # -- the options ---------------------------------------------------------------------------

    def url(self) -> str:
        steps = self.fn.get("steps")
        if not isinstance(steps, dict) or not steps:
            raise self.fail("steps", "a function needs one step with a runtime url (No SDK URL provided)")
        for name, step in steps.items():
            runtime = _Keys(step).get("runtime") if isinstance(step, dict) else None
            url = _Keys(runtime).get("url") if isinstance(runtime, dict) else None
            if not isinstance(url, str) or not url.strip():
                raise self.fail(f"steps.{name}.runtime.url", "No SDK URL provided")
            return url
        raise AssertionError("unreachable")

    def retries(self) -> int:
        """`retries.attempts` of the step is the retry count (Inngest's server reads it so)."""
        steps = self.fn.get("steps")
        for name, step in (steps or {}).items() if isinstance(steps, dict) else ():
            retries = _Keys(step).get("retries") if isinstance(step, dict) else None
            if isinstance(retries, dict) and _Keys(retries).get("attempts") is not None:
                count = self.integer(_Keys(retries).get("attempts"), f"steps.{name}.retries.attempts")
                return self._capped(count, f"steps.{name}.retries.attempts")
        top = self.fn.get("retries")
        if top is not None:
            return self._capped(self.integer(top, "retries"), "retries")
        return DEFAULT_RETRIES

    def _capped(self, count: int, field: str) -> int:
        if count < 0:
            raise self.fail(field, f"must not be negative, got {count}")
        return min(count, MAX_RETRIES)

    def triggers(self) -> tuple[Trigger, ...]:
        raw = self.fn.get("triggers")
        if not isinstance(raw, list):
            raise self.fail("triggers", f"must be a list, got {raw!r}")
        out: list[Trigger] = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                raise self.fail(f"triggers[{i}]", f"must be an object, got {item!r}")
            t = _Keys(item)
            if t.get("cron") is not None:
                cron = self.text(t.get("cron"), f"triggers[{i}].cron")
                out.append(CronTrigger(cron=cron or "", jitter_ms=self.ms(t.get("jitter"), f"triggers[{i}].jitter")))
            else:
                event = self.text(t.get("event"), f"triggers[{i}].event")
                out.append(
                    EventTrigger(
                        event=event or "", expression=self.text(t.get("expression"), f"triggers[{i}].expression")
                    )
                )
        return tuple(out)

    def cancels(self) -> tuple[CancelRule, ...]:
        raw = self.fn.get("cancel")
        if raw is None:
            return ()
        if not isinstance(raw, list):
            raise self.fail("cancel", f"must be a list, got {raw!r}")
        out = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                raise self.fail(f"cancel[{i}]", f"must be an object, got {item!r}")
            c = _Keys(item)
            out.append(
                CancelRule(
                    event=self.text(c.get("event"), f"cancel[{i}].event") or "",
                    expression=self.text(c.get("if"), f"cancel[{i}].if"),
                    timeout_ms=self.ms(c.get("timeout"), f"cancel[{i}].timeout"),
                )
            )
        return tuple(out)

    def timeouts(self) -> TimeoutRule | None:
        t = self.obj("timeouts")
        if t is None:
            return None
        start, finish = self.ms(t.get("start"), "timeouts.start"), self.ms(t.get("finish"), "timeouts.finish")
        return None if start is None and finish is None else TimeoutRule(start_ms=start, finish_ms=finish)

    def concurrency(self) -> tuple[ConcurrencyRule, ...]:
        raw = self.fn.get("concurrency")
        if isinstance(raw, dict) and any(k in raw for k in ("fn", "step")):
            raw = raw.get("fn") or []
        items = [] if raw is None else raw if isinstance(raw, list) else [raw]
        rules = []
        for i, item in enumerate(items):
            field = "concurrency" if not isinstance(raw, list) else f"concurrency[{i}]"
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                item = {"limit": item}
            if not isinstance(item, dict):
                raise self.fail(field, f"must be a number or an object with a limit, got {item!r}")
            c = _Keys(item)
            limit = self.integer(c.get("limit"), f"{field}.limit")
            if limit == 0:
                continue  # Inngest reads a zero limit as "no limit"
            scope = c.get("scope") or "fn"
            if scope not in SCOPES:
                raise self.fail(f"{field}.scope", f"must be 'fn', 'env' or 'account', got {scope!r}")
            rules.append(ConcurrencyRule(limit=limit, key=self.text(c.get("key"), f"{field}.key"), scope=SCOPES[scope]))
        return tuple(sorted(rules, key=lambda r: r.limit))

    def throttle(self) -> ThrottleRule | None:
        t = self.obj("throttle")
        if t is None:
            return None
        limit = self.integer(t.get("limit"), "throttle.limit", default=1) or 1
        burst = self.integer(t.get("burst"), "throttle.burst", default=1) or 1
        return ThrottleRule(
            limit=limit,
            burst=burst,
            key=self.text(t.get("key"), "throttle.key"),
            period_ms=self.ms(t.get("period"), "throttle.period", required=True) or 0,
        )

    def rate_limit(self) -> RateLimitRule | None:
        r = self.obj("rateLimit")
        if r is None:
            return None
        return RateLimitRule(
            limit=self.integer(r.get("limit"), "rateLimit.limit"),
            period_ms=self.ms(r.get("period"), "rateLimit.period", required=True) or 0,
            key=self.text(r.get("key"), "rateLimit.key"),
        )

    def debounce(self) -> DebounceRule | None:
        d = self.obj("debounce")
        if d is None:
            return None
        return DebounceRule(
            period_ms=self.ms(d.get("period"), "debounce.period", required=True) or 0,
            timeout_ms=self.ms(d.get("timeout"), "debounce.timeout"),
            key=self.text(d.get("key"), "debounce.key"),
        )

    def batch(self) -> BatchRule | None:
        b = self.obj("batchEvents")
        if b is None:
            return None
        size = self.integer(b.get("maxSize"), "batchEvents.maxSize")
        if size == 1:
            return None  # a batch of one is no batch
        return BatchRule(
            max_size=size,
            key=self.text(b.get("key"), "batchEvents.key"),
            timeout_ms=self.ms(b.get("timeout"), "batchEvents.timeout") or DEFAULT_BATCH_TIMEOUT_MS,
            expression=self.text(b.get("if"), "batchEvents.if"),
        )

    def priority(self) -> str | None:
        p = self.obj("priority")
        return None if p is None else self.text(p.get("run"), "priority.run")

    def singleton(self) -> SingletonRule | None:
        s = self.obj("singleton")
        if s is None:
            return None
        return SingletonRule(key=self.text(s.get("key"), "singleton.key"), mode=str(s.get("mode") or "skip"))
