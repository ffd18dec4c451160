"""An app whose steps record every execution in a side-effect table, for crash tests.

The table lives in its own SQLite file (OUTLAST_TEST_EFFECTS) so that what a step *did* is
counted independently of what the engine *committed*.
"""

from __future__ import annotations

import os
import sqlite3
import time

import outlast
from outlast import Context

STEPS = 5
app = outlast.Outlast("effects")


def _db() -> sqlite3.Connection:
    conn = sqlite3.connect(os.environ["OUTLAST_TEST_EFFECTS"], timeout=30, isolation_level=None)
    conn.execute("CREATE TABLE IF NOT EXISTS effects (run_id TEXT, step TEXT, pid INTEGER, started REAL, ended REAL)")
    return conn


def record(run_id: str, step: str) -> str:
    started = time.time()
    time.sleep(float(os.environ.get("OUTLAST_TEST_STEP_SECONDS", "0.02")))
    with _db() as conn:
        conn.execute("INSERT INTO effects VALUES (?, ?, ?, ?, ?)", (run_id, step, os.getpid(), started, time.time()))
    return step


@app.function(id="five-steps", trigger="effects/go")
async def five_steps(ctx: Context) -> int:
    for i in range(STEPS):
        await ctx.step.run(f"step-{i}", record, ctx.run_id, f"step-{i}")
    return STEPS
