"""What a user does in the dashboard: find a run, read its trace and error, send an event, cancel a
sleeping run, rerun a failed one (also from a step with an edited output), and watch a new run
appear without reloading."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import expect

from tests.browser.conftest import VIEWER_TIME_ZONE


def send(server: str, name: str, data: dict[str, Any]) -> str:
    reply = httpx.post(f"{server}/api/events", json={"name": name, "data": data}, timeout=10)
    assert reply.status_code == 200, reply.text
    return str(reply.json()["ids"][0])


def run_of(server: str, event_id: str, status: str | None = None) -> str:
    """The run the event started (once it exists, and reached `status` if given)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        runs = httpx.get(f"{server}/api/runs", params={"q": event_id}, timeout=10).json()["runs"]
        if runs and (status is None or runs[0]["status"] == status):
            return str(runs[0]["id"])
        time.sleep(0.05)
    raise AssertionError(f"no {status or ''} run for event {event_id}")


def test_find_a_run_read_its_trace_and_see_its_error(page: Any, server: str) -> None:
    run_id = run_of(server, send(server, "shop/order.created", {"order_id": "find-me", "total": 4000}), "failed")
    page.goto("/")
    page.get_by_label("Search").fill(run_id)
    page.get_by_label("Search").press("Enter")
    expect(page).to_have_url(re.compile(f"/runs/{run_id}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("process-order")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Failed")
    expect(page.locator(".result")).to_contain_text("card declined: 4000 is over the card's limit")
    steps = page.get_by_role("listitem")
    expect(steps.filter(has_text="get-user")).to_contain_text("Completed")
    charge = page.locator("details.wf-step", has_text="charge")
    charge.locator(":scope > summary").click()
    expect(charge).to_contain_text("NonRetriableError")
    charge.get_by_text("Stack trace").click()
    expect(charge.locator("pre.stack")).to_contain_text("Traceback")
    expect(page.get_by_role("region", name="Trigger event")).to_contain_text('"order_id": "find-me"')
    expect(page.get_by_role("region", name="Logs")).to_contain_text("processing order find-me")


def test_send_an_event_and_follow_it_to_its_run(page: Any, server: str) -> None:
    page.goto("/events")
    page.get_by_label("Name", exact=True).last.fill("shop/order.created")
    data = page.get_by_label("Data (JSON object)")
    data.fill("{oops")
    expect(page.locator("#send-check")).to_contain_text("Not valid JSON")
    expect(page.get_by_role("button", name="Send event")).to_be_disabled()
    data.fill(json.dumps({"order_id": "from-the-browser", "total": 25}))
    page.get_by_role("button", name="Send event").click()
    expect(page.locator(".flash")).to_contain_text("Event 'shop/order.created' sent.")
    expect(page.get_by_role("heading", level=1)).to_contain_text("shop/order.created")
    page.get_by_role("link", name=re.compile("^01")).first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("process-order")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Completed")  # live, or already done
    expect(page.locator(".result")).to_contain_text('"charged": 25')


def test_cancel_a_sleeping_run(page: Any, server: str) -> None:
    run_id = run_of(server, send(server, "shop/nap", {"for": "1d"}), "running")
    page.goto(f"/runs/{run_id}")
    expect(page.locator("details.wf-step", has_text="long-nap")).to_contain_text("Sleeping")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator(".flash")).to_have_text("Run cancelled.")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Cancelled")
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    expect(page.get_by_role("button", name="Rerun")).to_be_visible()


def test_rerun_a_failed_run(page: Any, server: str) -> None:
    run_id = run_of(server, send(server, "shop/order.created", {"order_id": "again", "total": 3000}), "failed")
    page.goto(f"/runs/{run_id}")
    page.get_by_role("button", name="Rerun").click()
    expect(page.locator(".flash")).to_contain_text(f"Rerun of {run_id} started from the start.")
    expect(page).not_to_have_url(re.compile(f"/runs/{run_id}$"))
    expect(page.locator(".links")).to_contain_text(f"Rerun of {run_id}, from the start")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Failed")
    page.get_by_role("link", name=run_id).click()
    expect(page.locator(".links")).to_contain_text("Rerun as")


def test_rerun_from_a_step_with_an_edited_output(page: Any, server: str) -> None:
    run_id = run_of(server, send(server, "shop/order.created", {"order_id": "edit", "total": 9000}), "failed")
    page.goto(f"/runs/{run_id}")
    charge = page.locator("details.wf-step", has_text="charge")
    charge.locator(":scope > summary").click()
    charge.get_by_role("link", name="Rerun from this step…").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Rerun from step charge")
    output = page.get_by_label("Output of charge (JSON)")
    output.fill('{"charged": 9, "currency": "EUR"}')
    page.get_by_role("button", name="Rerun from this step").click()
    expect(page.locator(".flash")).to_contain_text("started from step")
    expect(page.locator(".links")).to_contain_text("with an edited output")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Completed")
    expect(page.locator(".result")).to_contain_text('"charged": 9')
    expect(page.locator("details.wf-step", has_text="get-user")).to_contain_text("kept from the original run")


#: keeps each EventSource the page opens in `window.__streams`, so a test can wait for it to be open
STREAMS_SEEN = """
window.__streams = [];
window.EventSource = class extends window.EventSource {
  constructor(url, init) { super(url, init); window.__streams.push(this); }
};
"""


def test_a_new_run_appears_without_a_reload(page: Any, server: str) -> None:
    page.add_init_script(STREAMS_SEEN)
    page.goto("/")
    page.evaluate("window.__same_page = true")
    # a function, not an expression: Playwright re-evaluates an expression with eval(), which the CSP refuses
    page.wait_for_function("() => window.__streams.some((s) => s.readyState === EventSource.OPEN)")
    run_id = run_of(server, send(server, "shop/ship", {"order_id": "live"}))
    row = page.locator(f'tr[data-id="{run_id}"]')
    expect(row).to_be_visible()
    expect(row).to_contain_text("ship")
    expect(row).to_contain_text("Completed")
    assert page.evaluate("window.__same_page") is True


def test_send_an_event_from_any_page(page: Any, server: str) -> None:
    page.goto("/functions")
    page.locator("summary", has_text="Send event").click()
    page.get_by_label("Event name").fill("shop/ship")
    page.get_by_label("Payload (JSON object)").fill('{"order_id": "from-anywhere"}')
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator(".flash")).to_contain_text("Event 'shop/ship' sent.")
    expect(page.get_by_role("heading", level=1)).to_contain_text("shop/ship")


def test_times_are_shown_in_the_viewers_time_zone(page: Any, server: str) -> None:
    event_id = send(server, "shop/ship", {"order_id": "tz"})
    run_id = run_of(server, event_id, "completed")
    created = httpx.get(f"{server}/api/runs/{run_id}", timeout=10).json()["run"]["created_at"]
    page.goto(f"/runs/{run_id}")
    tokyo = datetime.fromtimestamp(created / 1000, ZoneInfo(VIEWER_TIME_ZONE)).strftime("%Y-%m-%d %H:%M:%S")
    shown = page.locator(".facts div", has_text="Created").locator("time")
    expect(shown).to_have_text(tokyo)
    expect(shown).to_have_attribute("title", re.compile(r" UTC \(shown in Asia/Tokyo\)$"))
    expect(page.locator("#tz-name")).to_have_text(VIEWER_TIME_ZONE)


def test_a_live_update_that_fails_says_so(page: Any, server: str) -> None:
    run_id = run_of(server, send(server, "shop/nap", {"for": "1d"}), "running")

    def refuse_live_updates(route: Any) -> None:
        if route.request.headers.get("x-live"):
            route.fulfill(status=503, body="down for maintenance")
        else:
            route.continue_()

    page.route(f"**/runs/{run_id}", refuse_live_updates)
    page.goto(f"/runs/{run_id}")  # the stream opens, the page asks for what changed: 503
    expect(page.locator("#live-status")).to_contain_text("Live update failed (the server answered 503")
    page.unroute(f"**/runs/{run_id}")
    page.route("**/api/stream**", lambda route: route.abort())
    page.goto(f"/runs/{run_id}")
    expect(page.locator("#live-status")).to_contain_text("Live updates")
