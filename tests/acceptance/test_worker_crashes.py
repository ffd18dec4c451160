"""Real worker processes against step bodies that end their process, or raise what usually does.

A run whose attempts keep killing their worker (`os._exit` in a step) fails clearly after
`max_crashed_attempts`, while workers restarted in a loop complete every other run, including
those that were in flight each time it died. `SystemExit` and `KeyboardInterrupt` raised in a
step body are that step's error: the worker lives on.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import outlast
from outlast.events import Event
from tests.apps.crashers import POISON_EXIT_CODE
from tests.conftest import PG_URL

ROOT = Path(__file__).resolve().parents[2]


def start_worker(db_url: str, app: str = "tests.apps.crashers:app", **settings: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "OUTLAST_DATABASE_URL": db_url,
        "OUTLAST_LEASE_MS": "1000",
        "OUTLAST_POLL_INTERVAL_MS": "20",
        "OUTLAST_BACKOFF_SCALE": "0.0001",
        "PYTHONPATH": str(ROOT),
        **{f"OUTLAST_{k.upper()}": v for k, v in settings.items()},
    }
    return subprocess.Popen(
        [sys.executable, "-m", "outlast.cli", "worker", app],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)


@pytest.fixture(params=["sqlite", "postgres"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[outlast.Outlast]:
    from tests.apps.crashers import app

    if request.param == "postgres":
        if not PG_URL:
            pytest.skip("OUTLAST_TEST_POSTGRES_URL is not set")
        from tests.conftest import pg_database

        url = pg_database()
    else:
        url = f"sqlite:///{tmp_path}/crashers.db"
    sender = outlast.Outlast(app.id, database_url=url)
    sender.functions = app.functions
    yield sender
    sender.close()


def statuses(client: outlast.Outlast) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for run in client.list_runs(limit=1000):
        found.setdefault(run.function_id, []).append(run.status)
    return found


def keep_a_worker_running(client: outlast.Outlast, done: Callable[[], bool], timeout: float = 120) -> list[int]:
    """Restart the worker whenever it dies, until `done()`; return the exit codes of those that died."""
    url, exits = client.settings.database_url, []
    worker = start_worker(url)
    deadline = time.monotonic() + timeout
    try:
        while not done():
            assert time.monotonic() < deadline, f"not done in time: {statuses(client)}, exits {exits}"
            if (code := worker.poll()) is not None:
                exits.append(code)
                worker = start_worker(url)
            time.sleep(0.1)
    finally:
        stop(worker)
    return exits


def test_a_run_that_keeps_killing_its_worker_fails_clearly_and_the_others_complete(client: outlast.Outlast) -> None:
    client.send([Event(name="crash/steady", data={"i": i}) for i in range(4)])
    [poison_event] = client.send(Event(name="crash/poison"))
    client.send([Event(name="crash/steady", data={"i": i}) for i in range(4, 6)])

    def finished() -> bool:
        found = statuses(client)
        return found.get("poison") == ["failed"] and found.get("steady") == ["completed"] * 6

    exits = keep_a_worker_running(client, finished)
    assert exits == [POISON_EXIT_CODE] * 3  # each of its three attempts killed a worker, then it failed
    [poison] = client.list_runs(function_id="poison")
    assert poison.event_ids == [poison_event]
    assert poison.error is not None and poison.error["name"] == "WorkerCrashedError"
    assert poison.error["message"] == (
        "its attempts stopped their worker 3 times in a row without progress: killed, os._exit, out of memory?"
    )
    for run in client.list_runs(function_id="steady"):
        assert run.output == 3


def test_a_worker_killed_after_the_last_step_reruns_only_the_steps_not_stored(
    client: outlast.Outlast, tmp_path: Path
) -> None:
    """Each result is stored before the next step body starts, the last with the run's end: a
    worker that dies in between leaves `a` and `b` stored, and only `c` runs again."""
    effects, marker = tmp_path / "effects", tmp_path / "died"
    client.send(Event(name="crash/before-end", data={"effects": str(effects), "marker": str(marker)}))

    def finished() -> bool:
        return statuses(client).get("dies-before-end") == ["completed"]

    assert keep_a_worker_running(client, finished) == [POISON_EXIT_CODE]
    assert marker.exists()
    [run] = client.list_runs(function_id="dies-before-end")
    assert run.output == "abc"
    assert effects.read_text().split() == ["a", "b", "c", "c"]
    full = client.get_run(run.id)
    assert full is not None and [(s.id, s.status, s.output) for s in full.steps] == [
        ("a", "completed", "a"),
        ("b", "completed", "b"),
        ("c", "completed", "c"),
    ]


@pytest.mark.parametrize("kind, name", [("exit", "SystemExit"), ("interrupt", "KeyboardInterrupt")])
def test_system_exit_and_keyboard_interrupt_in_a_step_are_the_steps_error(
    client: outlast.Outlast, kind: str, name: str
) -> None:
    worker = start_worker(client.settings.database_url)
    try:
        [sent] = client.send(Event(name="crash/raise", data={"kind": kind}))
        deadline = time.monotonic() + 60
        while [r.status for r in client.list_runs(function_id="raiser")] != ["completed"]:
            assert worker.poll() is None, f"the worker died (exit code {worker.returncode})"
            assert time.monotonic() < deadline, statuses(client)
            time.sleep(0.1)
        [run] = client.list_runs(function_id="raiser")
        assert run.event_ids == [sent] and run.output == {"caught": name}
        full = client.get_run(run.id)
        assert full is not None
        [step] = full.steps
        assert (step.status, step.attempts, step.error and step.error["name"]) == ("failed", 2, name)
        assert [f.error["name"] for f in step.failures] == [name, name]  # both attempts, both the step's
        client.send(Event(name="crash/steady", data={"i": 0}))  # the same worker serves what comes next
        while [r.status for r in client.list_runs(function_id="steady")] != ["completed"]:
            assert worker.poll() is None, f"the worker died (exit code {worker.returncode})"
            assert time.monotonic() < deadline, statuses(client)
            time.sleep(0.1)
    finally:
        stop(worker)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_worker_killed_mid_run_leaves_the_same_typed_step_values_to_the_next(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.apps.typed_crash import app

    if backend == "postgres" and not PG_URL:
        pytest.skip("OUTLAST_TEST_POSTGRES_URL is not set")
    from tests.conftest import pg_database

    url = pg_database() if backend == "postgres" else f"sqlite:///{tmp_path}/typed.db"
    effects = tmp_path / "effects"
    monkeypatch.setenv("OUTLAST_TEST_EFFECTS", str(effects))
    sender = outlast.Outlast(app.id, database_url=url)
    sender.functions = app.functions
    first = start_worker(url, "tests.apps.typed_crash:app")
    try:
        handle = sender.invoke("typed", {"id": "u1"})
        assert first.wait(60) == 3  # it died in `die-once`, after `make` committed
        second = start_worker(url, "tests.apps.typed_crash:app")
        try:
            assert handle.result(timeout=60) == {"type": "User", "id": "u1", "joined": "datetime"}
        finally:
            stop(second)
    finally:
        stop(first)
        sender.close()
    assert effects.read_text() == "make\n"  # replayed from the memo, not run again
