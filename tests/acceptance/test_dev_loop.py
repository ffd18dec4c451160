"""The dev loop: `outlast dev` as a user watches it (the dev log), `--reload`, and the examples."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from outlast.cli.loader import load_app
from tests.acceptance.test_cli import cli, outlast_process

ROOT = Path(__file__).resolve().parents[2]

DEV_APP = """
import outlast
from outlast import Context

app = outlast.Outlast("devapp")
calls = {"n": 0}


def flaky() -> str:
    calls["n"] += 1
    if calls["n"] == 1:
        raise ConnectionError("provider timed out")
    return "ok"


@app.function(id="flaky", trigger="d/flaky")
async def flaky_fn(ctx: Context) -> str:
    return await ctx.step.run("call", flaky)


@app.function(id="sleeper", trigger="d/sleep")
async def sleeper(ctx: Context) -> None:
    await ctx.step.sleep("nap", "1h")


@app.function(id="daily", trigger=outlast.TriggerCron("TZ=Europe/Paris 0 9 * * *"))
async def daily(ctx: Context) -> None:
    return None
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_text(path: Path, text: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = path.read_text()
        if text in content:
            return content
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in the output:\n{path.read_text()}")


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_the_dev_log_shows_retry_errors_cancellations_from_elsewhere_and_cron_zones(tmp_path: Path) -> None:
    (tmp_path / "devapp.py").write_text(DEV_APP)
    db, out = tmp_path / "dev.db", tmp_path / "dev.log"
    with out.open("w") as sink:
        dev = outlast_process(
            db, "dev", str(tmp_path / "devapp.py"), "--port", str(free_port()), stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        banner = wait_for_text(out, "serving on")
        assert "outlast: cron daily (TZ=Europe/Paris 0 9 * * *) next at " in banner
        assert " 09:00 CET (Europe/Paris)" in banner or " 09:00 CEST (Europe/Paris)" in banner
        flaky = cli(db, "send", "d/flaky").out.splitlines()[1].split()[2]
        wait_for_text(out, f"{flaky}  flaky                    completed")
        sleeping = cli(db, "send", "d/sleep").out.splitlines()[1].split()[2]
        wait_for_text(out, f"{sleeping}  sleeper                  suspended")
        assert cli(db, "cancel", sleeping).rc == 0  # from another process than the dev loop
        log = wait_for_text(out, f"{sleeping}  sleeper                  cancelled")
    finally:
        stop(dev)
    assert (
        f"{flaky}  flaky                    step 'call' attempt 1 failed, retrying: ConnectionError: "
        "provider timed out" in log
    )
    assert log.count(f"{sleeping}  sleeper                  cancelled") == 1


def test_dev_reload_restarts_when_the_app_changes(tmp_path: Path) -> None:
    pytest.importorskip("watchfiles")
    app_file = tmp_path / "devapp.py"
    app_file.write_text(DEV_APP)
    db, out = tmp_path / "dev.db", tmp_path / "dev.log"
    with out.open("w") as sink:
        dev = outlast_process(
            db, "dev", str(app_file), "--reload", "--port", str(free_port()), stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        wait_for_text(out, "functions: daily, flaky, sleeper")
        app_file.write_text(
            DEV_APP
            + """

@app.function(id="newbie", trigger="d/new")
async def newbie(ctx: Context) -> str:
    return "new"
"""
        )
        wait_for_text(out, "functions: daily, flaky, newbie, sleeper")
        wait_for_text(out, "serving on", timeout=30)
        run_id = cli(db, "send", "d/new").out.splitlines()[1].split()[2]
        wait_for_text(out, f"{run_id}  newbie                   completed")
    finally:
        stop(dev)


def pid_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for its reaper has stopped running)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def until(check: Callable[[], bool], timeout: float) -> float:
    """Seconds until `check()` holds; fails after `timeout`."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, f"not within {timeout}s"
        time.sleep(0.02)
    return time.monotonic() - start


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_dev_reload_stops_its_child_promptly_and_the_child_dies_with_it(tmp_path: Path, sig: signal.Signals) -> None:
    """Started as a background job is (SIGINT ignored), `dev --reload` still stops on SIGINT, and a
    killed supervisor leaves no server behind holding the port."""
    pytest.importorskip("watchfiles")
    (tmp_path / "devapp.py").write_text(DEV_APP)
    port, out = free_port(), tmp_path / "dev.log"
    args = ["sh", "-c", 'trap "" INT; exec "$@"', "sh", sys.executable, "-m", "outlast.cli", "dev"]
    with out.open("w") as sink:
        supervisor = subprocess.Popen(
            [*args, str(tmp_path / "devapp.py"), "--reload", "--port", str(port)],
            env={**os.environ, "OUTLAST_DATABASE_URL": f"sqlite:///{tmp_path}/dev.db", "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_text(out, "serving on")
        listed = Path(f"/proc/{supervisor.pid}/task/{supervisor.pid}/children").read_text()
        children = [int(pid) for pid in listed.split()]
        supervisor.send_signal(sig)
        until(lambda: supervisor.poll() is not None, timeout=10)
        assert supervisor.returncode == (-signal.SIGKILL if sig == signal.SIGKILL else 0)
        until(lambda: not any(pid_alive(child) for child in children), timeout=10)
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # the port is free again
    finally:
        supervisor.kill()
        supervisor.wait()


def test_the_examples_send_nothing_when_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "examples.db"
    monkeypatch.setenv("OUTLAST_DATABASE_URL", f"sqlite:///{db}")
    for example in sorted((ROOT / "examples").glob("*.py")):
        assert load_app(str(example)).functions, example
    assert not db.exists(), "importing an example (as `outlast dev` does) must not send events"
