"""Several processes starting at once on a new database all open it (issue 12: two workers
started together on a new SQLite file, one exited with "database is locked")."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import PG_URL

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 6
PROCESS_START_S = 3.0  # time for every process to import Outlast before the first trial


def open_together(urls: list[str], processes: int, interval: float) -> list[list[str]]:
    """Each process opens every URL; all open URL i at the same moment. Returns each process's lines."""
    start = time.time() + PROCESS_START_S
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.storage.opener", str(start), str(interval), *urls],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(processes)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    return [out.strip().splitlines() for out in outputs]


def assert_all_opened(results: list[list[str]], trials: int) -> None:
    failures = [line for lines in results for line in lines if line != "ok"]
    assert not failures, f"{len(failures)} of {len(results) * trials} opens failed, e.g. {failures[0]}"
    assert all(len(lines) == trials for lines in results)


def test_processes_starting_at_once_on_a_new_sqlite_file_all_open_it(tmp_path: Path) -> None:
    trials = 20
    urls = [f"sqlite:///{tmp_path}/new-{i}.db" for i in range(trials)]
    assert_all_opened(open_together(urls, PROCESSES, interval=0.25), trials)


@pytest.mark.skipif(not PG_URL, reason="OUTLAST_TEST_POSTGRES_URL is not set")
def test_processes_starting_at_once_on_a_new_postgres_database_all_open_it() -> None:
    from tests.conftest import pg_database

    trials = 8
    urls = [pg_database(migrated=False) for _ in range(trials)]
    assert_all_opened(open_together(urls, 4, interval=0.6), trials)
