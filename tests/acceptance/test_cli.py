"""The `outlast` command line against a real SQLite file.

Most commands run in this process (`outlast.cli.main`, output captured): they are the same code
as the installed command, without an interpreter start each. What needs a real process (a
worker that is stopped, a closed pipe) runs as one.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

import outlast
from outlast import Context
from outlast.cli import main, parser
from outlast.core.clock import SystemClock
from outlast.core.models import AppScope, WorkerInfo
from outlast.runtime.engine import Engine
from outlast.runtime.worker import Worker
from outlast.settings import Settings
from outlast.storage import open_store

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    rc: int
    out: str
    err: str


def cli(db: Path, *args: str, stdin: bytes | None = None) -> Result:
    """`outlast --database-url sqlite:///DB ARGS...` in this process (the global option goes first)."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin
    if stdin is not None:
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
    try:
        with redirect_stdout(out), redirect_stderr(err):
            rc = main(["--database-url", f"sqlite:///{db}", *args])
    finally:
        sys.stdin = saved
    return Result(rc, out.getvalue(), err.getvalue())


def shop() -> outlast.Outlast:
    app = outlast.Outlast("shop")
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("provider timed out")
        return "charged"

    @app.function(id="order", trigger="shop/order", retries=2)
    async def order(ctx: Context) -> Any:
        ctx.logger.info("order %s", ctx.event.data.get("n"))
        return await ctx.step.run("charge", flaky)

    @app.function(id="big", trigger="shop/big")
    async def big(ctx: Context) -> str:
        return "y" * (3 * 1024 * 1024)

    @app.function(id="nap", trigger="shop/nap")
    async def nap(ctx: Context) -> None:
        await ctx.step.sleep("nap", "1h")

    return app


def run_app(db: Path, app: outlast.Outlast) -> None:
    """Sync the app's functions into the database and run everything due, in this process."""

    async def go() -> None:
        engine = Engine(open_store(f"sqlite:///{db}"), SystemClock(), Settings(backoff_scale=0.0))
        await engine.add_source(app)
        await engine.open()
        try:
            for _ in range(10):  # with backoff scale 0 a retry is due 1 ms after its failure: drain again then
                await Worker(engine).drain()
                due = await engine.store.next_due_at(AppScope(app_id=app.id))
                if due is None or due > engine.clock.now_ms() + 1_000:  # e.g. only the nap's 1 h sleep left
                    break
                await asyncio.sleep(max(0, due - engine.clock.now_ms()) / 1000)
        finally:
            await engine.close()

    asyncio.run(go())


def test_send_shows_the_runs_each_event_started_and_runs_can_be_filtered_paged_and_read(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    run_app(db, shop())
    sent = cli(db, "send", "shop/order", "--data", '{"n": 1}')
    assert sent.rc == 0, sent.err
    event_line, run_line = sent.out.splitlines()
    event_id = event_line.removeprefix("event ")
    assert len(event_id) == 26 and run_line.split()[:2] == ["started", "run"] and "shop/order" in run_line
    run_id = run_line.split()[2]
    (tmp_path / "data.json").write_text('{"n": 2}')
    assert cli(db, "send", "shop/order", "--data", f"@{tmp_path / 'data.json'}").rc == 0
    piped = cli(db, "send", "shop/order", "--data", "-", "--json", stdin=b'{"n": 3}')
    [piped_event] = json.loads(piped.out)["events"]
    assert piped_event["runs"][0]["function_id"] == "order"
    nothing = cli(db, "send", "shop/unknown")
    assert "started no run (no function in this database is triggered by 'shop/unknown')" in nothing.out
    run_app(db, shop())

    page1 = json.loads(cli(db, "runs", "--function", "order", "--limit", "2", "--json").out)
    assert [r["status"] for r in page1["runs"]] == ["completed", "completed"] and page1["next"]
    page2 = json.loads(cli(db, "runs", "--function", "order", "--limit", "2", "--before", page1["next"], "--json").out)
    assert [r["id"] for r in page2["runs"]] == [run_id] and page2["next"] is None
    assert [r["id"] for r in json.loads(cli(db, "runs", "--event", event_id, "--json").out)["runs"]] == [run_id]
    assert json.loads(cli(db, "runs", "--app", "other", "--json").out)["runs"] == []
    assert len(json.loads(cli(db, "runs", "--since", "1h", "--status", "completed", "--json").out)["runs"]) == 3
    assert json.loads(cli(db, "runs", "--until", "2001-01-01", "--json").out)["runs"] == []
    table = cli(db, "runs", "--limit", "1").out.splitlines()
    assert table[0].split()[:3] == ["RUN", "FUNCTION", "STATUS"] and table[-1].startswith("(more: add --before ")
    listed_row = next(line for line in cli(db, "runs", "--event", event_id).out.splitlines() if run_id in line)
    assert listed_row.split()[:3] == [run_id, "shop/order", "completed"]  # named as `run`, `send` and `event` do

    trace = cli(db, "run", run_id).out
    assert f"run {run_id}  function shop/order  status completed" in trace and '"charged"' in trace
    assert "FAILED ATTEMPTS" in trace and "step 'charge' attempt 1: ConnectionError: provider timed out" in trace
    assert "LOGS" in trace and "order 1" in trace

    shown = cli(db, "event", event_id).out
    assert f"{run_id}  started" in shown and "shop/order" in shown
    listed = cli(db, "events", "--name", "shop/order", "--json")
    assert len(json.loads(listed.out)["events"]) == 3
    assert "inngest/function.finished" not in cli(db, "events").out
    assert "inngest/function.finished" in cli(db, "events", "--system").out
    functions = cli(db, "functions").out
    assert "order" in functions and "shop/order" in functions and "retries=2" in functions


def test_cancel_tells_an_active_run_from_a_finished_or_unknown_one(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    run_app(db, shop())
    napping = cli(db, "send", "shop/nap").out.splitlines()[1].split()[2]
    done = cli(db, "send", "shop/order").out.splitlines()[1].split()[2]
    run_app(db, shop())
    assert cli(db, "cancel", napping).out.strip() == f"cancelled {napping}"
    trace = cli(db, "run", napping).out
    assert "status cancelled" in trace and "cancelled" in next(
        line for line in trace.splitlines() if line.startswith("nap ")
    )
    finished = cli(db, "cancel", done)
    assert finished.rc == 1 and f"run '{done}' already finished: completed at " in finished.err
    unknown = cli(db, "cancel", "01NOSUCHRUN")
    assert unknown.rc == 1 and "no run '01NOSUCHRUN' in this database" in unknown.err


def test_a_long_output_is_clipped_and_json_prints_it_whole(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    run_app(db, shop())
    run_id = cli(db, "send", "shop/big").out.splitlines()[1].split()[2]
    run_app(db, shop())
    shown = cli(db, "run", run_id).out
    assert len(shown) < 10_000 and "3,145,730 bytes in all" in shown
    assert len(json.loads(cli(db, "run", run_id, "--json").out)["run"]["output"]) == 3 * 1024 * 1024


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ("{oops", "--data: not valid JSON"),
        ('{"x": NaN}', "(NaN and Infinity are not JSON numbers)"),
        ("{" + '"a":{' * 999 + "}" * 1000, "event[0]: nested more than 254 levels deep"),
        ("[1, 2]", "event[0].data: must be a JSON object, got list"),
        ("@/no/such/file.json", "--data: cannot read '/no/such/file.json'"),
    ],
)
def test_bad_data_gets_a_clear_error_and_stores_nothing(tmp_path: Path, data: str, fragment: str) -> None:
    db = tmp_path / "cli.db"
    result = cli(db, "send", "x/y", "--data", data)
    assert result.rc == 2 and fragment in result.err and "Traceback" not in result.err
    assert not db.exists() or json.loads(cli(db, "events", "--json").out)["events"] == []


def test_bad_names_and_settings_get_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "cli.db"
    too_long = cli(db, "send", "x" * 600)
    assert too_long.rc == 2 and "600 characters" in too_long.err
    assert "must not contain control characters" in cli(db, "send", "a\nb").err
    missing = cli(db, "dev", "no/such/file.py")
    assert missing.rc == 2 and "no such file" in missing.err
    monkeypatch.setenv("OUTLAST_WORKER_CONCURRENCY", "abc")
    monkeypatch.setenv("OUTLAST_LEASE_MS", "-5")
    bad = cli(db, "runs")
    assert bad.rc == 2 and bad.err.startswith("outlast: 2 invalid settings:")
    assert "OUTLAST_WORKER_CONCURRENCY: expected a whole number" in bad.err and "OUTLAST_LEASE_MS" in bad.err


@pytest.mark.parametrize(
    "command", [["runs"], ["run", "X"], ["events"], ["event", "X"], ["functions"], ["workers"], ["cancel", "X"]]
)
def test_read_commands_refuse_a_database_that_does_not_exist(tmp_path: Path, command: list[str]) -> None:
    db = tmp_path / "typo" / "nothing.db"
    result = cli(db, *command)
    assert result.rc == 2 and f"no database at '{db}'" in result.err
    assert not (tmp_path / "typo").exists()


def test_every_option_has_help_and_global_options_go_before_or_after_the_command() -> None:
    top = parser()
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in sub.choices.items():
        for action in command._actions:
            assert action.help, f"`outlast {name}` {action.option_strings or action.dest} has no help"
    before = top.parse_args(["--database-url", "sqlite:///a.db", "cancel", "R"])
    after = top.parse_args(["cancel", "R", "--database-url", "sqlite:///b.db"])
    assert (before.database_url, after.database_url) == ("sqlite:///a.db", "sqlite:///b.db")
    assert "{queued,running,completed,failed,cancelled,skipped}" in sub.choices["runs"].format_help()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["worker", "/etc/passwd"], "APP: '/etc/passwd' is not a Python file"),
        (["worker", "/tmp"], "APP: '/tmp' is a directory"),
        (["worker", ":"], "APP: ':' is not path/to/file.py, module or module:attr"),
        (["worker", "no_such_module_here"], "APP: no module named 'no_such_module_here'"),
        (["runs", "--limit", "0"], "--limit: expected a whole number from 1 to 100,000, got '0'"),
        (["events", "--limit", "0"], "--limit: expected a whole number from 1 to 100,000, got '0'"),
        (["dev", "--port", "70000"], "--port: expected a whole number from 0 to 65,535"),
        (["dev", "--connect-port", "gateway"], "--connect-port: expected a port from 1 to 65,535, or 'off'"),
    ],
)
def test_a_bad_app_or_number_gets_a_clear_error_not_a_traceback(tmp_path: Path, args: list[str], fragment: str) -> None:
    db = tmp_path / "cli.db"
    cli(db, "send", "x/y")  # a database to read
    result = subprocess.run(
        [sys.executable, "-m", "outlast.cli", "--database-url", f"sqlite:///{db}", *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and fragment in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"OUTLAST_EVENT_KEY": "short"}, "event key #1 has 5 characters; an event key needs at least 16"),
        ({"OUTLAST_EVENT_KEY": "a-long-enough-event-key,k"}, "event key #2 has 1 characters"),
        ({"OUTLAST_SIGNING_KEY": "signkey-prod-abcd"}, "the signing key has 4 hex digits"),
        ({"OUTLAST_DASHBOARD_PASSWORD": "hunter2"}, "password (OUTLAST_DASHBOARD_PASSWORD) has 7 characters"),
    ],
)
def test_start_refuses_secrets_too_short_to_be_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], fragment: str
) -> None:
    strong = {
        "OUTLAST_EVENT_KEY": "a-long-enough-event-key",
        "OUTLAST_SIGNING_KEY": "signkey-prod-" + "0f" * 32,
        "OUTLAST_DASHBOARD_PASSWORD": "a long passphrase",
    }
    for name, value in {**strong, **env}.items():
        monkeypatch.setenv(name, value)
    result = cli(tmp_path / "cli.db", "start", "--port", "0")
    assert result.rc == 2 and fragment in result.err, result.err
    assert "at least" in result.err and all(v not in result.err for v in env.values() if len(v) > 1)


def outlast_process(db: Path, *args: str, env: dict[str, str] | None = None, **kwargs: Any) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "OUTLAST_DATABASE_URL": f"sqlite:///{db}",
        "PYTHONPATH": str(ROOT),
        "OUTLAST_POLL_INTERVAL_MS": "20",
        **(env or {}),
    }
    return subprocess.Popen([sys.executable, "-m", "outlast.cli", *args], env=env, cwd=ROOT, text=True, **kwargs)


def wait_for(check: Any, what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_workers_lists_connect_workers_with_their_sdk_version_and_capacity(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"

    async def announce() -> None:
        store = open_store(f"sqlite:///{db}")
        await store.open()
        now = SystemClock().now_ms()
        own = WorkerInfo(id="own-1", app_id="shop", host="box", pid=42, started_at=now, heartbeat_at=now)
        try:
            await store.heartbeat(own)
            await store.heartbeat(
                replace(own, id="conn-1", app_id="js-app", pid=0, in_flight=2, sdk="typescript", sdk_version="4.24.0")
            )
            await store.heartbeat(replace(own, id="conn-2", app_id="py-app", pid=0, sdk="py", capacity=8))
        finally:
            await store.close()

    asyncio.run(announce())
    head, *rows = cli(db, "workers").out.splitlines()
    assert head.split()[:7] == ["WORKER", "APP", "SDK", "VERSION", "CAPACITY", "IN", "FLIGHT"]
    table = {row.split()[0]: row.split()[1:6] for row in rows}
    assert table == {
        "own-1": ["shop", "outlast", "-", "-", "0"],
        "conn-1": ["js-app", "typescript", "4.24.0", "unbounded", "2"],
        "conn-2": ["py-app", "py", "-", "8", "0"],
    }
    listed = {w["id"]: w for w in json.loads(cli(db, "workers", "--json").out)["workers"]}
    assert {k: listed["conn-1"][k] for k in ("sdk", "sdk_version", "capacity", "in_flight")} == {
        "sdk": "typescript",
        "sdk_version": "4.24.0",
        "capacity": None,
        "in_flight": 2,
    }
    assert (listed["own-1"]["sdk"], listed["conn-2"]["capacity"]) == (None, 8)


def test_a_worker_logs_json_lines_about_its_runs_and_leaves_the_list_when_stopped(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    log = tmp_path / "worker.log"
    with log.open("w") as sink:
        worker = outlast_process(
            db,
            "--log-format",
            "json",
            "worker",
            "tests.apps.effects:app",
            "--log-level",
            "info",
            env={"OUTLAST_TEST_EFFECTS": str(tmp_path / "effects.db")},
            stdout=sink,
            stderr=sink,
        )
    try:
        wait_for(lambda: db.exists() and "effects" in cli(db, "workers").out, "the worker to announce itself")
        [row] = json.loads(cli(db, "workers", "--json").out)["workers"]
        assert row["app_id"] == "effects" and row["in_flight"] == 0 and row["last_error"] is None
        run_id = cli(db, "send", "effects/go").out.splitlines()[1].split()[2]
        wait_for(lambda: "status completed" in cli(db, "run", run_id).out, "the run to complete")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0
        assert cli(db, "workers").out.splitlines()[1:] == [], "a cleanly stopped worker leaves the list at once"
    finally:
        if worker.poll() is None:
            worker.kill()
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    about = [x for x in lines if x.get("run_id") == run_id]
    assert {"run started", "run completed"} <= {x["message"] for x in about}, log.read_text()
    steps = [x for x in about if x.get("step_id")]
    assert {x["step_id"] for x in steps} == {f"step-{i}" for i in range(5)}
    assert all(x["function_id"] == "five-steps" and x["attempt"] == 0 and x["level"] == "info" for x in steps)


def test_a_closed_pipe_ends_the_output_quietly(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    run_app(db, shop())
    for _ in range(3):
        cli(db, "send", "shop/order")
    reader = outlast_process(db, "events", "--limit", "3", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader.stdout is not None and reader.stderr is not None
    reader.stdout.close()  # like `| head -0`: the reader is gone before the output is written
    assert reader.wait(30) == 0
    with reader.stderr:
        assert "Traceback" not in reader.stderr.read()


def test_the_connect_gateway_port_is_inngests_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    from outlast.cli.serve import connect_port

    monkeypatch.delenv("OUTLAST_CONNECT_PORT")
    assert connect_port(argparse.Namespace(connect_port=None)) == 8289
    assert connect_port(argparse.Namespace(connect_port=0)) is None  # --connect-port off
    monkeypatch.setenv("OUTLAST_CONNECT_PORT", "off")
    assert connect_port(argparse.Namespace(connect_port=None)) is None
    monkeypatch.setenv("OUTLAST_CONNECT_PORT", "18289")
    assert connect_port(argparse.Namespace(connect_port=None)) == 18289
    assert connect_port(argparse.Namespace(connect_port=28289)) == 28289  # the flag wins


def test_a_bad_connect_port_in_the_environment_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTLAST_CONNECT_PORT", "99999")
    result = cli(tmp_path / "cli.db", "dev", "--port", "0")
    assert result.rc == 2 and "OUTLAST_CONNECT_PORT: expected a port from 1 to 65,535" in result.err, result.err
