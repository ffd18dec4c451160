"""The dashboard's pages as a user loads them: a long run's trace in pages, repeated step ids with
their call number, a failed run's links to its failure handler and its reruns, Send event and the
security headers (Content-Security-Policy, no framing) on every page, times in UTC for the
viewer's browser to convert (tests/browser checks it does)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

import outlast
from outlast import Context, NonRetriableError
from outlast.core.keys import step_key
from outlast.core.models import Finish, StepRecord
from outlast.core.planner import Planner
from outlast.runtime.rerun import UNSET
from outlast.server import actions
from outlast.server.dashboard.timeline import occurrences
from outlast.server.reads import RunQuery
from outlast.storage import open_store
from tests.server.serving import serve, wait_for
from tests.server.test_one_ingest_path import csrf
from tests.storage.contract import FN, claim_one, commit, define, event, step

LONG = 10_000
STEP_NAMES = re.compile(r'<span class="step-name">([^<]*)</span>')


async def build_long_run(db: Path, steps: int) -> tuple[str, str]:
    """A finished run of `steps` calls of step "s" (the last one failed), written straight through
    the store (one commit) into the SQLite file the server will open: (run id, event id)."""
    t0 = int(time.time() * 1000) - 60_000
    store = open_store(f"sqlite:///{db}")
    store.bind(Planner())
    await store.open()
    try:
        await define(store, FN, now=t0)
        [event_id] = await store.ingest([event(order=1, at=t0)], t0)
        claimed = await claim_one(store, "builder", t0)
        writes = [
            step(step_key("s", i), {"i": i}, step_id="s", started_at=t0 + i, ended_at=t0 + i) for i in range(steps)
        ]
        writes[-1] = step(
            step_key("s", steps - 1), None, step_id="s", status="failed", error={"name": "Error", "message": "last"}
        )
        failed = Finish(status="failed", error={"name": "Error", "message": "last"})
        assert (await store.commit(commit(claimed, t0 + steps, steps=writes, outcome=failed))).ok
        return claimed.run.run_id, event_id
    finally:
        await store.close()


async def test_a_run_of_10000_steps_is_paged_with_every_step_reachable(tmp_path: Path) -> None:
    run_id, _ = await build_long_run(tmp_path / "server.db", LONG)
    async with serve(tmp_path) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as http:
        first = await http.get(f"/runs/{run_id}")
        assert first.status_code == 200, first.text
        assert len(first.content) < 500_000  # all 10,000 steps were 13.7 MB
        assert "10,000 steps: 9,999 completed, 1 failed." in first.text
        assert STEP_NAMES.findall(first.text) == ["s"] + [f"s #{n}" for n in range(2, 201)]
        assert 'href="?steps_page=2#trace-h"' in first.text
        assert 'href="?steps_page=50#trace-h">First failed step (page 50)' in first.text
        middle = await http.get(f"/runs/{run_id}", params={"steps_page": "26"})
        assert STEP_NAMES.findall(middle.text) == [f"s #{n}" for n in range(5001, 5201)]
        last = await http.get(f"/runs/{run_id}", params={"steps_page": "50"})
        assert STEP_NAMES.findall(last.text) == [f"s #{n}" for n in range(9801, 10001)]
        assert "Steps 9,801\N{EN DASH}10,000 of 10,000 · page 50 of 50" in last.text
        assert 'rel="next"' not in last.text


async def test_a_trace_page_that_does_not_exist_is_a_400_naming_the_parameter(tmp_path: Path) -> None:
    run_id, _ = await build_long_run(tmp_path / "server.db", 450)
    async with serve(tmp_path) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as http:
        for bad, why in [("x", "expected a page number from 1 to 3, got 'x'"), ("0", "has 3 page(s), got 0")]:
            reply = await http.get(f"/runs/{run_id}", params={"steps_page": bad})
            assert reply.status_code == 400
            assert "steps_page: " in reply.text and why.replace("'", "&#39;") in reply.text


def test_a_repeated_step_is_numbered_by_its_key_not_by_where_it_was_written() -> None:
    def rec(step_id: str, key: str) -> StepRecord:
        return StepRecord(id=step_id, key=key, kind="run", status="completed", attempts=1)

    parallel = [rec("s", step_key("s", n)) for n in (2, 0)] + [rec("t", step_key("t", 0)), rec("s", step_key("s", 1))]
    assert occurrences(parallel) == [3, 1, 1, 2]
    # a key hashed some other way (an SDK's own scheme): numbered in the order written
    assert occurrences([rec("u", "k1"), rec("u", "k2")]) == [1, 2]


def _handled_app() -> outlast.Outlast:
    app = outlast.Outlast("handled")

    async def cleanup(ctx: Context) -> str:
        return f"cleaned up {ctx.event.data['run_id']}"

    @app.function(id="charge", trigger="handled/charge", retries=0, on_failure=cleanup)
    async def charge(ctx: Context) -> None:
        await ctx.step.run("decline", _decline)

    return app


def _decline() -> None:
    raise NonRetriableError("card declined")


async def test_a_failed_run_links_to_its_failure_handler_and_its_reruns(tmp_path: Path) -> None:
    async with serve(tmp_path, source=_handled_app()) as (url, engine), httpx.AsyncClient(base_url=url) as http:
        [event_id] = await actions.send_event(engine, {"name": "handled/charge", "data": {}}, trace={})
        handled: dict[str, Any] = {}

        async def both_ended() -> bool:
            for effect in await engine.store.event_effects(event_id):
                handled["failed"] = effect.run_id
            runs = await engine.store.list_runs(_filter("charge-failure"))
            handled["handler"] = runs[0].id if runs and runs[0].ended_at else None
            return handled.get("failed") is not None and handled["handler"] is not None

        await wait_for(both_ended)
        failed, handler = handled["failed"], handled["handler"]
        rerun = await actions.rerun_run(engine, failed, from_step=None, output=UNSET)
        page = (await http.get(f"/runs/{failed}")).text
        assert f'Failure handled by <a href="/runs/{handler}">charge-failure</a>' in page
        assert f'Rerun as <a class="mono" href="/runs/{rerun}">{rerun}</a>' in page
        back = (await http.get(f"/runs/{handler}")).text
        assert f'Handles the failure of run <a class="mono" href="/runs/{failed}">{failed}</a>' in back


def _filter(function_id: str) -> Any:
    return RunQuery(function_id=function_id).filter(limit=5)


PAGES = [
    "/",
    "/events",
    "/events/{event_id}",
    "/functions",
    "/functions/shop/process-order",
    "/apps",
    "/workers",
    "/bulk",
    "/runs/{run_id}",
    "/runs/{run_id}/rerun?step={key}",
    "/runs/no-such-run",
    "/login",
]


async def test_every_page_has_a_content_security_policy_and_no_inline_script_or_style(tmp_path: Path) -> None:
    run_id, event_id = await build_long_run(tmp_path / "server.db", 3)
    async with serve(tmp_path) as (url, _), httpx.AsyncClient(base_url=url) as http:
        for path in PAGES:
            reply = await http.get(path.format(run_id=run_id, event_id=event_id, key=step_key("s", 0)))
            assert reply.headers["content-type"].startswith("text/html"), path
            policy = reply.headers["content-security-policy"]
            for rule in ("default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"):
                assert rule in policy, (path, rule)
            assert reply.headers["x-frame-options"] == "DENY", path
            assert reply.headers["x-content-type-options"] == "nosniff", path
            html = reply.text
            assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == [], path
            assert " style=" not in html and "javascript:" not in html, path
            assert re.findall(r"\son[a-z]+=", html) == [], path


async def test_every_page_offers_send_event_and_writes_times_in_utc(tmp_path: Path) -> None:
    run_id, event_id = await build_long_run(tmp_path / "server.db", 3)
    async with serve(tmp_path) as (url, engine), httpx.AsyncClient(base_url=url) as http:
        for path in PAGES:
            if path == "/login":
                continue
            html = (await http.get(path.format(run_id=run_id, event_id=event_id, key=step_key("s", 0)))).text
            form = re.search(r'<details class="global-send".*?</details>', html, re.S)
            assert form is not None, path
            assert '<form method="post" action="/events"' in form[0] and 'name="csrf_token"' in form[0], path
        run = await engine.store.get_run(run_id)
        assert run is not None
        page = (await http.get(f"/runs/{run_id}")).text
        created = datetime.fromtimestamp(run.created_at / 1000, UTC)
        iso = created.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        assert f'<time datetime="{iso}"' in page
        assert f">{created:%Y-%m-%d %H:%M:%S} UTC</time>" in page


async def test_invoke_from_the_dashboard_lands_on_the_run_it_started(tmp_path: Path) -> None:
    async with serve(tmp_path) as (url, engine), httpx.AsyncClient(base_url=url) as http:
        token = csrf((await http.get("/functions/shop/ship")).text)
        reply = await http.post("/functions/shop/ship/invoke", data={"data": '{"order_id": "x"}', "csrf_token": token})
        assert reply.status_code == 303 and reply.headers["location"].startswith("/runs/"), reply.headers
        run = await engine.store.get_run(reply.headers["location"].removeprefix("/runs/"))
        assert run is not None and run.function_id == "ship"


def _repeating_app() -> outlast.Outlast:
    app = outlast.Outlast("repeating")

    @app.function(id="thrice", trigger="repeating/go")
    async def thrice(ctx: Context) -> list[int]:
        return [await ctx.step.run("s", lambda n=n: n) for n in range(3)]

    return app


async def test_a_rerun_from_a_repeated_step_names_which_call_of_it(tmp_path: Path) -> None:
    async with serve(tmp_path, source=_repeating_app()) as (url, engine), httpx.AsyncClient(base_url=url) as http:
        [event_id] = await actions.send_event(engine, {"name": "repeating/go", "data": {}}, trace={})
        ended: list[str] = []

        async def done() -> bool:
            runs = [await engine.store.get_run(e.run_id) for e in await engine.store.event_effects(event_id)]
            ended[:] = [r.id for r in runs if r is not None and r.status == "completed"]
            return bool(ended)

        await wait_for(done)
        page = (await http.get(f"/runs/{ended[0]}")).text
        assert STEP_NAMES.findall(page) == ["s", "s #2", "s #3"]
        form = (await http.get(f"/runs/{ended[0]}/rerun", params={"step": step_key("s", 1)})).text
        assert "<h1>Rerun from step <code>s #2</code></h1>" in form
        rerun = await actions.rerun_run(engine, ended[0], from_step=step_key("s", 1), output=UNSET)
        assert "from step <code>s #2</code>" in (await http.get(f"/runs/{rerun}")).text
