"""Prometheus metrics after a known workload, on every backend, and the two ways they are served."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

import outlast
from outlast import Context, Event, NonRetriableError
from outlast.observability.endpoint import serve_metrics
from outlast.observability.metrics import Metrics, install_metrics
from outlast.testing import TestEngine
from tests.http import free_port, serving

ROOT = Path(__file__).resolve().parents[2]
APP = "test-app"


def workload(app: outlast.Outlast) -> None:
    failed: set[str] = set()

    @app.function(id="ok", trigger="t/ok")
    async def ok(ctx: Context) -> int:
        for name in ("a", "b", "c"):
            await ctx.step.run(name, lambda: 1)
        return 3

    @app.function(id="flaky", trigger="t/flaky")
    async def flaky(ctx: Context) -> str:
        def once() -> str:
            if ctx.run_id not in failed:
                failed.add(ctx.run_id)
                raise RuntimeError("first attempt fails")
            return "ok"

        return str(await ctx.step.run("once", once))

    @app.function(id="bad", trigger="t/bad")
    async def bad(ctx: Context) -> None:
        def refuse() -> None:
            raise NonRetriableError("no")

        await ctx.step.run("refuse", refuse)

    @app.function(id="sleepy", trigger="t/sleepy")
    async def sleepy(ctx: Context) -> None:
        await ctx.step.sleep("nap", "1h")

    @app.function(id="waiting", trigger="t/waiting")
    async def waiting(ctx: Context) -> None:
        await ctx.step.wait_for_event("w", event="t/never", timeout="1d")


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


async def test_metrics_count_a_known_workload(app: outlast.Outlast, engine: TestEngine) -> None:
    workload(app)
    async with engine as t:
        metrics = install_metrics(t.engine)
        assert metrics is not None and install_metrics(t.engine) is metrics
        await t.send([Event(name=n) for n in ("t/ok", "t/ok", "t/flaky", "t/bad", "t/sleepy", "t/waiting")])
        await t.run_until_idle()
        t.advance("1m")  # the flaky step's retry
        await t.run_until_idle()
        await t.send(Event(name="t/ok"))  # left due: the backlog
        t.advance("5s")
        await metrics.sample()

    def fn(function: str, **more: str) -> dict[str, str]:
        return {"app": APP, "function": function, **more}

    started = {
        f: value(metrics, "outlast_runs_started_total", **fn(f)) for f in ("ok", "flaky", "bad", "sleepy", "waiting")
    }
    assert started == {"ok": 2, "flaky": 1, "bad": 1, "sleepy": 1, "waiting": 1}
    assert value(metrics, "outlast_runs_ended_total", **fn("ok", status="completed")) == 2
    assert value(metrics, "outlast_runs_ended_total", **fn("flaky", status="completed")) == 1
    assert value(metrics, "outlast_runs_ended_total", **fn("bad", status="failed")) == 1
    assert value(metrics, "outlast_run_duration_seconds_count", **fn("ok", status="completed")) == 2
    assert value(metrics, "outlast_attempts_total", **fn("sleepy", outcome="suspended")) == 1
    assert value(metrics, "outlast_step_attempts_total", **fn("ok", kind="run")) == 6
    assert value(metrics, "outlast_step_duration_seconds_count", **fn("ok")) == 6
    assert value(metrics, "outlast_step_failures_total", **fn("ok", kind="run")) is None
    assert value(metrics, "outlast_step_attempts_total", **fn("flaky", kind="run")) == 2
    assert value(metrics, "outlast_step_failures_total", **fn("flaky", kind="run")) == 1
    assert value(metrics, "outlast_step_failures_total", **fn("bad", kind="run")) == 1
    assert value(metrics, "outlast_events_received_total") == 7
    # the queue as sampled: one run due for 5 s, a sleep and a wait scheduled, one wait stored
    assert value(metrics, "outlast_queue_depth", **fn("ok", state="due")) == 1
    assert value(metrics, "outlast_queue_lag_seconds", **fn("ok")) == 5.0
    assert value(metrics, "outlast_queue_depth", **fn("sleepy", state="scheduled")) == 1
    assert value(metrics, "outlast_queue_depth", **fn("waiting", state="scheduled")) == 1
    assert value(metrics, "outlast_queue_depth", **fn("bad", state="due")) == 0  # known, idle: zero
    assert value(metrics, "outlast_queue_lag_seconds", **fn("bad")) == 0
    assert value(metrics, "outlast_waits_pending", kind="wait") == 1
    assert value(metrics, "outlast_waits_pending", kind="cancel") == 0
    backend = "postgresql" if "Postgres" in type(t.store).__name__ else "sqlite"
    commits = value(metrics, "outlast_commit_batch_size_count", backend=backend) or 0
    assert commits > 0 and (value(metrics, "outlast_commit_batch_size_sum", backend=backend) or 0) >= commits
    assert value(metrics, "outlast_commit_duration_seconds_count", backend=backend) == commits


async def test_labels_never_name_runs_events_or_steps(app: outlast.Outlast) -> None:
    workload(app)
    async with TestEngine(app) as t:
        metrics = install_metrics(t.engine)
        assert metrics is not None
        ids = await t.send([Event(name="t/ok"), Event(name="t/flaky")])
        await t.run_until_idle()
        await metrics.sample()
        text = metrics.exposition().decode()
        run_ids = [r.id for r in t.runs()]
    assert "outlast_runs_started_total" in text
    for secret in [*ids, *run_ids, '"a"', '"once"']:
        assert secret not in text
    label_names = {
        label.split("=")[0]
        for line in text.splitlines()
        if line.startswith("outlast_") and "{" in line
        for label in line[line.index("{") + 1 : line.index("}")].split(",")
    }
    assert label_names <= {"app", "function", "status", "outcome", "kind", "state", "backend", "le"}


async def test_the_server_serves_metrics(app: outlast.Outlast, tmp_path: Path) -> None:
    workload(app)
    async with (
        TestEngine(app, database_url=f"sqlite:///{tmp_path}/m.db") as t,
        serving(t.engine) as url,
        httpx.AsyncClient() as client,
    ):
        await t.send(Event(name="t/ok"))
        await t.run_until_idle()
        reply = await client.get(f"{url}/metrics")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    assert 'outlast_runs_ended_total{app="test-app",function="ok",status="completed"} 1.0' in reply.text
    assert 'outlast_queue_depth{app="test-app",function="ok",state="due"} 0.0' in reply.text
    assert "process_resident_memory_bytes" in reply.text


async def test_a_bare_worker_endpoint_serves_metrics_and_nothing_else(app: outlast.Outlast) -> None:
    workload(app)
    async with TestEngine(app) as t:
        metrics = install_metrics(t.engine)
        assert metrics is not None
        server = await serve_metrics(metrics, host="127.0.0.1", port=0)
        port = server.sockets[0].getsockname()[1]
        try:
            await t.send(Event(name="t/sleepy"))
            await t.run_until_idle()
            async with httpx.AsyncClient() as client:
                reply = await client.get(f"http://127.0.0.1:{port}/metrics")
                other = await client.get(f"http://127.0.0.1:{port}/")
        finally:
            server.close()
            await server.wait_closed()
    assert reply.status_code == 200
    assert 'outlast_queue_depth{app="test-app",function="sleepy",state="scheduled"} 1.0' in reply.text
    assert other.status_code == 404


def test_outlast_worker_metrics_port(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "OUTLAST_DATABASE_URL": f"sqlite:///{tmp_path}/w.db",
        "PYTHONPATH": str(ROOT),
        "OUTLAST_TEST_EFFECTS": str(tmp_path / "effects.db"),
    }
    with (tmp_path / "worker.log").open("w") as log:  # the child writes to its own copy
        worker = subprocess.Popen(
            [sys.executable, "-m", "outlast.cli", "worker", "tests.apps.effects:app", "--metrics-port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=log,
        )
    try:
        text, deadline = "", time.monotonic() + 30
        while "outlast_queue_depth" not in text and time.monotonic() < deadline:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            except httpx.TransportError:
                time.sleep(0.1)
        assert 'function="five-steps",state="due"} 0.0' in text, (tmp_path / "worker.log").read_text()
    finally:
        worker.terminate()
        worker.wait(10)


async def test_nothing_is_subscribed_until_metrics_are_installed(app: outlast.Outlast) -> None:
    async with TestEngine(app) as t:
        assert not t.engine.bus and t.store.group_observer is None  # type: ignore[attr-defined]
        await asyncio.sleep(0)
