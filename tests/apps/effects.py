"""An app whose steps record every execution in a side-effect table, for crash tests.

The table lives in its own SQLite file (OUTLAST_TEST_EFFECTS) so that what a step *did* is
counted independently of what the engine *committed*.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time

import outlast
from outlast import Context

STEPS = 5
app = outlast.Outlast("effects")


_local = threading.local()


def _db() -> sqlite3.Connection:
    """This thread's connection. WAL without fsync per commit: a killed process (what the crash
    tests do) loses nothing it committed, and thousands of effects cost no thousands of fsyncs."""
    conn: sqlite3.Connection | None = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(os.environ["OUTLAST_TEST_EFFECTS"], timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS effects (run_id TEXT, step TEXT, pid INTEGER, started REAL, ended REAL)"
        )
        _local.conn = conn
    return conn


def record(run_id: str, step: str) -> str:
    started = time.time()
    time.sleep(float(os.environ.get("OUTLAST_TEST_STEP_SECONDS", "0.02")))
    _db().execute("INSERT INTO effects VALUES (?, ?, ?, ?, ?)", (run_id, step, os.getpid(), started, time.time()))
    return step


@app.function(id="five-steps", trigger="effects/go")
async def five_steps(ctx: Context) -> int:
    for i in range(STEPS):
        await ctx.step.run(f"step-{i}", record, ctx.run_id, f"step-{i}")
    return STEPS
