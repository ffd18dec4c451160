"""Real worker processes sharing one database: no step runs twice at once, and a worker killed
with SIGKILL leaves runs that another worker finishes without re-running committed steps."""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import outlast
from outlast.events import Event

ROOT = Path(__file__).resolve().parents[2]


def start_worker(db_url: str, effects: Path, lease_ms: int = 1000) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OUTLAST_DATABASE_URL": db_url, "OUTLAST_TEST_EFFECTS": str(effects),
           "OUTLAST_LEASE_MS": str(lease_ms), "OUTLAST_POLL_INTERVAL_MS": "20",
           "OUTLAST_WORKER_CONCURRENCY": "4", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "outlast.cli", "worker", "tests.apps.effects:app"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for(predicate: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def effects_rows(path: Path) -> list[tuple[str, str, int, float, float]]:
    if not path.exists():
        return []
    with sqlite3.connect(path, timeout=30) as conn:
        try:
            return conn.execute("SELECT run_id, step, pid, started, ended FROM effects").fetchall()
        except sqlite3.OperationalError:
            return []


def committed_steps(db_path: Path) -> set[tuple[str, str]]:
    with sqlite3.connect(db_path, timeout=30) as conn:
        return set(conn.execute("SELECT run_id, step_id FROM steps WHERE status = 'completed'").fetchall())


@pytest.fixture
def sender(tmp_path: Path) -> outlast.Outlast:
    from tests.apps.effects import app

    client = outlast.Outlast(app.id, database_url=f"sqlite:///{tmp_path}/shared.db")
    client.functions = app.functions
    yield client
    client.close()


def test_two_workers_never_run_the_same_step_at_the_same_time(tmp_path: Path, sender: outlast.Outlast) -> None:
    effects = tmp_path / "effects.db"
    workers = [start_worker(sender.settings.database_url, effects) for _ in range(2)]
    try:
        sender.send([Event(name="effects/go", data={"i": i}) for i in range(30)])
        wait_for(lambda: len(sender.list_runs(status="completed")) == 30)
    finally:
        for w in workers:
            w.terminate()
            w.wait(10)
    rows = effects_rows(effects)
    by_step: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for run_id, step, _pid, started, ended in rows:
        by_step.setdefault((run_id, step), []).append((started, ended))
    assert len(by_step) == 30 * 5
    for spans in by_step.values():
        spans.sort()
        for (_s1, e1), (s2, _e2) in itertools.pairwise(spans):
            assert e1 <= s2, "two executions of one step overlapped"
    assert len({r[2] for r in rows}) == 2  # both workers took part
    assert all(r.output == 5 for r in sender.list_runs())


def test_a_killed_worker_leaves_runs_another_worker_finishes(tmp_path: Path, sender: outlast.Outlast) -> None:
    effects = tmp_path / "effects.db"
    db_path = tmp_path / "shared.db"
    os.environ["OUTLAST_TEST_STEP_SECONDS"] = "0.05"
    first = start_worker(sender.settings.database_url, effects)
    try:
        sender.send([Event(name="effects/go", data={"i": i}) for i in range(20)])
        wait_for(lambda: len(effects_rows(effects)) >= 25)  # mid-load: some runs part-way through
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        before = committed_steps(db_path)
        assert 0 < len(before) < 100
        second = start_worker(sender.settings.database_url, effects)
        try:
            wait_for(lambda: len(sender.list_runs(status="completed")) == 20, timeout=120)
        finally:
            second.terminate()
            second.wait(10)
    finally:
        os.environ.pop("OUTLAST_TEST_STEP_SECONDS", None)
        if first.poll() is None:
            first.kill()
    executions = Counter((r[0], r[1]) for r in effects_rows(effects))
    assert all(executions[key] == 1 for key in before), "a committed step ran again"
    assert len(executions) == 100 and max(executions.values()) <= 2  # only the step in flight may repeat
    for run in sender.list_runs():
        full = sender.get_run(run.id)
        assert full is not None and [s.status for s in full.steps] == ["completed"] * 5
