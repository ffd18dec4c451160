"""Signals: a run waits on a name; a signal resumes it once, is dropped or held, and a second wait
on the same name fails or takes it over."""

from __future__ import annotations

from typing import Any

import pytest

import outlast
from outlast import Context, Event, StepError
from outlast.testing import TestEngine


def approval(app: outlast.Outlast, *, on_conflict: str = "fail", timeout: str = "1h") -> None:
    @app.function(id="approve", trigger="t/doc", retries=0)
    async def approve(ctx: Context) -> Any:
        name = f"approve:{ctx.event.data['doc']}"
        try:
            got = await ctx.step.wait_for_signal("approval", signal=name, timeout=timeout, on_conflict=on_conflict)
        except StepError as exc:
            return {"error": exc.name}
        return {"approved": got}


async def test_a_signal_resumes_the_waiting_run_once_with_its_data(app: outlast.Outlast, engine: TestEngine) -> None:
    approval(app)
    async with engine as t:
        await t.send(Event(name="t/doc", data={"doc": "d1"}))
        await t.run_until_idle()
        [run] = t.runs()
        assert run.status == "running"
        assert await t.send_signal("approve:d1", {"by": "ann"}) == run.id
        assert await t.send_signal("approve:d1", {"by": "bob"}) is None  # nobody waits any more
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "completed" and run.output == {"approved": {"by": "ann"}}
    [step] = run.steps
    assert (step.kind, step.status) == ("wait_for_signal", "completed")


async def test_a_signal_without_data_gives_an_empty_dict_and_a_timeout_gives_none(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    approval(app)
    async with engine as t:
        await t.send([Event(name="t/doc", data={"doc": "a"}), Event(name="t/doc", data={"doc": "b"})])
        await t.run_until_idle()
        assert await t.send_signal("approve:a") is not None
        t.advance("1h")
        await t.run_until_idle()
        assert await t.send_signal("approve:b") is None  # b's wait timed out
        outputs = sorted(str(r.output) for r in t.runs())
    assert outputs == ["{'approved': None}", "{'approved': {}}"]


async def test_a_signal_nobody_waits_for_is_dropped_unless_held(app: outlast.Outlast, engine: TestEngine) -> None:
    approval(app)
    async with engine as t:
        assert await t.send_signal("approve:early", {"n": 1}) is None  # dropped
        assert await t.send_signal("approve:held", {"n": 2}, hold="10m") is None
        assert await t.send_signal("approve:stale", {"n": 3}, hold="10m") is None
        t.advance("5m")
        await t.send([Event(name="t/doc", data={"doc": d}) for d in ("early", "held")])
        await t.run_until_idle()
        t.advance("6m")  # the stale hold has run out before its wait begins
        await t.send(Event(name="t/doc", data={"doc": "stale"}))
        await t.run_until_idle()
        early, held, stale = t.runs()
        assert early.status == "running" and stale.status == "running"
        assert held.status == "completed" and held.output == {"approved": {"n": 2}}
        # a held signal is given once: a second wait on the name does not get it again
        assert await t.send_signal("approve:held", {"n": 4}) is None


async def test_a_second_wait_on_a_name_fails_with_a_conflict(app: outlast.Outlast, engine: TestEngine) -> None:
    approval(app)
    async with engine as t:
        await t.send(Event(name="t/doc", data={"doc": "same"}))
        await t.run_until_idle()
        await t.send(Event(name="t/doc", data={"doc": "same"}))
        await t.run_until_idle()
        first, second = t.runs()
        assert second.status == "completed" and second.output == {"error": "SignalConflictError"}
        assert await t.send_signal("approve:same", {"ok": True}) == first.id
        await t.run_until_idle()
        assert t.get_run(first.id).output == {"approved": {"ok": True}}  # type: ignore[union-attr]


async def test_replace_takes_the_name_over_and_the_first_waits_to_its_timeout(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    approval(app, on_conflict="replace")
    async with engine as t:
        await t.send(Event(name="t/doc", data={"doc": "same"}))
        await t.run_until_idle()
        t.advance("1m")
        await t.send(Event(name="t/doc", data={"doc": "same"}))
        await t.run_until_idle()
        first, second = t.runs()
        assert await t.send_signal("approve:same", {"to": "second"}) == second.id
        await t.run_until_idle()
        assert t.get_run(first.id).status == "running"  # type: ignore[union-attr]
        t.advance("1h")
        await t.run_until_idle()
        first, second = t.runs()
    assert first.output == {"approved": None} and second.output == {"approved": {"to": "second"}}


async def test_a_cancelled_run_no_longer_holds_its_name(app: outlast.Outlast, engine: TestEngine) -> None:
    approval(app)
    async with engine as t:
        await t.send(Event(name="t/doc", data={"doc": "x"}))
        await t.run_until_idle()
        [run] = t.runs()
        assert await t.cancel_run(run.id)
        assert await t.send_signal("approve:x") is None
        await t.send(Event(name="t/doc", data={"doc": "x"}))
        await t.run_until_idle()
        assert await t.send_signal("approve:x", {"n": 1}) is not None


async def test_sync_handlers_wait_for_signals_too(app: outlast.Outlast, engine: TestEngine) -> None:
    @app.function(id="sync-wait", trigger="t/s")
    def sync_wait(ctx: outlast.SyncContext) -> Any:
        return ctx.step.wait_for_signal("w", signal="go", timeout="1d")

    async with engine as t:
        await t.send(Event(name="t/s"))
        await t.run_until_idle()
        assert await t.send_signal("go", {"v": 1}) is not None
        await t.run_until_idle()
        [run] = t.runs()
    assert run.output == {"v": 1}


@pytest.mark.parametrize(
    ("signal", "data", "hold", "fragment"),
    [
        ("", None, None, "signal: the signal name must not be empty"),
        ("x" * 1024, None, None, "signal: 1024 characters"),
        ("ok", [1], None, "data: expected a JSON object"),
        ("ok", None, "8d", "hold: must be more than 0 and at most 7 days"),
        ("ok", None, "soon", "hold"),
    ],
)
async def test_bad_signals_are_refused_naming_the_field(
    app: outlast.Outlast, signal: str, data: Any, hold: Any, fragment: str
) -> None:
    approval(app)
    async with TestEngine(app) as t:
        with pytest.raises(outlast.InvalidSignalError, match=fragment[:20]):
            await t.send_signal(signal, data, hold=hold)
        await t.send(Event(name="t/doc", data={"doc": "ok"}))
        await t.run_until_idle()
        assert [r.status for r in t.runs()] == ["running"]  # nothing was held


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"signal": "s"}, "needs a timeout"),
        ({"signal": "", "timeout": "1h"}, "signal name must not be empty"),
        ({"signal": "s", "timeout": "1h", "on_conflict": "wait"}, "on_conflict"),
    ],
)
async def test_bad_signal_waits_fail_the_run_naming_the_step(
    app: outlast.Outlast, kwargs: dict[str, Any], fragment: str
) -> None:
    @app.function(id="bad-signal-wait", trigger="t/bw")
    async def bad(ctx: Context) -> None:
        await ctx.step.wait_for_signal("the-wait", **kwargs)

    async with TestEngine(app) as t:
        await t.send(Event(name="t/bw"))
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "failed" and run.error is not None
    assert "'the-wait'" in run.error["message"] and fragment in run.error["message"]
