"""Inngest's own realtime client subscribes to Outlast: `subscribe()` from `inngest/realtime`
(inngest@4, Node) opens `/v1/realtime/connect` with a token it asks the server for, and receives,
in order, what an Outlast run (`ctx.step.publish`) and an inngest@4 app's run
(`step.realtime.publish`) publish on its channel; a token it may not use is refused, and in
production only a client holding the signing key gets a token."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import httpx
import pytest

from outlast.protocol.signing import bearer_token
from tests.interop.harness import (
    EVENT_KEY,
    JS4_APP_DIR,
    OTHER_SIGNING_KEY,
    ROOT,
    SIGNING_KEY,
    Outlast,
    SdkApp,
    js4_app,
    node_ready,
    sdk_env,
)

ARRIVAL_S = 60


class Subscriber:
    """`node subscribe.js`: its stdout lines as they come."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        args = ["node", *_websocket_flag(), "subscribe.js"]
        self.log = log
        with log.open("ab") as errors:  # the child writes to its own copy
            self.proc = subprocess.Popen(args, cwd=JS4_APP_DIR, env=env, stdout=subprocess.PIPE, stderr=errors)
        self.lines: Queue[str] = Queue()
        self.reader = threading.Thread(target=self._pump, daemon=True)
        self.reader.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(raw.decode().rstrip("\n"))

    def line(self) -> str:
        try:
            return self.lines.get(timeout=ARRIVAL_S)
        except Empty:
            self.stop()
            stderr = self.log.read_text(errors="replace")[-3000:]
            raise AssertionError(f"the subscriber printed nothing in {ARRIVAL_S}s:\n{stderr}") from None

    def messages(self, n: int) -> list[dict[str, Any]]:
        return [json.loads(self.line()) for _ in range(n)]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.reader.join(10)  # the pipe is at its end once the process is gone
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _websocket_flag() -> list[str]:
    """Node 20 has WebSocket behind a flag (global from Node 22), as the client needs it."""
    version = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout
    return ["--experimental-websocket"] if int(version.lstrip("v").split(".")[0]) < 22 else []


@pytest.fixture
def subscriber(tmp_path: Path) -> Iterator[Any]:
    """Start `subscribe.js` against a server: `start(server, channel, topics, count, **env)`."""
    node_ready(JS4_APP_DIR)
    started: list[Subscriber] = []

    def start(server: Outlast, channel: str, topics: list[str], count: int, **extra: str) -> Subscriber:
        production = "INNGEST_SIGNING_KEY" in extra
        env = {**sdk_env(tmp_path, server, production=production), "SUBSCRIBE_CHANNEL": channel}
        env.update(SUBSCRIBE_TOPICS=",".join(topics), SUBSCRIBE_COUNT=str(count), **extra)
        started.append(Subscriber(env, tmp_path / f"subscriber-{len(started)}.log"))
        return started[-1]

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def publishers(tmp_path: Path) -> Iterator[tuple[Outlast, SdkApp]]:
    server = Outlast(tmp_path, env={"OUTLAST_LEASE_MS": "5000"}, args=(str(ROOT / "tests" / "apps" / "publisher.py"),))
    app = js4_app(tmp_path, server)
    yield server, app
    app.proc.stop()
    server.proc.stop()


async def test_the_official_client_receives_what_outlast_and_sdk_runs_publish_in_order(
    tmp_path: Path, publishers: tuple[Outlast, SdkApp], subscriber: Any
) -> None:
    server, app = publishers
    await app.sync()
    watcher = subscriber(server, "progress:w1", ["status"], 4)
    assert watcher.line() == "ready"
    [js_event] = await server.send({"name": "js4/publish", "data": {"id": "w1"}})
    js_run = await server.finished_run(js_event)
    [py_event] = await server.send({"name": "outlast/publish", "data": {"id": "w1"}})
    py_run = await server.finished_run(py_event)
    got = watcher.messages(4)
    assert (js_run.status, py_run.status) == ("completed", "completed")
    assert [(m["kind"], m["channel"], m["topic"], m["data"]) for m in got] == [
        ("data", "progress:w1", "status", {"stage": "started"}),
        ("data", "progress:w1", "status", {"stage": "finished", "n": 42}),
        ("data", "progress:w1", "status", {"stage": "python"}),
        ("data", "progress:w1", "status", {"stage": "done", "by": "outlast"}),
    ]
    assert [m["runId"] for m in got] == [js_run.id, js_run.id, py_run.id, py_run.id]


async def test_the_official_client_is_refused_with_a_token_it_may_not_use(outlast: Outlast, subscriber: Any) -> None:
    forged = subscriber(outlast, "progress:x", ["status"], 1, SUBSCRIBE_TOKEN="v1.eyJjIjoieCJ9.forged")
    assert forged.line().startswith("refused")
    assert forged.proc.wait(30) == 0


async def test_in_production_the_client_subscribes_with_the_signing_key_and_not_without(
    tmp_path: Path, subscriber: Any
) -> None:
    env = {
        "INNGEST_SIGNING_KEY": SIGNING_KEY,
        "OUTLAST_EVENT_KEY": EVENT_KEY,
        "OUTLAST_DASHBOARD_PASSWORD": "dashboard-secret",
    }
    server = Outlast(tmp_path, mode="start", env=env)
    try:
        watcher = subscriber(server, "orders", ["status"], 1, INNGEST_SIGNING_KEY=SIGNING_KEY)
        stranger = subscriber(server, "orders", ["status"], 1, INNGEST_SIGNING_KEY=OTHER_SIGNING_KEY)
        assert watcher.line() == "ready"
        refused = stranger.line()
        async with httpx.AsyncClient(base_url=server.url) as client:
            reply = await client.post(
                "/v1/realtime/publish",
                params={"channel": "orders", "topic": "status"},
                json={"stage": "paid"},
                headers={"Authorization": f"Bearer {bearer_token(SIGNING_KEY)}"},
            )
        assert reply.status_code == 200, reply.text
        [got] = watcher.messages(1)
    finally:
        await server.close()
    assert (got["topic"], got["data"]) == ("status", {"stage": "paid"})
    assert refused.startswith("refused") and "401" in refused
