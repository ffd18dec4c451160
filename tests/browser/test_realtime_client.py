"""Inngest's own realtime client in a real Chromium: `subscribe()` from `inngest/realtime`
(inngest@4, bundled for the page with esbuild, as a browser app ships it) opens Outlast's
`/v1/realtime/connect` with a token the app's backend minted, and shows what is published on
its channel in order; a token it may not use is refused before the socket opens."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import ROOT
from tests.interop.harness import node_ready

CLIENT_DIR = ROOT / "tests" / "browser" / "realtime_client"

#: subscribes in the page; the messages land in `window.got`, or the refusal in the answer
SUBSCRIBE = """
async ({ url, key, channel }) => {
  window.got = [];
  try {
    const stream = await window.inngestSubscribe({ key, channel, topics: ["status"], apiBaseUrl: url });
    (async () => {
      for await (const m of stream) window.got.push({ kind: m.kind, topic: m.topic, data: m.data, runId: m.runId });
    })();
    return "open";
  } catch (err) {
    return `refused: ${err && err.message ? err.message : "the socket did not open"}`;
  }
}
"""


@pytest.fixture(scope="module")
def official_client(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The official client, bundled for a browser (`npm ci` there first, as the interop tests do)."""
    node_ready(CLIENT_DIR)
    bundle = tmp_path_factory.mktemp("bundle") / "client.js"
    esbuild = CLIENT_DIR / "node_modules" / ".bin" / "esbuild"
    args = [str(esbuild), "entry.js", "--bundle", "--format=iife", "--platform=browser", f"--outfile={bundle}"]
    result = subprocess.run(args, cwd=CLIENT_DIR, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"esbuild failed:\n{result.stderr[-2000:]}"
    return Path(bundle).read_text()


@pytest.fixture
def client_page(page: Any, official_client: str) -> Any:
    page.set_content("<!doctype html><title>app</title>")
    page.add_script_tag(content=official_client)
    return page


def token(server: str, channel: str) -> str:
    reply = httpx.post(
        f"{server}/v1/realtime/token", json=[{"channel": channel, "name": "status", "kind": "run"}], timeout=10
    )
    assert reply.status_code == 201, reply.text
    return str(reply.json()["jwt"])


def publish(server: str, channel: str, topic: str, data: Any) -> None:
    params = {"channel": channel, "topic": topic, "run_id": "01BROWSERRUN"}
    reply = httpx.post(f"{server}/v1/realtime/publish", params=params, json=data, timeout=10)
    assert reply.status_code == 200, reply.text


def test_the_official_client_in_chromium_receives_a_channels_messages_in_order(client_page: Any, server: str) -> None:
    args = {"url": server, "key": token(server, "order:official"), "channel": "order:official"}
    assert client_page.evaluate(SUBSCRIBE, args) == "open"
    publish(server, "order:official", "status", {"stage": "paid"})
    publish(server, "order:official", "log", "not asked for")
    publish(server, "order:elsewhere", "status", {"stage": "other order"})
    publish(server, "order:official", "status", {"stage": "shipped"})
    client_page.wait_for_function("() => window.got.length >= 2")
    assert client_page.evaluate("() => window.got") == [
        {"kind": "data", "topic": "status", "data": {"stage": "paid"}, "runId": "01BROWSERRUN"},
        {"kind": "data", "topic": "status", "data": {"stage": "shipped"}, "runId": "01BROWSERRUN"},
    ]


def test_the_official_client_in_chromium_is_refused_a_forged_token(client_page: Any, server: str) -> None:
    args = {"url": server, "key": "v1.eyJjIjoib3JkZXI6b2ZmaWNpYWwifQ.forged", "channel": "order:official"}
    assert client_page.evaluate(SUBSCRIBE, args).startswith("refused")
