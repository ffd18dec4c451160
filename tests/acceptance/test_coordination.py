"""Waiting for events, sending events, invoking functions, parallel steps and cancellation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import outlast
from outlast import Context, Event, StepError
from outlast.core.models import RunFilter
from outlast.testing import TestEngine


def payment_workflow(app: outlast.Outlast) -> None:
    @app.function(
        id="process-order",
        trigger="shop/order.created",
        cancel=[outlast.Cancel(event="shop/order.cancelled", match="data.order_id")],
    )
    async def process_order(ctx: Context) -> dict[str, Any]:
        order = ctx.event.data
        await ctx.step.run("reserve", lambda: order["order_id"])
        payment = await ctx.step.wait_for_event(
            "wait-payment", event="shop/payment.success", match="data.order_id", timeout="24h"
        )
        if payment is None:
            await ctx.step.run("cancel-order", lambda: "released")
            return {"status": "cancelled"}
        ids = await ctx.step.send_event("confirmed", Event(name="shop/order.confirmed", data={"id": order["order_id"]}))
        return {"status": "confirmed", "paid": payment.data["amount"], "sent": len(ids)}


async def test_the_order_completes_when_its_payment_arrives(app: outlast.Outlast, engine: TestEngine) -> None:
    payment_workflow(app)
    async with engine as t:
        [event_id] = await t.send(Event(name="shop/order.created", data={"order_id": "o1"}))
        await t.run_until_idle()
        t.advance("1h")
        await t.send(Event(name="shop/payment.success", data={"order_id": "o2", "amount": 5}))  # another order
        await t.run_until_idle()
        assert t.runs(event_id=event_id)[0].status == "running"
        await t.send(Event(name="shop/payment.success", data={"order_id": "o1", "amount": 30}))
        await t.run_until_idle()
        [run] = t.runs(event_id=event_id)
    assert run.status == "completed" and run.output == {"status": "confirmed", "paid": 30, "sent": 1}
    wait = run.steps[1]
    assert (wait.kind, wait.status, wait.output["data"]["amount"]) == ("wait_for_event", "completed", 30)


async def test_the_order_takes_the_timeout_branch_without_payment(app: outlast.Outlast, engine: TestEngine) -> None:
    payment_workflow(app)
    async with engine as t:
        [event_id] = await t.send(Event(name="shop/order.created", data={"order_id": "o1"}))
        await t.run_until_idle()
        t.advance("24h")
        await t.run_until_idle()
        await t.send(Event(name="shop/payment.success", data={"order_id": "o1", "amount": 30}))  # too late
        await t.run_until_idle()
        [run] = t.runs(event_id=event_id)
    assert run.status == "completed" and run.output == {"status": "cancelled"}
    assert [s.id for s in run.steps] == ["reserve", "wait-payment", "cancel-order"]


async def test_an_event_sent_before_the_wait_is_stored_does_not_resume_it(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    @app.function(id="late-waiter", trigger="t/start")
    async def late_waiter(ctx: Context) -> bool:
        await ctx.step.sleep("first", "1m")
        got = await ctx.step.wait_for_event("w", event="t/signal", timeout="1h")
        return got is not None

    async with engine as t:
        await t.send(Event(name="t/start"))
        await t.run_until_idle()
        await t.send(Event(name="t/signal"))  # the run is still sleeping: no wait stored yet
        t.advance("1m")
        await t.run_until_idle()
        assert t.runs()[0].status == "running"
        t.advance("1h")
        await t.run_until_idle()
        [run] = t.runs(function_id="late-waiter")
    assert run.output is False


async def test_one_event_resumes_exactly_the_matching_run_among_many(app: outlast.Outlast, engine: TestEngine) -> None:
    @app.function(id="waiter", trigger="t/order")
    async def waiter(ctx: Context) -> str:
        got = await ctx.step.wait_for_event(
            "paid", event="t/paid", if_="event.data.id == async.data.order_id", timeout="1d"
        )
        return f"{ctx.event.data['id']} paid by {got.data['order_id']}" if got else "timeout"

    n = 2_000  # enough that only an indexed lookup is quick; the scale itself is measured in bench/
    async with engine as t:
        for start in range(0, n, 1_000):
            await t.send([Event(name="t/order", data={"id": f"o{i}"}) for i in range(start, start + 1_000)])
            await t.run_until_idle()
        await t.send(Event(name="t/paid", data={"order_id": "o1234"}))
        await t.run_until_idle()
        completed = t.runs(status="completed")
        still = await t.store.list_runs(RunFilter(function_id="waiter", status="running", limit=n))
        assert len(still) == n - 1
    assert [r.output for r in completed] == ["o1234 paid by o1234"]


async def test_a_cancel_event_cancels_a_sleeping_run_and_no_later_step_runs(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    ran: list[str] = []

    @app.function(id="cancellable", trigger="t/job", cancel=[outlast.Cancel(event="t/stop", match="data.job")])
    async def cancellable(ctx: Context) -> None:
        await ctx.step.run("before", lambda: ran.append("before"))
        await ctx.step.sleep("nap", "1h")
        await ctx.step.run("after", lambda: ran.append("after"))

    @app.function(id="on-cancel", trigger="inngest/function.cancelled")
    async def on_cancel(ctx: Context) -> str:
        return str(ctx.event.data["run_id"])

    async with engine as t:
        await t.send([Event(name="t/job", data={"job": 1}), Event(name="t/job", data={"job": 2})])
        await t.run_until_idle()
        await t.send(Event(name="t/stop", data={"job": 1}))
        t.advance("1h")
        await t.run_until_idle()
        runs = {r.id: r for r in t.runs(function_id="cancellable")}
        statuses = sorted(r.status for r in runs.values())
        [notice] = t.runs(function_id="on-cancel")
    assert statuses == ["cancelled", "completed"]
    assert ran == ["before", "before", "after"]
    cancelled = next(r for r in runs.values() if r.status == "cancelled")
    assert notice.output == cancelled.id
    assert [s.id for s in cancelled.steps] == ["before", "nap"]  # memo and trace are kept


async def test_cancel_run_stops_a_run_at_its_next_step(app: outlast.Outlast, engine: TestEngine) -> None:
    @app.function(id="long", trigger="t/long")
    async def long(ctx: Context) -> None:
        await ctx.step.sleep("wait", "1d")
        await ctx.step.run("never", lambda: None)

    async with engine as t:
        await t.send(Event(name="t/long"))
        await t.run_until_idle()
        [run] = t.runs()
        assert await t.cancel_run(run.id)
        assert not await t.cancel_run(run.id)  # no longer active
        t.advance("1d")
        await t.run_until_idle()
        [run] = t.runs(function_id="long")
    assert run.status == "cancelled" and [s.id for s in run.steps] == ["wait"]


async def test_invoke_returns_the_child_output_and_surfaces_its_failure(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    @app.function(id="square", trigger="t/never", retries=0)
    async def square(ctx: Context) -> int:
        n = int(ctx.event.data["n"])
        if n < 0:
            raise ValueError("negative input")
        return n * n

    @app.function(id="parent", trigger="t/parent")
    async def parent(ctx: Context) -> dict[str, Any]:
        ok = await ctx.step.invoke("ok", function=square, data={"n": 7})
        try:
            await ctx.step.invoke("bad", function=square, data={"n": -1})
        except StepError as exc:
            return {"ok": ok, "error": exc.message}
        return {"ok": ok}

    async with engine as t:
        await t.send(Event(name="t/parent"))
        await t.run_until_idle()
        [run] = t.runs(function_id="parent")
        children = t.runs(function_id="square")
    assert run.status == "completed" and run.output == {"ok": 49, "error": "negative input"}
    assert {c.parent_run_id for c in children} == {run.id}
    assert sorted(c.status for c in children) == ["completed", "failed"]


async def test_invoke_times_out_with_a_step_error(app: outlast.Outlast, engine: TestEngine) -> None:
    @app.function(id="slow-child", trigger="t/never")
    async def slow_child(ctx: Context) -> None:
        await ctx.step.sleep("forever", "30d")

    @app.function(id="impatient", trigger="t/go")
    async def impatient(ctx: Context) -> str:
        try:
            await ctx.step.invoke("call", function=slow_child, timeout="1h")
        except StepError as exc:
            return exc.name
        return "finished"

    async with engine as t:
        await t.send(Event(name="t/go"))
        await t.run_until_idle()
        t.advance("1h")
        await t.run_until_idle()
        [run] = t.runs(function_id="impatient")
    assert run.output == "InngestInvokeTimeoutError"


async def test_parallel_step_bodies_really_overlap(app: outlast.Outlast, engine: TestEngine) -> None:
    @app.function(id="together", trigger="t/par")
    async def together(ctx: Context) -> list[str]:
        a_ready, b_ready = asyncio.Event(), asyncio.Event()

        async def a() -> str:
            a_ready.set()
            await asyncio.wait_for(b_ready.wait(), 5)  # deadlocks unless b runs at the same time
            return "a"

        async def b() -> str:
            b_ready.set()
            await asyncio.wait_for(a_ready.wait(), 5)
            return "b"

        return list(await asyncio.gather(ctx.step.run("a", a), ctx.step.run("b", b)))

    async with engine as t:
        await t.send(Event(name="t/par"))
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "completed" and run.output == ["a", "b"]


async def test_a_sleep_in_one_branch_keeps_the_other_branches_results(app: outlast.Outlast, engine: TestEngine) -> None:
    calls: list[str] = []

    @app.function(id="branches", trigger="t/br")
    async def branches(ctx: Context) -> list[Any]:
        async def sleeper() -> None:
            await ctx.step.sleep("nap", "1m")

        async def worker() -> str:
            await asyncio.sleep(0.01)  # still running when the other branch suspends
            calls.append("work")
            return "done"

        results = await asyncio.gather(sleeper(), ctx.step.run("work", worker))
        return list(results)

    async with engine as t:
        await t.send(Event(name="t/br"))
        await t.run_until_idle()
        t.advance("1m")
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "completed" and run.output == [None, "done"] and calls == ["work"]


async def test_a_branch_suspending_while_anothers_step_is_starting_keeps_that_steps_result(
    app: outlast.Outlast, engine: TestEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other branch's step has been called but its start awaits the store (whether the
    function is paused) when the sleeping branch suspends the attempt: the attempt still waits
    for that step, whose body runs once."""
    calls: list[str] = []
    is_paused = engine.engine.paused.is_paused

    async def slow_to_answer(app_id: str, function_id: str) -> bool:
        for _ in range(5):
            await asyncio.sleep(0)  # a store read still on its way back
        return await is_paused(app_id, function_id)

    monkeypatch.setattr(engine.engine.paused, "is_paused", slow_to_answer)

    @app.function(id="starting", trigger="t/start")
    async def starting(ctx: Context) -> list[Any]:
        async def work() -> str:
            calls.append("work")
            return "done"

        return list(await asyncio.gather(ctx.step.sleep("nap", "1m"), ctx.step.run("work", work)))

    async with engine as t:
        await t.send(Event(name="t/start"))
        await t.run_until_idle()
        t.advance("1m")
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "completed" and run.output == [None, "done"] and calls == ["work"]


async def test_sync_handlers_run_steps_in_parallel(app: outlast.Outlast, engine: TestEngine) -> None:
    import threading

    barrier = threading.Barrier(2, timeout=5)

    @app.function(id="sync-par", trigger="t/sp")
    def sync_par(ctx: outlast.SyncContext) -> list[int]:
        def body(n: int) -> int:
            barrier.wait()  # both bodies must be running at once
            return n

        return ctx.step.parallel([lambda: ctx.step.run("one", body, 1), lambda: ctx.step.run("two", body, 2)])

    async with engine as t:
        await t.send(Event(name="t/sp"))
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "completed" and run.output == [1, 2]


async def test_idempotency_allows_one_run_per_key_per_day(app: outlast.Outlast, engine: TestEngine) -> None:
    @app.function(id="charge", trigger="t/charge", idempotency="event.data.customer")
    async def charge(ctx: Context) -> None:
        return None

    async with engine as t:
        await t.send([Event(name="t/charge", data={"customer": c}) for c in ("a", "a", "b")])
        await t.run_until_idle()
        statuses = sorted(r.status for r in t.runs())
    assert statuses == ["completed", "completed", "skipped"]


async def test_timeouts_cancel_runs_that_start_or_finish_too_late(app: outlast.Outlast, engine: TestEngine) -> None:
    @app.function(id="bounded", trigger="t/bounded", timeouts=outlast.Timeouts(finish="10m"))
    async def bounded(ctx: Context) -> None:
        await ctx.step.sleep("too-long", "1h")

    async with engine as t:
        await t.send(Event(name="t/bounded"))
        await t.run_until_idle()
        t.advance("10m")
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "cancelled" and run.error is not None and "finish timeout" in run.error["message"]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"event": "t/x"}, "needs a timeout"),
        ({"event": "t/x", "timeout": "1h", "if_": "async.data.("}, "invalid expression"),
        ({"event": "inngest/function.invoked", "timeout": "1h"}, "reserved"),
        ({"event": "t/x", "timeout": "400d"}, "longer than one year"),
    ],
)
async def test_bad_waits_fail_the_run_naming_the_step(
    app: outlast.Outlast, engine: TestEngine, kwargs: dict[str, Any], fragment: str
) -> None:
    @app.function(id="bad-wait", trigger="t/bw")
    async def bad_wait(ctx: Context) -> None:
        await ctx.step.wait_for_event("the-wait", **kwargs)

    async with engine as t:
        await t.send(Event(name="t/bw"))
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "failed" and run.error is not None
    assert "'the-wait'" in run.error["message"] and fragment in run.error["message"]


async def test_invoke_of_something_that_is_not_a_function_is_an_error(app: outlast.Outlast, engine: TestEngine) -> None:
    @app.function(id="bad-invoke", trigger="t/bi")
    async def bad_invoke(ctx: Context) -> None:
        await ctx.step.invoke("call", function=print)

    async with engine as t:
        await t.send(Event(name="t/bi"))
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "failed" and run.error is not None and "'call'" in run.error["message"]


async def test_invoking_a_function_nobody_serves_fails_the_step_at_once(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    elsewhere = outlast.Outlast("never-started")

    @elsewhere.function(id="ghost", trigger="t/ghost")
    async def ghost(ctx: Context) -> None:
        return None

    @app.function(id="caller", trigger="t/call", retries=0)
    async def caller(ctx: Context) -> Any:
        return await ctx.step.invoke("call-ghost", function=ghost)

    async with engine as t:
        await t.send(Event(name="t/call"))
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "failed" and run.steps[0].kind == "invoke" and run.steps[0].status == "failed"
    assert (
        run.error is not None
        and "cannot invoke 'never-started-ghost': no live worker or synced app serves it" in run.error["message"]
    )


async def test_a_cancelled_run_marks_its_pending_step_cancelled_and_keeps_the_steps_that_ran(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    @app.function(id="long", trigger="t/long")
    async def long(ctx: Context) -> None:
        await ctx.step.run("side-effect", lambda: "done")
        await ctx.step.wait_for_event("approval", event="t/approve", timeout="1d")

    async with engine as t:
        await t.send(Event(name="t/long"))
        await t.run_until_idle()
        [run] = t.runs()
        assert await t.cancel_run(run.id)
        [run] = t.runs()
    assert run.status == "cancelled"
    assert [(s.id, s.status) for s in run.steps] == [("side-effect", "completed"), ("approval", "cancelled")]
