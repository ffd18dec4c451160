"""Structured logs: every line that concerns a run names it, its function, step and attempt."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

import outlast
from outlast import Context, Event
from outlast.cli.logs import JsonFormatter, TextFormatter, log_observation
from outlast.core.logcontext import RunContextFilter
from outlast.testing import TestEngine


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RunContextFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    saved = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield out
    root.removeHandler(handler)
    root.setLevel(saved)


async def test_user_engine_and_run_lines_carry_the_run_step_and_attempt(captured: io.StringIO) -> None:
    app = outlast.Outlast("logs", database_url="memory://")
    tries = {"n": 0}

    def charge() -> str:
        tries["n"] += 1
        logging.getLogger("payments").info("charging, try %d", tries["n"])
        if tries["n"] == 1:
            raise ConnectionError("timed out")
        return "ok"

    @app.function(id="pay", trigger="t/pay")
    async def pay(ctx: Context) -> str:
        ctx.logger.info("paying")
        return await ctx.step.run("charge", charge)

    async with TestEngine(app) as t:
        t.engine.bus.subscribe(log_observation)
        await t.send(Event(name="t/pay"))
        await t.run_until_idle()
        t.advance("1m")  # the retry's backoff
        await t.run_until_idle()
        [run] = t.runs()
    lines = [json.loads(x) for x in captured.getvalue().splitlines()]
    mine = [x for x in lines if x.get("run_id") == run.id]
    assert all(x["function_id"] == "pay" and x["app_id"] == "logs" for x in mine)
    charging = [x for x in mine if x["message"].startswith("charging")]
    assert [(x["logger"], x["step_id"], x["attempt"]) for x in charging] == [
        ("payments", "charge", 0),
        ("payments", "charge", 1),
    ]
    paying = next(x for x in mine if x["message"] == "paying")
    assert paying["logger"] == "outlast.run" and "step_id" not in paying
    retry = next(x for x in mine if x["logger"] == "outlast.runs" and x["level"] == "warning")
    assert retry["step_id"] == "charge" and "ConnectionError: timed out" in retry["message"]
    assert any(x["message"] == "run completed" and x["outcome"] == "completed" for x in mine)


def test_text_lines_put_the_run_in_brackets() -> None:
    record = logging.LogRecord("outlast.runs", logging.INFO, "", 0, "run %s", ("completed",), None)
    record.run_id, record.function_id, record.attempt, record.app_id = "R1", "pay", 0, "shop"
    assert TextFormatter().format(record).endswith("outlast.runs: run completed [run=R1 function=pay attempt=0]")
