"""Realtime in a real Chromium: the Realtime page watches a channel through EventSource and shows
messages as they are published (with the topic filter); a run's page shows its messages."""

from __future__ import annotations

import re
from typing import Any

import httpx
from playwright.sync_api import expect

from tests.browser.test_dashboard import run_of, send


def publish(server: str, channel: str, topic: str, data: Any) -> None:
    reply = httpx.post(
        f"{server}/v1/realtime/publish", params={"channel": channel, "topic": topic}, json=data, timeout=10
    )
    assert reply.status_code == 200, reply.text


def test_the_realtime_page_shows_a_channels_messages_live_with_the_topic_filter(page: Any, server: str) -> None:
    publish(server, "order:browser", "status", {"stage": "before the page"})
    page.goto("/realtime")
    page.get_by_label("Channel").fill("order:browser")
    page.get_by_label("Topics").fill("status")
    page.get_by_role("button", name="Watch").click()
    messages = page.get_by_role("region", name="Messages on order:browser")
    expect(messages).to_contain_text("before the page")  # what the store keeps, then live
    expect(messages.get_by_role("status")).to_contain_text("Live")
    publish(server, "order:browser", "status", {"stage": "<b>paid</b>"})
    publish(server, "order:browser", "noise", {"stage": "filtered out"})
    publish(server, "order:browser", "status", {"stage": "shipped"})
    expect(messages).to_contain_text("shipped")
    expect(messages).to_contain_text('"stage":"<b>paid</b>"')  # shown as text, not HTML
    expect(messages).not_to_contain_text("filtered out")
    assert messages.locator("b").count() == 0
    expect(messages.locator("tbody tr")).to_have_count(3)


def test_a_page_subscribes_with_eventsource_and_resumes_after_its_last_id(page: Any, server: str) -> None:
    publish(server, "raw:es", "t", 1)
    page.goto("/realtime")
    got = page.evaluate(
        """() => new Promise((resolve, reject) => {
            const seen = [];
            const source = new EventSource("/api/realtime?channel=raw:es&since=0");
            source.onmessage = (e) => {
                seen.push([e.lastEventId, JSON.parse(e.data).data]);
                if (seen.length === 1) { source.close(); resolve(seen); }
            };
            setTimeout(() => reject(new Error("no message")), 10000);
        })"""
    )
    [(first_id, first)] = got
    assert first == 1
    publish(server, "raw:es", "t", 2)
    resumed = page.evaluate(
        """(after) => new Promise((resolve, reject) => {
            const source = new EventSource("/api/realtime?channel=raw:es&since=" + after);
            source.onmessage = (e) => { source.close(); resolve(JSON.parse(e.data).data); };
            setTimeout(() => reject(new Error("no message")), 10000);
        })""",
        first_id,
    )
    assert resumed == 2


def test_a_runs_page_shows_its_messages(page: Any, server: str) -> None:
    run_id = run_of(server, send(server, "shop/order.created", {"order_id": "rt", "total": 10}), "completed")
    page.goto(f"/runs/{run_id}")
    messages = page.get_by_role("region", name="Messages")
    expect(messages).to_contain_text(f"run:{run_id}")
    expect(messages).to_contain_text('"status":"completed"')
    expect(messages).to_contain_text('"id":"get-user"')
    when = messages.locator("tbody tr").first.locator("td").nth(1)
    expect(when).to_have_text(re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"))  # as every time on the page
