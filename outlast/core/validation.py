"""Whether a function's configuration can be honoured: the one place that decides, for both
builders (`outlast.function` and `outlast.protocol.sync`). Its errors name the function and the
option, in the caller's own option names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from outlast.core.config import (
    CONCURRENCY_SCOPES,
    DAY_MS,
    MAX_BATCH_SIZE,
    MAX_CANCELS,
    MAX_CONCURRENCY_LIMITS,
    MAX_LIMIT,
    MAX_RETRIES,
    MAX_TRIGGERS,
    NOT_WITH_BATCH,
    SECOND_MS,
    SINGLETON_MODES,
    WEEK_MS,
    YEAR_MS,
    EventTrigger,
    FunctionConfig,
)
from outlast.core.cron import parse_schedule
from outlast.core.durations import format_ms
from outlast.core.events import name_problem, text_problem
from outlast.core.registry import Fail, compile_function
from outlast.errors import FunctionConfigError


def validate(config: FunctionConfig, *, field_name: Callable[[str], str] = str) -> FunctionConfig:
    """Return `config` if every option can be honoured; else raise FunctionConfigError naming the
    function and the option (`field_name` maps our option names to the caller's)."""
    if not isinstance(config.id, str) or not config.id.strip():
        raise FunctionConfigError("a function needs a non-empty string id")
    for option, text in (("id", config.id), ("app_id", config.app_id), ("name", config.name)):
        if isinstance(text, str) and (problem := text_problem(text)) is not None:
            raise FunctionConfigError(f"function {config.id!r}: option {field_name(option)!r}: {problem}")

    def fail(option: str, problem: str) -> FunctionConfigError:
        return FunctionConfigError(f"function {config.id!r}: option {field_name(option)!r}: {problem}")

    _Checks(config, fail).run()
    return config


class _Checks:
    """The rules a configuration must satisfy, one method per option."""

    def __init__(self, config: FunctionConfig, fail: Fail) -> None:
        self.c = config
        self.fail = fail

    def run(self) -> None:
        c = self.c
        self.integer("retries", c.retries, 0, MAX_RETRIES)
        self.triggers()
        self.cancels()
        if c.timeouts is not None:
            self.duration("timeouts.start", c.timeouts.start_ms, 1, YEAR_MS)
            self.duration("timeouts.finish", c.timeouts.finish_ms, 1, YEAR_MS)
        self.concurrency()
        self.flow_control()
        if c.batch:
            clash = next((o for o in NOT_WITH_BATCH if getattr(c, o)), None)
            if clash:
                raise self.fail("batch", f"cannot be combined with {clash!r}")
        self.expressions()

    def integer(self, option: str, value: Any, least: int, most: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
            raise self.fail(option, f"must be an integer from {least} to {most}, got {value!r}")

    def duration(self, option: str, ms: int | None, least: int, most: int) -> None:
        if ms is None:
            return
        if isinstance(ms, bool) or not isinstance(ms, int):
            raise self.fail(option, f"must be a duration, got {ms!r}")
        if not least <= ms <= most:
            raise self.fail(option, f"must be between {format_ms(least)} and {format_ms(most)}, got {format_ms(ms)}")

    def triggers(self) -> None:
        if not self.c.triggers:
            raise self.fail("trigger", "a function needs at least one trigger")
        if len(self.c.triggers) > MAX_TRIGGERS:
            raise self.fail("trigger", f"{len(self.c.triggers)} triggers, the limit is {MAX_TRIGGERS}")
        for trigger in self.c.triggers:
            if isinstance(trigger, EventTrigger):
                if not isinstance(trigger.event, str) or not trigger.event.strip():
                    raise self.fail("trigger", "an event trigger needs a non-empty event name")
                if (problem := name_problem(trigger.event, what="an event name")) is not None:
                    raise self.fail("trigger", problem)
                continue
            try:
                parse_schedule(trigger.cron)
            except ValueError as exc:
                raise self.fail("trigger.cron", str(exc)) from None
            self.duration("trigger.jitter", trigger.jitter_ms, 0, DAY_MS)

    def cancels(self) -> None:
        if len(self.c.cancel) > MAX_CANCELS:
            raise self.fail("cancel", f"{len(self.c.cancel)} cancel rules, the limit is {MAX_CANCELS}")
        for rule in self.c.cancel:
            if not isinstance(rule.event, str) or not rule.event.strip():
                raise self.fail("cancel", "a cancel rule needs an event name")
            if (problem := name_problem(rule.event, what="an event name")) is not None:
                raise self.fail("cancel", problem)
            self.duration("cancel.timeout", rule.timeout_ms, 1, YEAR_MS)

    def concurrency(self) -> None:
        if len(self.c.concurrency) > MAX_CONCURRENCY_LIMITS:
            raise self.fail(
                "concurrency", f"{len(self.c.concurrency)} limits, at most {MAX_CONCURRENCY_LIMITS} are allowed"
            )
        for rule in self.c.concurrency:
            self.integer("concurrency.limit", rule.limit, 1, MAX_LIMIT)
            if rule.scope not in CONCURRENCY_SCOPES:
                raise self.fail("concurrency.scope", f"must be 'fn', 'app' or 'account', got {rule.scope!r}")

    def flow_control(self) -> None:
        c = self.c
        if c.throttle:
            self.integer("throttle.limit", c.throttle.limit, 1, MAX_LIMIT)
            self.integer("throttle.burst", c.throttle.burst, 1, MAX_LIMIT)
            self.duration("throttle.period", c.throttle.period_ms, SECOND_MS, WEEK_MS)
        if c.rate_limit:
            self.integer("rate_limit.limit", c.rate_limit.limit, 1, MAX_LIMIT)
            self.duration("rate_limit.period", c.rate_limit.period_ms, SECOND_MS, DAY_MS)
        if c.debounce:
            self.duration("debounce.period", c.debounce.period_ms, SECOND_MS, WEEK_MS)
            self.duration("debounce.timeout", c.debounce.timeout_ms, SECOND_MS, WEEK_MS)
        if c.batch:
            self.integer("batch.max_size", c.batch.max_size, 2, MAX_BATCH_SIZE)
            self.duration("batch.timeout", c.batch.timeout_ms, SECOND_MS, DAY_MS)
        if c.singleton and c.singleton.mode not in SINGLETON_MODES:
            raise self.fail("singleton.mode", f"must be 'skip' or 'cancel', got {c.singleton.mode!r}")

    def expressions(self) -> None:
        """Every expression compiles (the registry compiles the same ones again when it loads)."""
        compile_function(self.c, fail=self.fail)
