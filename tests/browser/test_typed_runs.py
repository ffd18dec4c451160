"""A typed function's run failed by an event that does not validate shows, on its run page, the
`EventValidationError` with the field and the event's id (examples/typed_orders.py under
`outlast dev`, the event sent untyped through the JSON API as another app would)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import dev_server
from tests.browser.test_dashboard import run_of, send


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from dev_server(tmp_path_factory.mktemp("typed"), "examples/typed_orders.py")


def test_a_run_failed_by_an_invalid_event_shows_the_field_and_the_event_id(page: Any, server: str) -> None:
    event_id = send(server, "shop/order.created", {"user_id": "u1", "total": 5})  # no order_id
    run_id = run_of(server, event_id, "failed")
    page.goto(f"/runs/{run_id}")
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_contain_text(re.compile("process-order|await-payment"))
    expect(heading).to_contain_text("Failed")
    error = page.locator(".result")
    expect(error).to_contain_text("EventValidationError")
    expect(error).to_contain_text(f"event 'shop/order.created' {event_id}")
    expect(error).to_contain_text("data.order_id: Field required")
    expect(error).to_contain_text("OrderCreated")
    trigger = page.get_by_role("region", name="Trigger event")
    expect(trigger).to_contain_text(event_id)
    trigger.get_by_role("link", name="shop/order.created").click()
    expect(page).to_have_url(re.compile(f"/events/{event_id}$"))
