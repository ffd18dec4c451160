"""A crashed attempt is shown where a user looks for it: on the run's page and in the read API,
as a `WorkerCrashedError` with the time its run is taken up again."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx

import outlast
from outlast import Context, Event
from outlast.core.models import AppScope
from outlast.testing import TestEngine
from tests.http import serving

T0 = 1_800_000_000_000


async def test_a_crashed_attempt_shows_on_the_run_page_with_the_time_its_run_goes_on(tmp_path: Path) -> None:
    app = outlast.Outlast("crashy")

    @app.function(id="long", trigger="c/long")
    async def long(ctx: Context) -> str:
        return "done"

    async with (
        TestEngine(app, database_url=f"sqlite:///{tmp_path}/c.db", start_ms=T0, backoff_scale=1.0) as t,
        serving(t.engine) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        await t.send(Event(name="c/long"))
        [claimed] = await t.store.claim(AppScope(app_id="crashy"), "killed-worker", 1, T0, 1_000)  # then SIGKILL
        t.advance("1s")
        await t.run_until_idle()  # the lease expired: the crash is seen, and the run waits 15 s
        run_id = claimed.run.run_id
        page = (await client.get(f"/runs/{run_id}")).text
        [failure] = (await client.get(f"/api/runs/{run_id}")).json()["run"]["failures"]
        t.advance("15s")
        await t.run_until_idle()
        done = t.get_run(run_id)
    again = datetime.fromtimestamp((T0 + 16_000) / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert "WorkerCrashedError" in page and f"it runs again at {again}" in page
    assert failure["error"]["name"] == "WorkerCrashedError" and failure["error"]["retry_at"] == T0 + 16_000
    assert done is not None and (done.status, done.output) == ("completed", "done")
