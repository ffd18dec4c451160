"""`outlast signal` against a real SQLite file, as an operator runs it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import outlast
from outlast import Context, Event
from outlast.testing import TestEngine
from tests.acceptance.test_ops_cli import outlast_cli


def approval_app() -> outlast.Outlast:
    app = outlast.Outlast("cli-signals")

    @app.function(id="approve", trigger="t/doc")
    async def approve(ctx: Context) -> Any:
        return await ctx.step.wait_for_signal("approval", signal="approve:d1", timeout="1h")

    return app


async def test_outlast_signal_resumes_the_waiting_run(tmp_path: Path) -> None:
    db = tmp_path / "signal.db"
    app = approval_app()
    async with TestEngine(app, database_url=f"sqlite:///{db}", start_ms=int(time.time() * 1000)) as t:
        await t.send(Event(name="t/doc"))
        await t.run_until_idle()
        [run] = t.runs()
        sent = outlast_cli(db, "signal", "approve:d1", "--data", '{"by": "ann"}', "--json")
        assert json.loads(sent.stdout) == {"run_id": run.id, "held": False}
        again = outlast_cli(db, "signal", "approve:d1", check=False)
        assert again.returncode == 1 and "no run waits for signal 'approve:d1'" in again.stderr
        t.advance("1m")  # past the CLI's own (real) clock, which made the run due
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "completed" and run.output == {"by": "ann"}


async def test_outlast_signal_refuses_bad_input_without_a_traceback(tmp_path: Path) -> None:
    db = tmp_path / "bad.db"
    async with TestEngine(approval_app(), database_url=f"sqlite:///{db}"):
        pass
    for args, fragment in [
        (["x" * 1024], "signal: 1024 characters"),
        (["s", "--data", "[1]"], "data: expected a JSON object"),
        (["s", "--hold", "8d"], "hold: must be more than 0 and at most 7 days"),
    ]:
        done = outlast_cli(db, "signal", *args, check=False)
        assert done.returncode == 2 and fragment in done.stderr and "Traceback" not in done.stderr, done.stderr


async def test_outlast_pause_and_resume_a_function(tmp_path: Path) -> None:
    db = tmp_path / "pause.db"
    app = approval_app()
    async with TestEngine(app, database_url=f"sqlite:///{db}", start_ms=int(time.time() * 1000)) as t:
        paused = outlast_cli(db, "pause", "approve")
        assert paused.stdout.strip() == "paused cli-signals/approve"
        await t.send(Event(name="t/doc"))
        await t.run_until_idle()
        assert [r.skip_reason for r in t.runs()] == ["paused"]
        assert outlast_cli(db, "resume", "approve").stdout.strip() == "resumed cli-signals/approve"
        assert "already resumed" in outlast_cli(db, "resume", "approve").stdout
        ghost = outlast_cli(db, "pause", "ghost", check=False)
        assert ghost.returncode == 2 and "function 'ghost': no live worker" in ghost.stderr
        assert "Traceback" not in ghost.stderr
