"""Signals across processes on PostgreSQL: two sender processes racing resume each waiting run
exactly once, with the winner's data; a signal racing its wait's timeout is either delivered (the
run gets its data) or not (the sender is told no run waits), never both; a worker killed after
signals arrived leaves nothing lost: another worker resumes every run; and a pause from another
process stops every worker's new step bodies within a second."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import outlast
from outlast.events import Event
from tests.acceptance.test_crash_recovery import ROOT, effects_rows, wait_for
from tests.conftest import PG_URL, pg_database

pytestmark = pytest.mark.skipif(not PG_URL, reason="needs OUTLAST_TEST_POSTGRES_URL")
RUNS = 40

SENDER = """
import json, sys
import outlast
app = outlast.Outlast("signal-sender", database_url=sys.argv[1])
sent = {n: app.send_signal(f"s-{n}", {"by": sys.argv[2]}) for n in range(int(sys.argv[3]))}
print(json.dumps(sent))
app.close()
"""


def start_worker(
    db_url: str, effects: Path, app: str = "tests.apps.signals:app", **env: str
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "outlast.cli", "worker", app],
        cwd=ROOT,
        env={
            **os.environ,
            "OUTLAST_DATABASE_URL": db_url,
            "OUTLAST_TEST_EFFECTS": str(effects),
            "OUTLAST_LEASE_MS": "1000",
            "OUTLAST_POLL_INTERVAL_MS": "20",
            "OUTLAST_TEST_STEP_SECONDS": "0",
            "PYTHONPATH": str(ROOT),
            **env,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def start_sender(db_url: str, name: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SENDER, db_url, name, str(RUNS)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def db_url() -> str:
    return pg_database()


@pytest.fixture
def client(db_url: str) -> Iterator[outlast.Outlast]:
    from tests.apps.signals import app as served

    app = outlast.Outlast(served.id, database_url=db_url)
    app.functions = served.functions  # its functions are stored when it opens, before any event is sent
    yield app
    app.close()


def stop(*procs: subprocess.Popen[Any]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


def waiting_steps(client: outlast.Outlast) -> int:
    runs = client.list_runs(status="running", limit=10_000)
    return sum(1 for r in runs for s in (client.get_run(r.id) or r).steps if s.status == "waiting")


def send_all(client: outlast.Outlast) -> None:
    client.send([Event(name="sig/wait", data={"n": n}) for n in range(RUNS)])


def race_senders(db_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    a, b = start_sender(db_url, "a"), start_sender(db_url, "b")
    out_a, _ = a.communicate(timeout=120)
    out_b, _ = b.communicate(timeout=120)
    assert a.returncode == 0 and b.returncode == 0
    return json.loads(out_a), json.loads(out_b)


def finished(client: outlast.Outlast) -> list[outlast.Run]:
    runs = [client.get_run(r.id) for r in client.list_runs(limit=10_000)]
    return [r for r in runs if r is not None and r.status == "completed"]


def test_two_senders_racing_resume_each_run_once(db_url: str, client: outlast.Outlast, tmp_path: Path) -> None:
    effects = tmp_path / "effects.db"
    workers = [start_worker(db_url, effects), start_worker(db_url, effects)]
    try:
        send_all(client)
        wait_for(lambda: waiting_steps(client) == RUNS)
        sent_a, sent_b = race_senders(db_url)
        wait_for(lambda: len(finished(client)) == RUNS)
    finally:
        stop(*workers)
    runs = {r.id: r for r in finished(client)}
    for n in range(RUNS):
        winners = [(by, sent[str(n)]) for by, sent in (("a", sent_a), ("b", sent_b)) if sent[str(n)] is not None]
        assert len(winners) == 1, (n, winners)  # exactly one sender resumed the run
        by, run_id = winners[0]
        assert runs[run_id].output == {"by": by}
    after = Counter(run for run, step, *_ in effects_rows(effects) if step == "after")
    assert sorted(after) == sorted(runs) and set(after.values()) == {1}  # each run resumed once


def test_a_signal_racing_the_timeout_is_delivered_or_refused_never_both(
    db_url: str, client: outlast.Outlast, tmp_path: Path
) -> None:
    effects = tmp_path / "effects.db"
    workers = [start_worker(db_url, effects, OUTLAST_TEST_SIGNAL_TIMEOUT="2s") for _ in range(2)]
    try:
        send_all(client)
        wait_for(lambda: waiting_steps(client) >= RUNS // 2)  # the senders overlap the first waits' timeouts
        sent_a, sent_b = race_senders(db_url)
        wait_for(lambda: len(finished(client)) == RUNS)
    finally:
        stop(*workers)
    by_run: dict[str, str] = {}
    for by, sent in (("a", sent_a), ("b", sent_b)):
        for run_id in sent.values():
            if run_id is not None:
                assert run_id not in by_run  # never delivered twice
                by_run[run_id] = by
    for run in finished(client):
        expected = None if run.id not in by_run else {"by": by_run[run.id]}
        assert run.output == expected, (run.id, run.output, expected)


def test_a_worker_killed_after_signals_arrived_loses_nothing(
    db_url: str, client: outlast.Outlast, tmp_path: Path
) -> None:
    effects = tmp_path / "effects.db"
    first = start_worker(db_url, effects)
    try:
        send_all(client)
        wait_for(lambda: waiting_steps(client) == RUNS)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    resumed = [client.send_signal(f"s-{n}", {"n": n}) for n in range(RUNS)]
    assert all(resumed)  # delivered to the store: the runs are due, no worker is alive
    second = start_worker(db_url, effects)
    try:
        wait_for(lambda: len(finished(client)) == RUNS)
    finally:
        stop(second)
    assert sorted(r.output["n"] for r in finished(client)) == list(range(RUNS))
    after = Counter(run for run, step, *_ in effects_rows(effects) if step == "after")
    assert set(after.values()) == {1} and len(after) == RUNS


def test_a_pause_reaches_every_worker_within_a_second(tmp_path: Path) -> None:
    """Two worker processes run five-step runs; a pause from a third process stops new step bodies
    on both within a second (plus the step that was running), and a resume lets every run finish
    with each step run once."""
    from tests.apps.effects import app as served
    from tests.apps.effects import five_steps

    db_url = pg_database()
    client = outlast.Outlast(served.id, database_url=db_url)
    client.functions = served.functions
    effects = tmp_path / "effects.db"
    workers = [start_effects_worker(db_url, effects) for _ in range(2)]
    try:
        client.send([Event(name="effects/go", data={"i": i}) for i in range(20)])
        wait_for(lambda: len(effects_rows(effects)) >= 10)  # mid-run
        client.pause_function(five_steps)
        paused_at = time.time()
        wait_for(lambda: quiet_since(effects, paused_at, 2.0))  # no step body started for two seconds
        resumed_at = time.time()
        client.resume_function(five_steps)
        wait_for(lambda: len(client.list_runs(status="completed", limit=100)) == 20)
    finally:
        stop(*workers)
        client.close()
    rows = effects_rows(effects)
    late = [r for r in rows if paused_at + 1.5 < r[3] < resumed_at]
    assert late == []  # nothing started once every worker saw the pause
    assert Counter(Counter((run, step) for run, step, *_ in rows).values()) == Counter({1: 100})


def start_effects_worker(db_url: str, effects: Path) -> subprocess.Popen[bytes]:
    return start_worker(db_url, effects, "tests.apps.effects:app", OUTLAST_TEST_STEP_SECONDS="0.1")


def quiet_since(effects: Path, since: float, seconds: float) -> bool:
    latest = max((r[3] for r in effects_rows(effects)), default=0.0)
    return time.time() - max(latest, since) >= seconds
