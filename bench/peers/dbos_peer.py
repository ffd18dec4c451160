"""Peer benchmark: DBOS Transact (Python) on the 3-no-op-step workflow.

Methodology
-----------
* Workload: one workflow of three ``@DBOS.step`` calls that each return a small
  int; ``n_runs`` workflow runs, timed end to end "from send to all completed".
* Start path: ``DBOS.start_workflow``. It writes the durable PENDING status row in
  the caller's thread and hands the body to DBOS's executor pool. Enqueueing on a
  ``DBOS.register_queue`` queue was also measured; it was slower on this host
  (the queue costs an extra dequeue transaction and polling), so the faster
  path is used to give DBOS its best honest number.
* Measured: from the first start to the last ``get_result()`` (the handles are
  futures, so there is no polling delay). DBOS construction, ``DBOS.launch()``,
  schema migration and database reset are not measured.
* Tuning: ``max_executor_threads=8`` (the config default is unbounded: one
  thread per pending workflow). The work is CPU-bound under the GIL; of 1, 2, 4,
  8, 32, 64 and unbounded, 8 was at or near the best on both backends (more
  threads mostly add SQLite lock waits). Everything else uses DBOS defaults (pool size
  20, pre-ping, and for SQLite its IMMEDIATE transactions and busy timeout). Logging is
  WARNING so per-run INFO lines do not cost anything.
* Isolation: DBOS is a process-wide singleton with background threads, so each
  measurement runs in a fresh ``python -m bench.peers.dbos_peer --child``
  process that prints one JSON line; the caller never imports ``dbos``.
* Clean state: SQLite (``database_url=None``) uses DBOS's default set-up, a
  ``<app>.sqlite`` file in the working directory (``workdir``), deleted first.
  PostgreSQL: the database named in the URL is dropped and re-created first.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.peers.peer_process import child_json

APP_NAME = "outlast-bench-dbos"
STEPS_PER_RUN = 3
EXECUTOR_THREADS = 8
_REPO_ROOT = Path(__file__).resolve().parents[2]


def run_dbos(n_runs: int, *, database_url: str | None = None, workdir: str) -> dict[str, Any]:
    """Benchmark ``n_runs`` DBOS workflow runs in a fresh child process.

    Returns {"system", "runs", "seconds", "runs_per_s", "steps_per_s"}.
    """
    Path(workdir).mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "bench.peers.dbos_peer", "--child", "--runs", str(n_runs)]
    if database_url:
        cmd += ["--database-url", database_url]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(_REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"DBOS child failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    seconds = float(json.loads(proc.stdout.strip().splitlines()[-1])["seconds"])
    return {
        "system": "dbos",
        "runs": n_runs,
        "seconds": seconds,
        "runs_per_s": n_runs / seconds,
        "steps_per_s": n_runs * STEPS_PER_RUN / seconds,
    }


def _reset_postgres(database_url: str) -> None:
    """Drop and re-create the database named in ``database_url``."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = str(conninfo_to_dict(database_url)["dbname"])
    admin = make_conninfo(database_url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        conn.execute("CHECKPOINT")  # as for Outlast: creating a database must not weigh on the timing


def _reset_sqlite() -> None:
    """Remove DBOS's default SQLite system database from the working directory."""
    stem = APP_NAME.replace("-", "_") + ".sqlite"
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(stem + suffix).unlink(missing_ok=True)


def dbos_latency(samples: int, *, database_url: str | None = None, workdir: str) -> list[float]:
    """Milliseconds of each of ``samples`` workflows run one at a time (start, then get_result)."""
    Path(workdir).mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "bench.peers.dbos_peer", "--child", "--runs", str(samples), "--one-at-a-time"]
    if database_url:
        cmd += ["--database-url", database_url]
    return list(child_json(cmd, system="dbos", cwd=workdir)["latencies_ms"])


def _child(n_runs: int, database_url: str | None, *, one_at_a_time: bool = False) -> dict[str, Any]:
    """Launch DBOS, time ``n_runs`` workflow runs (all at once, or one at a time), shut DBOS down."""
    from dbos import DBOS, DBOSConfig

    _reset_postgres(database_url) if database_url else _reset_sqlite()

    @DBOS.step(name="noop_step")
    def noop_step(i: int) -> int:
        return i

    @DBOS.workflow(name="three_steps")
    def three_steps(run: int) -> int:
        return noop_step(1) + noop_step(2) + noop_step(3)

    config: DBOSConfig = {"name": APP_NAME, "log_level": "WARNING", "max_executor_threads": EXECUTOR_THREADS}
    if database_url:
        config["system_database_url"] = database_url
    DBOS(config=config)
    DBOS.launch()
    try:
        if one_at_a_time:
            return {"latencies_ms": _one_at_a_time(n_runs, three_steps)}
        start = time.perf_counter()
        handles = [DBOS.start_workflow(three_steps, i) for i in range(n_runs)]
        results = [h.get_result() for h in handles]
        seconds = time.perf_counter() - start
    finally:
        DBOS.destroy()
    if results != [6] * n_runs:
        raise RuntimeError("unexpected DBOS workflow results")
    return {"seconds": seconds}


def _one_at_a_time(samples: int, workflow: Any) -> list[float]:
    from dbos import DBOS

    DBOS.start_workflow(workflow, -1).get_result()  # warm-up
    latencies = []
    for i in range(samples):
        time.sleep(0.02)
        start = time.perf_counter()
        if DBOS.start_workflow(workflow, i).get_result() != 6:
            raise RuntimeError("unexpected DBOS workflow result")
        latencies.append((time.perf_counter() - start) * 1000)
    return latencies


def main(argv: list[str] | None = None) -> None:
    """CLI: run the benchmark (or, with --child, the measured DBOS process)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--workdir", default=None, help="default: a fresh temp dir")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--one-at-a-time", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.runs, args.database_url, one_at_a_time=args.one_at_a_time)))
        return
    result: dict[str, Any]
    if args.workdir:
        result = run_dbos(args.runs, database_url=args.database_url, workdir=args.workdir)
    else:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="dbos_bench_") as tmp:
            result = run_dbos(args.runs, database_url=args.database_url, workdir=tmp)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
