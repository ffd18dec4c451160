"""Connect: workers on the official Inngest Python SDK (`inngest[connect]` from PyPI) that dial out
to a real `outlast dev`/`start` over WebSocket and get their work over it, with no HTTP port."""

from __future__ import annotations

import signal
import socket
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest

from outlast.core.models import RunFilter
from outlast.storage import open_store
from tests.conftest import PG_URL, pg_database
from tests.interop.harness import (
    JS_CONNECT_DIR,
    OTHER_SIGNING_KEY,
    PY_APP_DIR,
    SIGNING_KEY,
    Outlast,
    Proc,
    effects,
    free_port,
    node_ready,
    sdk_env,
)

CONNECTED = "Connect: worker "


class ConnectWorker:
    """`tests/interop/py/connect_worker.py` in a subprocess; its step bodies log to `effects`."""

    def __init__(
        self,
        tmp: Path,
        outlast: Outlast,
        name: str = "py-connect",
        *,
        production: bool = False,
        signing_key: str = SIGNING_KEY,
        capacity: int | None = None,
    ) -> None:
        self.effects = tmp / f"{name}.effects.log"
        env = {
            **sdk_env(tmp, outlast, production=production, signing_key=signing_key),
            "OUTLAST_TEST_EFFECTS": str(self.effects),
            "CONNECT_INSTANCE_ID": name,
        }
        if capacity is not None:
            env["CONNECT_MAX_CONCURRENCY"] = str(capacity)
        self.proc = Proc(name, self.command(env), cwd=self.cwd, env=env, log=tmp / f"{name}.log")

    cwd = PY_APP_DIR

    def command(self, env: dict[str, str]) -> list[str]:
        return [sys.executable, "connect_worker.py"]

    def ran(self) -> Counter[str]:
        return Counter(self.effects.read_text().splitlines()) if self.effects.exists() else Counter()


class JsConnectWorker(ConnectWorker):
    """`tests/interop/js-connect/worker.js` on `inngest@4` (Node 20 needs --experimental-websocket)."""

    cwd = JS_CONNECT_DIR

    def command(self, env: dict[str, str]) -> list[str]:
        env["NODE_OPTIONS"] = "--experimental-websocket"  # its worker threads need it too
        return ["node", "worker.js"]


async def connected(outlast: Outlast, count: int = 1, timeout: float = 30.0) -> None:
    """Until `count` workers have completed the handshake (the server logs each)."""

    async def enough() -> bool:
        return outlast.proc.output().count(CONNECTED) >= count

    await outlast.wait(enough, timeout, f"{count} Connect worker(s) to connect")


async def test_a_connect_worker_syncs_and_runs_every_step_kind(outlast: Outlast, tmp_path: Path) -> None:
    worker = ConnectWorker(tmp_path, outlast)
    try:
        await connected(outlast)
        app = await (await outlast.store()).get_app("py-app")
        assert app is not None and app.framework == "connect" and app.sdk.startswith("py:v")
        assert app.url == "connect://py-app" and "steps" in app.functions
        ids = await outlast.send(
            {"name": "py/steps", "data": {"n": 1}},
            {"name": "py/parallel"},
            {"name": "py/flaky"},
            {"name": "py/fn-error"},
            {"name": "py/parent", "data": {"x": 21}},
            {"name": "py/wait", "data": {"id": "late", "timeout": 1}},
        )
        steps, parallel, flaky, fn_error, parent, timed_out = ids
        run = await outlast.finished_run(steps)
        assert (run.status, run.output) == ("completed", {"a": 1, "b": 2, "n": 1})
        assert [(s.id, s.kind, s.status) for s in run.steps] == [
            ("one", "run", "completed"),
            ("two", "run", "completed"),
            ("nap", "sleep", "completed"),
            ("until", "sleep", "completed"),
        ]
        assert run.steps[2].ended_at - run.steps[2].started_at >= 900  # the sleep slept
        assert (await outlast.finished_run(parallel)).output == ["left", "right", "middle", "after"]
        run = await outlast.finished_run(flaky)
        assert (run.status, run.output, run.steps[0].attempts) == ("completed", "ok at 2", 3)
        run = await outlast.finished_run(fn_error)
        assert run.status == "failed" and "broken outside any step (attempt 1)" in str(run.error)
        assert (await outlast.finished_run(parent)).output == {"doubled": 42}
        assert (await outlast.finished_run(timed_out, timeout=15)).output == {"approved": None}
        ran = worker.ran()
        assert ran["one:1"] == ran["two:1"] == 1  # memoized steps are never called again
        assert ran["branch:left"] == ran["branch:right"] == ran["branch:middle"] == 1
        assert [ran[f"flaky:{i}"] for i in range(3)] == [1, 1, 1]
    finally:
        worker.proc.stop()


async def test_two_workers_share_the_load(outlast: Outlast, tmp_path: Path) -> None:
    workers = [ConnectWorker(tmp_path, outlast, f"worker-{i}", capacity=4) for i in range(2)]
    try:
        await connected(outlast, 2)
        ids = await outlast.send(*({"name": "py/slow", "data": {"n": i}} for i in range(16)))
        runs = [await outlast.finished_run(event, timeout=60) for event in ids]
        assert sorted(r.output["n"] for r in runs) == list(range(16))
        shares = [sum(w.ran().values()) for w in workers]
        assert all(share > 0 for share in shares), shares  # both served requests
        assert sum(shares) == 16 * 3  # each step body ran once, on one worker or the other
    finally:
        for worker in workers:
            worker.proc.stop()


async def test_a_worker_killed_mid_step_has_its_work_finished_by_another(outlast: Outlast, tmp_path: Path) -> None:
    doomed = ConnectWorker(tmp_path, outlast, "doomed")
    await connected(outlast)
    count = 12
    ids = await outlast.send(*({"name": "py/slow", "data": {"n": i}} for i in range(count)))

    async def some_done() -> bool:
        return len(await outlast.runs(function_id="slow-steps", status="completed")) >= 2

    await outlast.wait(some_done, 30, "some runs to complete")
    doomed.proc.kill(signal.SIGKILL)
    store = await outlast.store()
    committed: set[str] = set()
    for run in await outlast.runs(function_id="slow-steps"):
        full = await outlast.run(run.id)
        n = (await store.get_events(full.event_ids))[0].data["n"]
        committed |= {f"{s.id}:{n}" for s in full.steps if s.kind == "run" and s.status == "completed"}
    assert 0 < len(committed) < 3 * count, "the kill should land in the middle of the load"

    survivor = ConnectWorker(tmp_path, outlast, "survivor")
    try:
        runs = [await outlast.finished_run(event, timeout=90) for event in ids]
        assert [r.status for r in runs] == ["completed"] * count
        assert all(r.output["done"] == ["s1", "s2", "s3"] for r in runs)
        assert len(await outlast.runs(function_id="slow-steps")) == count  # no run lost, none doubled
        assert not committed & set(survivor.ran()), "a committed step ran again"
        for run in runs:
            assert [s.id for s in run.steps] == ["s1", "s2", "s3"]  # each step committed once
        assert effects(tmp_path) == Counter()  # the HTTP app's log: nothing ran outside Connect
    finally:
        survivor.proc.stop()


async def test_a_worker_stopped_gracefully_finishes_its_requests_first(outlast: Outlast, tmp_path: Path) -> None:
    leaving = ConnectWorker(tmp_path, outlast, "leaving")
    await connected(outlast)
    count = 8
    ids = await outlast.send(*({"name": "py/slow", "data": {"n": i}} for i in range(count)))

    async def some_done() -> bool:
        return len(await outlast.runs(function_id="slow-steps", status="completed")) >= 1

    await outlast.wait(some_done, 30, "a run to complete")
    leaving.proc.stop()  # SIGTERM: the SDK sends WORKER_PAUSE and finishes what it has in flight
    staying = ConnectWorker(tmp_path, outlast, "staying")
    try:
        runs = [await outlast.finished_run(event, timeout=90) for event in ids]
        assert [r.status for r in runs] == ["completed"] * count
        ran = leaving.ran() + staying.ran()
        assert sorted(ran) == sorted(f"{s}:{i}" for i in range(count) for s in ("s1", "s2", "s3"))
        assert set(ran.values()) == {1}  # drained, not dropped: no step body ran twice
    finally:
        staying.proc.stop()


EVENT_KEY = "connect-event-key-0123456789"


async def test_production_requires_the_signing_key(tmp_path: Path) -> None:
    production = Outlast(
        tmp_path,
        mode="start",
        env={
            "INNGEST_SIGNING_KEY": SIGNING_KEY,
            "OUTLAST_EVENT_KEY": EVENT_KEY,
            "OUTLAST_DASHBOARD_PASSWORD": "dashboard-secret",
        },
        args=("--log-level", "info"),  # the server logs each connection
    )
    wrong = ConnectWorker(tmp_path, production, "wrong-key", production=True, signing_key=OTHER_SIGNING_KEY)
    right = ConnectWorker(tmp_path, production, "right-key", production=True)
    try:
        await connected(production)
        [event] = await production.send({"name": "py/steps", "data": {"n": 5}}, key=EVENT_KEY)
        run = await production.finished_run(event)
        assert (run.status, run.output) == ("completed", {"a": 1, "b": 2, "n": 5})
        async with httpx.AsyncClient() as client:
            refused = await client.post(f"{production.url}/v0/connect/start", content=b"")
        assert refused.status_code == 401 and "signing key required" in refused.json()["error"]
        assert production.proc.output().count(CONNECTED) == 1  # the wrong key never got in
        assert right.ran()["one:5"] == 1 and wrong.ran() == Counter()
    finally:
        wrong.proc.stop()
        right.proc.stop()
        await production.close()


async def test_a_js_connect_worker_on_inngest_4_runs_steps_retries_and_waits(tmp_path: Path) -> None:
    node_ready(JS_CONNECT_DIR)
    gateway_port = free_port()  # the JS worker dials the gateway port /v0/connect/start names
    outlast = Outlast(tmp_path, env={"OUTLAST_LEASE_MS": "5000"}, args=("--connect-port", str(gateway_port)))
    worker = JsConnectWorker(tmp_path, outlast, "js-connect")
    try:
        await connected(outlast)
        app = await (await outlast.store()).get_app("js-connect")
        assert app is not None and app.framework == "connect" and app.sdk.startswith("typescript:v4.")
        steps, parallel, flaky, waiting = await outlast.send(
            {"name": "jsc/steps", "data": {"n": 1}},
            {"name": "jsc/parallel"},
            {"name": "jsc/flaky"},
            {"name": "jsc/wait", "data": {"id": "w1"}},
        )
        run = await outlast.finished_run(steps)
        assert (run.status, run.output) == ("completed", {"a": 1, "b": 2, "n": 1})
        assert [(s.id, s.kind) for s in run.steps] == [("one", "run"), ("two", "run"), ("nap", "sleep")]
        assert (await outlast.finished_run(parallel)).output == ["left", "right", "after"]
        assert (await outlast.finished_run(flaky)).output == "ok at 2"

        async def waiting_stored() -> bool:
            runs = await outlast.runs_of(waiting)
            return bool(runs) and any(s.status == "waiting" for s in (await outlast.run(runs[0].id)).steps)

        await outlast.wait(waiting_stored, 15, "the wait to be stored")
        await outlast.send({"name": "jsc/approved", "data": {"id": "w1"}})
        assert (await outlast.finished_run(waiting)).output == {"approved": {"id": "w1"}}
        ran = worker.ran()
        assert ran["one:1"] == ran["two:1"] == ran["branch:left"] == ran["branch:right"] == 1
        assert [ran[f"flaky:{i}"] for i in range(3)] == [1, 1, 1]
        assert f"on port {gateway_port}" in outlast.proc.output()
    finally:
        worker.proc.stop()
        await outlast.close()


@pytest.mark.skipif(not PG_URL, reason="OUTLAST_TEST_POSTGRES_URL is not set")
async def test_two_servers_on_one_postgresql_database_share_a_connection(tmp_path: Path) -> None:
    """A worker connected to server A gets the runs of events sent to server B: only the process
    holding a connection of the app claims its runs, so B neither runs nor fails them."""
    database = pg_database()
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    a = Outlast(tmp_path / "a", env={"OUTLAST_DATABASE_URL": database}, args=("--log-level", "info"))
    store = open_store(database)
    await store.open()
    worker = ConnectWorker(tmp_path, a, "worker-a")
    try:
        await connected(a)
        # B starts after the sync: a server reads the functions at start and on its own claims,
        # not when another process syncs an app (true of HTTP apps alike)
        b = Outlast(tmp_path / "b", env={"OUTLAST_DATABASE_URL": database})
        ids = await b.send(*({"name": "py/slow", "data": {"n": i}} for i in range(8)))

        async def all_done() -> bool:
            return len(await store.list_runs(RunFilter(function_id="slow-steps", status="completed"))) == len(ids)

        await b.wait(all_done, 90, "every run to complete")
        for run in await store.list_runs(RunFilter(function_id="slow-steps")):
            assert (await store.get_run(run.id)).failures == []  # type: ignore[union-attr]
        assert sum(worker.ran().values()) == 8 * 3  # each step body ran once
        async with httpx.AsyncClient() as client:
            listed = (await client.get(f"{b.url}/api/workers")).json()["workers"]
        shown = [w["host"] for w in listed if w["app_id"] == "py-app"]
        assert len(shown) == 1 and "worker-a via Connect" in shown[0]  # B shows A's connection (shared database)
    finally:
        worker.proc.stop()
        await store.close()
        await a.close()
        if "b" in locals():
            await b.close()


def gateway_endpoint(outlast: Outlast) -> str:
    """What `/v0/connect/start` tells a worker to dial."""
    from inngest.connect._internal import connect_pb2 as pb

    reply = httpx.post(f"{outlast.url}/v0/connect/start", content=pb.StartRequest().SerializeToString(), timeout=10)
    return str(pb.StartResponse.FromString(reply.content).gateway_endpoint)


async def test_workers_are_sent_to_the_gateway_port(tmp_path: Path) -> None:
    gateway_port = free_port()  # standing in for Inngest's 8289, which tests never take
    outlast = Outlast(tmp_path, args=("--connect-port", str(gateway_port), "--log-level", "info"))
    worker = ConnectWorker(tmp_path, outlast)
    try:
        assert gateway_endpoint(outlast) == f"ws://127.0.0.1:{gateway_port}/v0/connect"
        await connected(outlast)
        assert f"on port {gateway_port}" in outlast.proc.output()
        [event] = await outlast.send({"name": "py/steps", "data": {"n": 2}})
        assert (await outlast.finished_run(event)).output == {"a": 1, "b": 2, "n": 2}
    finally:
        worker.proc.stop()
        await outlast.close()


async def test_a_busy_gateway_port_falls_back_to_the_main_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        outlast = Outlast(tmp_path, args=("--connect-port", str(busy), "--log-level", "info"))
        worker = ConnectWorker(tmp_path, outlast)
        try:
            assert f"the gateway port {busy} could not be opened" in outlast.proc.output()
            assert gateway_endpoint(outlast) == f"ws://127.0.0.1:{outlast.port}/v0/connect"
            await connected(outlast)
            [event] = await outlast.send({"name": "py/steps", "data": {"n": 3}})
            assert (await outlast.finished_run(event)).output == {"a": 1, "b": 2, "n": 3}
        finally:
            worker.proc.stop()
            await outlast.close()
