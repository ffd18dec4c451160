"""Apps on the official SDKs publish realtime messages through Inngest's routes onto Outlast's
channels: `step.realtime.publish` from an `inngest@4` app, `inngest.experimental.realtime` from
an inngest-py app; a Python subscriber on another process's store sees them."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from outlast.core.realtime import Message
from tests.interop.harness import JS_APP_DIR, Outlast, SdkApp, free_port, node_ready, sdk_env

JS4_APP_DIR = JS_APP_DIR.parent / "js4"


def js4_ready() -> None:
    node_ready()
    if not (JS4_APP_DIR / "node_modules" / "inngest").exists():
        result = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=JS4_APP_DIR, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, f"`npm ci` in {JS4_APP_DIR} failed:\n{result.stderr[-2000:]}"


@pytest.fixture
def js4_app(tmp_path: Path, outlast: Outlast) -> Iterator[SdkApp]:
    js4_ready()
    port = free_port()
    env = {**sdk_env(tmp_path, outlast), "PORT": str(port)}
    app = SdkApp("js4-app", ["node", "app.js"], cwd=JS4_APP_DIR, env=env, tmp=tmp_path, port=port)
    yield app
    app.proc.stop()


async def messages_of(outlast: Outlast, channel: str, n: int) -> list[Message]:
    store = await outlast.store()

    async def published() -> list[Message] | None:
        found = await store.read_messages(channels=[channel], after_id=0)
        return found if len(found) >= n else None

    return await outlast.wait(published, 30, f"{n} messages on {channel}")


async def test_an_inngest_v4_app_publishes_with_step_realtime_publish(outlast: Outlast, js4_app: SdkApp) -> None:
    await js4_app.sync()
    [event_id] = await outlast.send({"name": "js4/publish", "data": {"id": "o1"}})
    run = await outlast.finished_run(event_id)
    assert (run.status, run.output) == ("completed", 42)
    got = await messages_of(outlast, "progress:o1", 2)
    assert [(m.topic, m.data) for m in got] == [
        ("status", {"stage": "started"}),
        ("status", {"stage": "finished", "n": 42}),
    ]
    assert {m.run_id for m in got} == {run.id}


async def test_an_inngest_py_app_publishes_through_the_realtime_route(outlast: Outlast, py_app: SdkApp) -> None:
    await py_app.sync()
    [event_id] = await outlast.send({"name": "py/publish", "data": {"id": "p1"}})
    run = await outlast.finished_run(event_id)
    assert run.status == "completed", run.error
    [got] = await messages_of(outlast, "py-progress:p1", 1)
    assert (got.topic, got.data) == ("status", {"stage": "published"})
