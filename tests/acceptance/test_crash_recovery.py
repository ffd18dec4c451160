"""Real worker processes sharing one database (SQLite file or PostgreSQL): no step runs twice at
once, a worker killed with SIGKILL leaves runs that others finish without re-running committed
steps, and (PostgreSQL) a database restart mid-load loses nothing."""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import outlast
from outlast.errors import StoreError
from outlast.events import Event
from tests.conftest import PG_URL

ROOT = Path(__file__).resolve().parents[2]
Effects = list[tuple[str, str, int, float, float]]


def start_worker(
    db_url: str, effects: Path, *, concurrency: int = 4, step_seconds: float = 0.02, lease_ms: int = 1000
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "OUTLAST_DATABASE_URL": db_url,
        "OUTLAST_TEST_EFFECTS": str(effects),
        "OUTLAST_LEASE_MS": str(lease_ms),
        "OUTLAST_POLL_INTERVAL_MS": "20",
        "OUTLAST_WORKER_CONCURRENCY": str(concurrency),
        "OUTLAST_TEST_STEP_SECONDS": str(step_seconds),
        "OUTLAST_BACKOFF_SCALE": "0.01",  # a crashed attempt waits 150 ms, not 15 s, before it runs again
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "outlast.cli", "worker", "tests.apps.effects:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def effects_rows(path: Path) -> Effects:
    if not path.exists():
        return []
    with sqlite3.connect(path, timeout=30) as conn:
        try:
            return conn.execute("SELECT run_id, step, pid, started, ended FROM effects").fetchall()
        except sqlite3.OperationalError:
            return []


def completed(sender: outlast.Outlast) -> int:
    try:
        return len(sender.list_runs(status="completed", limit=100_000))
    except StoreError:
        return -1  # the database is restarting


def committed_steps(sender: outlast.Outlast) -> set[tuple[str, str]]:
    found = set()
    for run in sender.list_runs(limit=100_000):
        full = sender.get_run(run.id)
        assert full is not None
        found |= {(run.id, s.id) for s in full.steps if s.status == "completed"}
    return found


@pytest.fixture(params=["sqlite", "postgres"])
def sender(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[outlast.Outlast]:
    from tests.apps.effects import app

    if request.param == "postgres":
        if not PG_URL:
            pytest.skip("OUTLAST_TEST_POSTGRES_URL is not set")
        from tests.conftest import pg_database

        url = pg_database()
    else:
        url = f"sqlite:///{tmp_path}/shared.db"
    client = outlast.Outlast(app.id, database_url=url)
    client.functions = app.functions
    yield client
    client.close()


def test_two_workers_never_run_the_same_step_at_the_same_time(tmp_path: Path, sender: outlast.Outlast) -> None:
    effects = tmp_path / "effects.db"
    workers = [start_worker(sender.settings.database_url, effects) for _ in range(2)]
    try:
        sender.send([Event(name="effects/go", data={"i": i}) for i in range(30)])
        wait_for(lambda: completed(sender) == 30)
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
    first = start_worker(sender.settings.database_url, effects, step_seconds=0.05)
    try:
        sender.send([Event(name="effects/go", data={"i": i}) for i in range(20)])
        wait_for(lambda: len(effects_rows(effects)) >= 25)  # mid-load: some runs part-way through
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        before = committed_steps(sender)
        assert 0 < len(before) < 100
        second = start_worker(sender.settings.database_url, effects, step_seconds=0.05)
        try:
            wait_for(lambda: completed(sender) == 20)
        finally:
            second.terminate()
            second.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    executions = Counter((r[0], r[1]) for r in effects_rows(effects))
    assert all(executions[key] == 1 for key in before), "a committed step ran again"
    assert len(executions) == 100 and max(executions.values()) <= 2  # only a step in flight may repeat
    for run in sender.list_runs():
        full = sender.get_run(run.id)
        assert full is not None and [s.status for s in full.steps] == ["completed"] * 5


def test_three_workers_finish_a_load_while_one_is_killed_and_restarted(tmp_path: Path, sender: outlast.Outlast) -> None:
    if "postgresql" not in sender.settings.database_url:
        pytest.skip("the scale-out load runs on PostgreSQL")
    effects, n = tmp_path / "effects.db", 1000
    url = sender.settings.database_url
    # leases of 3 s: a live worker keeps its leases through a 2 s stall of a loaded machine
    workers = [start_worker(url, effects, concurrency=20, step_seconds=0.001, lease_ms=3000) for _ in range(3)]
    try:
        sender.send([Event(name="effects/go", data={"i": i}) for i in range(n)])
        wait_for(lambda: len(effects_rows(effects)) >= 1500)
        killed = workers[0].pid
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(10)
        workers[0] = start_worker(url, effects, concurrency=20, step_seconds=0.001, lease_ms=3000)
        wait_for(lambda: completed(sender) == n, timeout=240)
    finally:
        for w in workers:
            if w.poll() is None:
                w.terminate()
                w.wait(10)
    runners: dict[tuple[str, str], list[int]] = {}  # each step's executions, first first, by pid
    for run_id, step, pid, _, _ in effects_rows(effects):
        runners.setdefault((run_id, step), []).append(pid)
    assert len(runners) == n * 5
    repeated = [pids for pids in runners.values() if len(pids) > 1]
    # only the killed worker's steps in flight ran again, once each: no live worker lost a lease
    assert len(repeated) <= 20 and all(pids[0] == killed and len(pids) == 2 for pids in repeated)


def test_a_database_restart_mid_load_loses_no_event_and_no_run(tmp_path: Path, sender: outlast.Outlast) -> None:
    if "postgresql" not in sender.settings.database_url:
        pytest.skip("restarts the PostgreSQL server")
    cluster = _pg_cluster()
    effects, url = tmp_path / "effects.db", sender.settings.database_url
    workers = [start_worker(url, effects, concurrency=10, step_seconds=0.005) for _ in range(2)]
    sent: list[str] = []
    try:
        sent += sender.send([Event(name="effects/go", data={"i": i}) for i in range(100)])
        wait_for(lambda: len(effects_rows(effects)) >= 50)
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, "restart"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        for i in range(100, 150):  # a client retries what failed while the server was away
            sent += _send_with_retry(sender, Event(name="effects/go", data={"i": i}))
        wait_for(lambda: completed(sender) == 150, timeout=180)
    finally:
        for w in workers:
            w.terminate()
            w.wait(10)
    runs = sender.list_runs(limit=1000)
    assert sorted(r.event_ids[0] for r in runs) == sorted(sent)
    assert {r.status for r in runs} == {"completed"}


def _send_with_retry(sender: outlast.Outlast, event: Event) -> list[str]:
    for _ in range(100):
        try:
            return sender.send(event)
        except StoreError:
            time.sleep(0.2)
    raise AssertionError("the store never came back")


def _pg_cluster() -> list[str]:
    out = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=False).stdout.split()
    if len(out) < 2:
        pytest.skip("no local PostgreSQL cluster to restart")
    return out[:2]
