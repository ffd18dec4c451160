"""`outlast prune` and `outlast backup` against real SQLite files, as an operator runs them."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import outlast
from outlast import Context, Event
from outlast.testing import TestEngine

ROOT = Path(__file__).resolve().parents[2]
DAY_MS = 86_400_000


def outlast_cli(db: Path | str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    url = db if isinstance(db, str) else f"sqlite:///{db}"
    env = {**os.environ, "OUTLAST_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "outlast.cli", *args],
        env=env,
        cwd=ROOT,
        text=True,
        capture_output=True,
        check=check,
        timeout=60,
    )


def three_steps() -> outlast.Outlast:
    app = outlast.Outlast("ops")

    @app.function(id="three", trigger="ops/go")
    async def three(ctx: Context) -> int:
        for name in ("a", "b", "c"):
            await ctx.step.run(name, lambda: 1)
        return 3

    return app


async def test_prune_removes_what_finished_before_the_cutoff_and_says_so(tmp_path: Path) -> None:
    db = tmp_path / "prune.db"
    app = three_steps()
    now = int(time.time() * 1000)
    async with TestEngine(app, database_url=f"sqlite:///{db}", start_ms=now - 3 * DAY_MS) as t:
        await t.send([Event(name="ops/go") for _ in range(5)])
        await t.run_until_idle()
        t.advance("2d")  # a day before the cutoff of 2 days ago ...
        await t.send(Event(name="ops/go"))
        await t.run_until_idle()
        t.advance("12h")  # ... and one finished a day and a half ago
        await t.send(Event(name="ops/go"))
        await t.run_until_idle()
    first = outlast_cli(db, "prune", "--older-than", "2d")
    assert first.stdout.startswith("removed 5 runs (15 steps), 10 events")
    assert "(finished or received more than 2d ago)" in first.stdout
    assert len(outlast_cli(db, "runs").stdout.splitlines()) == 3  # header and the two younger runs
    assert outlast_cli(db, "prune", "--older-than", "2d").stdout.startswith("removed 0 runs (0 steps), 0 events")
    assert outlast_cli(db, "prune", "--older-than", "1d").stdout.startswith("removed 1 runs (3 steps), 2 events")


def test_prune_refuses_bad_durations_and_a_zero_retention(tmp_path: Path) -> None:
    bad = outlast_cli(tmp_path / "x.db", "prune", "--older-than", "two days", check=False)
    assert bad.returncode == 2 and "--older-than: invalid duration 'two days'" in bad.stderr
    env_zero = subprocess.run(
        [sys.executable, "-m", "outlast.cli", "prune"],
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=60,
        env={
            **os.environ,
            "OUTLAST_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
            "OUTLAST_RETENTION": "0",
            "PYTHONPATH": str(ROOT),
        },
    )
    assert env_zero.returncode == 2 and "OUTLAST_RETENTION is 0" in env_zero.stderr
    no_unit = subprocess.run(
        [sys.executable, "-m", "outlast.cli", "prune"],
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=60,
        env={
            **os.environ,
            "OUTLAST_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
            "OUTLAST_RETENTION": "7",
            "PYTHONPATH": str(ROOT),
        },
    )
    assert no_unit.returncode == 2 and "OUTLAST_RETENTION: give a unit" in no_unit.stderr
    assert "Traceback" not in bad.stderr + env_zero.stderr + no_unit.stderr


async def test_a_backup_taken_while_the_database_is_in_use_restores_and_reads_back(tmp_path: Path) -> None:
    db, backup, restored = tmp_path / "live.db", tmp_path / "backup.db", tmp_path / "restored.db"
    app = three_steps()
    async with TestEngine(app, database_url=f"sqlite:///{db}") as t:
        await t.send([Event(name="ops/go", data={"i": i}) for i in range(20)])
        await t.run_until_idle()
        # the store is open (WAL, unflushed frames and all) while the backup runs
        done = outlast_cli(db, "backup", str(backup))
        await t.send(Event(name="ops/go", data={"i": "after"}))  # not in the backup
        await t.run_until_idle()
        runs = {r.id: r for r in t.runs()}
    assert done.stdout.startswith(f"backed up {db} to {backup} (")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("backup")) == ["backup.db"]
    shutil.copy(backup, restored)  # restoring is copying the file back (with no workers running)
    async with TestEngine(app, database_url=f"sqlite:///{restored}") as r:
        back = r.runs()
    assert len(back) == 20 and all(b.status == "completed" for b in back)
    assert [(s.id, s.output) for s in back[0].steps] == [(s.id, s.output) for s in runs[back[0].id].steps]
    assert "completed" in outlast_cli(restored, "runs").stdout


def test_backup_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    (tmp_path / "taken.db").write_text("")
    with sqlite3.connect(tmp_path / "src.db") as conn:
        conn.execute("CREATE TABLE t (x)")
    cases = [
        (outlast_cli(tmp_path / "none.db", "backup", str(tmp_path / "b.db"), check=False), "no SQLite database at"),
        (outlast_cli(tmp_path / "src.db", "backup", str(tmp_path / "taken.db"), check=False), "already exists"),
        (outlast_cli("postgresql://u@127.0.0.1:1/x", "backup", str(tmp_path / "p.db"), check=False), "pg_dump"),
    ]
    for result, fragment in cases:
        assert result.returncode == 2 and fragment in result.stderr and "Traceback" not in result.stderr
