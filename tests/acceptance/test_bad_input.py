"""Bad input gets a clear error naming what is wrong, and stores nothing."""

from __future__ import annotations

from typing import Any

import pytest

import outlast
from outlast import Context, Event, FunctionConfigError, InvalidEventError, PayloadTooLargeError
from outlast.testing import TestEngine


@pytest.mark.parametrize(
    ("event", "error", "fragment"),
    [
        ({"data": {}}, InvalidEventError, "name"),
        ({"name": ""}, InvalidEventError, "name"),
        ({"name": "x" * 513}, InvalidEventError, "513 characters"),
        ({"name": "t/e", "data": [1, 2]}, InvalidEventError, "data: must be a JSON object"),
        ({"name": "t/e", "data": "text"}, InvalidEventError, "data"),
        ({"name": "t/e", "data": {"blob": "x" * (512 * 1024)}}, PayloadTooLargeError, "limit is 524288"),
        ({"name": "inngest/function.failed"}, InvalidEventError, "reserved"),
        ({"name": "t/e", "ts": "yesterday"}, InvalidEventError, "ts"),
    ],
)
async def test_a_bad_event_is_rejected_and_nothing_of_its_batch_is_stored(
    app: outlast.Outlast, engine: TestEngine, event: dict[str, Any], error: type[Exception], fragment: str
) -> None:
    @app.function(id="any", trigger="t/e")
    async def any_fn(ctx: Context) -> None:
        return None

    async with engine as t:
        with pytest.raises(error, match=r"event\[1\]") as info:
            await t.send([Event(name="t/e"), event])  # the good first event must not be stored either
        assert fragment in str(info.value)
        await t.run_until_idle()
        assert t.runs() == []


async def test_an_event_id_seen_in_the_last_day_starts_no_new_run(app: outlast.Outlast, engine: TestEngine) -> None:
    @app.function(id="once", trigger="t/once")
    async def once(ctx: Context) -> None:
        return None

    async with engine as t:
        await t.send(Event(name="t/once", id="order-1"))
        await t.send(Event(name="t/once", id="order-1"))
        await t.run_until_idle()
        assert len(t.runs()) == 1
        t.advance("24h")
        await t.send(Event(name="t/once", id="order-1"))
        await t.run_until_idle()
        assert len(t.runs()) == 2


def test_function_definitions_are_validated_when_defined() -> None:
    app = outlast.Outlast("cfg", database_url="memory://")

    @app.function(id="taken", trigger="t/x")
    async def first(ctx: Context) -> None:
        return None

    cases: list[tuple[dict[str, Any], str]] = [
        ({"id": "taken", "trigger": "t/x"}, "'taken': option 'id'"),
        (
            {"id": "bad-if", "trigger": outlast.TriggerEvent("t/x", if_="event.data.x >")},
            "'bad-if': option 'trigger.if_'",
        ),
        ({"id": "too-many", "trigger": "t/x", "retries": 21}, "'too-many': option 'retries'"),
        ({"id": "negative", "trigger": "t/x", "retries": -1}, "'negative': option 'retries'"),
        ({"id": "no-trigger", "trigger": []}, "'no-trigger': option 'trigger'"),
        ({"id": "bad-cancel", "trigger": "t/x", "cancel": [outlast.Cancel("t/c")] * 6}, "option 'cancel'"),
        ({"id": "bad-idem", "trigger": "t/x", "idempotency": "event.data.("}, "option 'idempotency'"),
    ]
    for options, fragment in cases:
        with pytest.raises(FunctionConfigError, match=fragment.replace("(", r"\(")):
            app.function(**options)(first.handler)
    assert list(app.functions) == ["taken"]


def test_an_option_that_does_not_exist_is_named_with_the_options_there_are() -> None:
    app = outlast.Outlast("cfg", database_url="memory://")
    for option in ("retry", "failure_of"):  # a typo, and an option of the engine's own
        with pytest.raises(TypeError, match=f"function 'fn': unknown option '{option}'; the options are id, "):
            app.function(id="fn", trigger="t/x", **{option: 1})
    assert app.functions == {}


async def test_a_step_output_that_is_not_json_fails_the_step_without_retry(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    @app.function(id="unjson", trigger="t/unjson")
    async def unjson(ctx: Context) -> None:
        await ctx.step.run("make-set", lambda: {1, 2})

    async with engine as t:
        await t.send(Event(name="t/unjson"))
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "failed"
    assert run.steps[0].attempts == 1
    assert run.error is not None and "'make-set'" in run.error["message"] and "JSON" in run.error["message"]


async def test_a_step_inside_a_step_is_a_clear_error(app: outlast.Outlast, engine: TestEngine) -> None:
    @app.function(id="nested", trigger="t/nested")
    async def nested(ctx: Context) -> None:
        async def outer() -> int:
            return int(await ctx.step.run("inner", lambda: 1))

        await ctx.step.run("outer", outer)

    async with engine as t:
        await t.send(Event(name="t/nested"))
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "failed" and run.steps[0].attempts == 1
    assert run.error is not None and "nested" in run.error["message"] and "'inner'" in run.error["message"]


async def test_more_steps_than_the_limit_fail_the_run(app: outlast.Outlast, make_store: Any) -> None:
    @app.function(id="many", trigger="t/many")
    async def many(ctx: Context) -> None:
        for i in range(20):
            await ctx.step.run(f"s{i}", lambda: None)

    async with TestEngine(app, store=make_store(), max_steps_per_run=10) as t:
        await t.send(Event(name="t/many"))
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "failed" and len(run.steps) == 10
    assert run.error is not None and "more than 10 steps" in run.error["message"]


# -- the new-user trial's bad input (issue 12) ------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "fragment"),
    [
        ({"name": "t/e", "data": {"x": float("nan")}}, "event[1].data.x: NaN is not valid JSON"),
        ({"name": "t/e", "data": {"a": [1, float("inf")]}}, "event[1].data.a[1]: Infinity is not valid JSON"),
        ({"name": "t/e", "user": {"score": float("-inf")}}, "event[1].user.score: -Infinity"),
        ({"name": "t/\x00x"}, "event[1].name: an event name must not contain control characters, found '\\x00'"),
        ({"name": "t/e", "id": "a\x00b"}, "event[1].id: must not contain a NUL character"),
        ({"name": "t/e\nx"}, "event[1].name: an event name must not contain control characters, found '\\n'"),
        ({"name": b"t/e"}, "event[1].name: an event name must be a string, got bytes"),
        ({"name": "t/e", "data": {"s": "\udc80"}}, "event[1].data.s: not valid Unicode text"),
    ],
)
async def test_values_no_backend_can_store_are_refused_naming_the_field(
    app: outlast.Outlast, engine: TestEngine, event: dict[str, Any], fragment: str
) -> None:
    @app.function(id="any", trigger="t/e")
    async def any_fn(ctx: Context) -> None:
        return None

    async with engine as t:
        with pytest.raises(InvalidEventError) as info:
            await t.send([Event(name="t/e"), event])
        assert fragment in str(info.value)
        await t.run_until_idle()
        assert t.runs() == []


async def test_an_event_ts_of_zero_is_kept(app: outlast.Outlast, engine: TestEngine) -> None:
    @app.function(id="when", trigger="t/ts")
    async def when(ctx: Context) -> Any:
        return ctx.event.ts

    async with engine as t:
        await t.send([{"name": "t/ts", "ts": 0}, {"name": "t/ts"}])
        await t.run_until_idle()
        assert sorted(r.output for r in t.runs()) == [0, t.now_ms()]


async def test_nan_in_a_step_or_function_output_fails_it_naming_the_place(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    @app.function(id="nan-step", trigger="t/nan")
    async def nan_step(ctx: Context) -> None:
        await ctx.step.run("measure", lambda: {"ratio": float("nan")})

    @app.function(id="nan-output", trigger="t/nan")
    async def nan_output(ctx: Context) -> Any:
        return [1, float("inf")]

    async with engine as t:
        await t.send(Event(name="t/nan"))
        await t.run_until_idle()
        runs = {r.function_id: r for r in t.runs()}
    step_run, output_run = runs["nan-step"], runs["nan-output"]
    assert step_run.status == "failed" and step_run.steps[0].attempts == 1
    assert step_run.error is not None and "step 'measure'" in step_run.error["message"]
    assert "ratio: NaN is not valid JSON" in step_run.error["message"]
    assert output_run.status == "failed" and output_run.output is None
    assert output_run.error is not None and "[1]: Infinity is not valid JSON" in output_run.error["message"]


async def test_a_step_id_with_a_nul_fails_the_run_clearly_on_every_backend(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    @app.function(id="nul-step", trigger="t/nul", retries=0)
    async def nul_step(ctx: Context) -> None:
        await ctx.step.run("a\x00b", lambda: 1)

    async with engine as t:
        await t.send(Event(name="t/nul"))
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "failed" and run.error is not None
    assert run.error["name"] == "StepUsageError" and "must not contain a NUL character" in run.error["message"]


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"trigger": outlast.TriggerCron("0 0 30 2 *")}, "option 'trigger.cron': cron expression '0 0 30 2 *' never"),
        (
            {"trigger": outlast.TriggerEvent("t/x", if_="foo.bar == 1")},
            "option 'trigger.if_': 'foo.bar == 1' uses unknown variable 'foo'",
        ),
        (
            {"trigger": outlast.TriggerEvent("t/x", if_="event.data.x + 1")},
            "option 'trigger.if_': 'event.data.x + 1' gives a number, not true or false",
        ),
        (
            {"trigger": "t/x", "cancel": [outlast.Cancel("t/c", if_="other.id == async.data.id")]},
            "option 'cancel': '(other.id == async.data.id)' uses unknown variable 'other'",
        ),
        (
            {"trigger": "t/x", "batch": outlast.Batch(max_size=5, timeout="5s", if_="async.data.ok")},
            "option 'batch.if_': 'async.data.ok' uses unknown variable 'async'",
        ),
        (
            {"trigger": "t/x", "priority": outlast.Priority(run="event.data.vip == true")},
            "option 'priority.run': 'event.data.vip == true' gives a boolean, not a number",
        ),
        ({"trigger": "t/x\nx"}, "option 'trigger': an event name must not contain control characters"),
        (
            {"trigger": "t/x", "debounce": outlast.Debounce(period="soon")},
            "option 'debounce.period': invalid duration 'soon'",
        ),
    ],
)
def test_options_that_can_never_work_are_refused_when_defined(options: dict[str, Any], fragment: str) -> None:
    app = outlast.Outlast("cfg", database_url="memory://")
    with pytest.raises(FunctionConfigError) as info:
        app.function(id="fn", **options)(lambda ctx: None)
    message = str(info.value)
    assert f"function 'fn': {fragment}" in message
    option = fragment.split("'")[1]
    assert message.count(option) == 1 or option in ("trigger", "cancel"), "the option is named once"
    assert app.functions == {}
