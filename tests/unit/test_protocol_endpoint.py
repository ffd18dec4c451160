"""Durable Endpoints' checkpoint bodies (inngest@4): what the app and function of a request are,
what is refused (naming the field), and the HTTP response a run ends with."""

from __future__ import annotations

from typing import Any

import pytest

from outlast.core.ops import RunComplete, StepRun
from outlast.protocol.endpoint import EndpointBodyError, http_result, parse_new_run, parse_steps

RUN = "01JAAAAAAAAAAAAAAAAAAAAAAA"


def event(**data: Any) -> dict[str, Any]:
    base = {"domain": "http://127.0.0.1:3000", "method": "GET", "path": "/api/hello", "fn": ""}
    return {"name": "inngest/http.request", "data": {**base, **data}}


def test_a_request_names_its_app_and_function_as_inngest_does() -> None:
    new = parse_new_run({"run_id": RUN.lower(), "event": event(query_params="a=1")}, now_ms=0)
    request = new.request
    assert (new.run_id, new.retries, new.ops) == (RUN, 4, [])
    assert (request.app_id, request.function_id, request.function_name) == (
        "127-0-0-1-3000",
        "get-api-hello",
        "GET /api/hello",
    )
    assert (request.url, request.query) == ("http://127.0.0.1:3000/api/hello", "a=1")
    named = parse_new_run({"run_id": RUN, "event": event(fn="My Endpoint"), "retries": 0}, now_ms=0)
    assert (named.request.function_id, named.request.function_name, named.retries) == ("my-endpoint", "My Endpoint", 0)


def test_steps_are_read_as_a_206_s_opcodes() -> None:
    steps = [{"op": "StepRun", "id": "k", "name": "a", "data": 1}, {"op": "RunComplete", "data": 2}]
    ops = parse_steps({"run_id": RUN, "steps": steps}, run_id=RUN, now_ms=0)
    assert ops == [StepRun(key="k", step_id="a", output=1), RunComplete(output=2)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("nope", "expected a JSON object"),
        ({"event": event()}, "run_id"),
        ({"run_id": "123", "event": event()}, "run_id"),
        ({"run_id": RUN, "event": {"name": "app/other", "data": {}}}, "event"),
        ({"run_id": RUN, "event": {"name": "inngest/http.request", "data": []}}, "event.data"),
        ({"run_id": RUN, "event": event(domain="ftp://x")}, "event.data.domain"),
        ({"run_id": RUN, "event": event(path="relative")}, "event.data.path"),
        ({"run_id": RUN, "event": event(method=3)}, "event.data.method"),
        ({"run_id": RUN, "event": event(), "retries": 99}, "retries"),
        ({"run_id": RUN, "event": event(), "retries": True}, "retries"),
        ({"run_id": RUN, "event": event(), "steps": [{"id": "x"}]}, "steps"),
        ({"run_id": RUN, "event": event(), "steps": [{"op": "AIGateway", "id": "x"}]}, "not supported"),
    ],
)
def test_bad_bodies_name_the_field(body: Any, field: str) -> None:
    with pytest.raises(EndpointBodyError, match=field):
        parse_new_run(body, now_ms=0)


def test_steps_for_another_run_are_refused() -> None:
    with pytest.raises(EndpointBodyError, match="run_id"):
        parse_steps({"run_id": "01JBBBBBBBBBBBBBBBBBBBBBBB", "steps": []}, run_id=RUN, now_ms=0)


def test_the_response_a_run_ends_with() -> None:
    sdk = {"status": 201, "headers": {"content-type": "application/json"}, "body": "{}", "version": 2}
    assert http_result(sdk) == (201, {"content-type": "application/json"}, "{}")
    assert http_result({"status_code": 404, "body": "gone"}) == (404, {}, "gone")
    assert http_result({"status": 999}) is None
    assert http_result("plain output") is None
