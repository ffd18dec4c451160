"""Scale-out for served apps: a bare `outlast worker` (no APP) runs the functions of apps on the
official SDKs that are synced to the database, with no server in its process."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.interop.harness import ROOT, Outlast, Proc, SdkApp


async def test_a_worker_without_an_app_runs_a_served_apps_functions(
    outlast: Outlast, py_app: SdkApp, tmp_path: Path
) -> None:
    await py_app.sync()
    outlast.proc.stop()  # the server (and its workers) are gone: only the bare worker can run anything
    [event_id] = await _send_without_server(outlast, {"name": "py/steps", "data": {"n": 5}})
    worker = Proc(
        "outlast worker",
        [sys.executable, "-m", "outlast.cli", "worker"],
        cwd=ROOT,
        env=outlast.env,
        log=tmp_path / "worker.log",
    )
    try:
        run = await outlast.finished_run(event_id)
    finally:
        worker.stop()
    assert (run.status, run.output) == ("completed", {"a": 1, "b": 2, "n": 5}), worker.output()


async def _send_without_server(outlast: Outlast, event: dict[str, object]) -> list[str]:
    """Send through the store itself (as `app.send` or `outlast send` would)."""
    from outlast.core.clock import SystemClock
    from outlast.runtime.engine import Engine
    from outlast.settings import Settings

    engine = Engine((await outlast.store()), SystemClock(), Settings(database_url=f"sqlite:///{outlast.db}"))
    await engine.refresh_registry(force=True)
    return await engine.send(event)
