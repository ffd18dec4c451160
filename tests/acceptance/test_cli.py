"""The `outlast` command line against a real SQLite file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def outlast(db: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OUTLAST_DATABASE_URL": f"sqlite:///{db}", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "outlast.cli", *args], env=env, cwd=ROOT, text=True,
                          capture_output=True, check=check, timeout=60)


def test_send_run_inspect_and_cancel(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    env = {**os.environ, "OUTLAST_DATABASE_URL": f"sqlite:///{db}", "PYTHONPATH": str(ROOT),
           "OUTLAST_TEST_EFFECTS": str(tmp_path / "effects.db"), "OUTLAST_POLL_INTERVAL_MS": "20"}
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen([sys.executable, "-m", "outlast.cli", "worker", "tests.apps.effects:app"], env=env,
                              cwd=ROOT, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30  # runs start for functions a worker has synced
        while "effects" not in outlast(db, "workers").stdout and time.monotonic() < deadline:
            time.sleep(0.1)
        event_id = outlast(db, "send", "effects/go", "--data", '{"n": 1}').stdout.strip()
        assert len(event_id) == 26
        deadline = time.monotonic() + 30
        while "completed" not in outlast(db, "runs").stdout and time.monotonic() < deadline:
            time.sleep(0.1)
        listing = outlast(db, "runs").stdout.splitlines()
        assert len(listing) == 2, f"no completed run; worker log:\n{(tmp_path / 'worker.log').read_text()}"
        assert listing[0].split()[:3] == ["RUN", "FUNCTION", "STATUS"]
        run_id, function_id, status = listing[1].split()[:3]
        assert (function_id, status) == ("five-steps", "completed")
        trace = outlast(db, "run", run_id).stdout
        assert "status completed" in trace and trace.count("completed") >= 6 and "step-4" in trace
        refused = outlast(db, "cancel", run_id, check=False)
        assert refused.returncode == 1 and "not active" in refused.stderr
    finally:
        worker.terminate()
        worker.wait(10)


def test_bad_input_gets_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    bad_json = outlast(db, "send", "x/y", "--data", "{oops", check=False)
    assert bad_json.returncode == 2 and "--data: not valid JSON" in bad_json.stderr
    bad_event = outlast(db, "send", "x" * 600, check=False)
    assert bad_event.returncode == 2 and "600 characters" in bad_event.stderr
    missing = outlast(db, "dev", "no/such/file.py", check=False)
    assert missing.returncode == 2 and "no such file" in missing.stderr
