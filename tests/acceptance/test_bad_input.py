"""Bad input gets a clear error naming what is wrong, and stores nothing."""

from __future__ import annotations

from typing import Any

import pytest

import outlast
from outlast import Context, Event, FunctionConfigError, InvalidEventError, PayloadTooLargeError
from outlast.testing import TestEngine


@pytest.mark.parametrize(("event", "error", "fragment"), [
    ({"data": {}}, InvalidEventError, "name"),
    ({"name": ""}, InvalidEventError, "name"),
    ({"name": "x" * 513}, InvalidEventError, "513 characters"),
    ({"name": "t/e", "data": [1, 2]}, InvalidEventError, "data: must be a JSON object"),
    ({"name": "t/e", "data": "text"}, InvalidEventError, "data"),
    ({"name": "t/e", "data": {"blob": "x" * (512 * 1024)}}, PayloadTooLargeError, "limit is 524288"),
    ({"name": "inngest/function.failed"}, InvalidEventError, "reserved"),
    ({"name": "t/e", "ts": "yesterday"}, InvalidEventError, "ts"),
])
async def test_a_bad_event_is_rejected_and_nothing_of_its_batch_is_stored(
        app: outlast.Outlast, engine: TestEngine, event: dict[str, Any], error: type[Exception], fragment: str) -> None:
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
        ({"id": "bad-if", "trigger": outlast.TriggerEvent("t/x", if_="event.data.x >")},
         "'bad-if': option 'trigger.if_'"),
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


async def test_a_step_output_that_is_not_json_fails_the_step_without_retry(app: outlast.Outlast,
                                                                           engine: TestEngine) -> None:
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
