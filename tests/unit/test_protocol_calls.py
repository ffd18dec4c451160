"""Call requests and replies, and the canonical JSON they are signed over (no network)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from outlast.core.models import EventRecord, MemoEntry
from outlast.core.ops import (
    FunctionError,
    InvokeFunction,
    RunComplete,
    Sleep,
    StepAttemptFailed,
    StepRun,
    WaitForEvent,
    WaitForSignal,
)
from outlast.protocol.jcs import canonical
from outlast.protocol.reply import Ops, parse_reply
from outlast.protocol.request import CallContext, call_body, memo_value

NOW = 1_700_000_000_000
SDK = {"x-inngest-sdk": "inngest-py:v0.5.19"}


def test_jcs_matches_rfc_8785() -> None:
    assert canonical({"b": [1, 2.0, 1e21, 1e-7, 0.5, None], "a": "é\n", "\ue000": 1, "😀": 2}) == (
        '{"a":"é\\n","b":[1,2,1e+21,1e-7,0.5,null],"😀":2,"\ue000":1}'.encode()
    )
    with pytest.raises(ValueError):
        canonical(float("nan"))


def entry(key: str, kind: str, status: str = "completed", output: Any = None, error: Any = None) -> MemoEntry:
    return MemoEntry(key=key, step_id=key, kind=kind, status=status, output=output, error=error)


def test_memo_values_take_each_sdk_shape() -> None:
    assert memo_value(entry("a", "run", output={"x": 1})) == {"data": {"x": 1}}
    assert memo_value(entry("a", "run", output=None)) == {"data": None}
    assert memo_value(entry("a", "run", "failed", error={"name": "E", "message": "m", "code": 1})) == {
        "error": {"name": "E", "message": "m"}
    }
    assert memo_value(entry("s", "sleep")) is None
    event = {"id": "e", "name": "n", "data": {}, "user": {}, "ts": 1}
    assert memo_value(entry("w", "wait_for_event", output=event)) == event
    assert memo_value(entry("w", "wait_for_event")) is None
    assert memo_value(entry("i", "invoke", output=3)) == {"data": 3}


def test_a_call_body_has_what_strict_sdks_require() -> None:
    event = EventRecord(id="01H", name="app/go", data={"n": 1}, user={}, ts=NOW)
    memo = [entry("k1", "run", output=1), entry("k2", "sleep", "sleeping")]
    ctx = CallContext(run_id="R", function_slug="app-fn", attempt=2, max_attempts=5, stack=["k1"])
    body = call_body(events=[event], memo=memo, ctx=ctx)
    parsed = json.loads(body)
    assert body == canonical(parsed)  # canonical bytes: what the signature covers
    assert parsed["event"] == {"id": "01H", "name": "app/go", "data": {"n": 1}, "user": {}, "ts": NOW}
    assert parsed["steps"] == {"k1": {"data": 1}} and parsed["use_api"] is False
    assert parsed["ctx"]["attempt"] == 2 and parsed["ctx"]["max_attempts"] == 5 and parsed["ctx"]["run_id"] == "R"
    assert parsed["ctx"]["stack"] == {"stack": ["k1"], "current": 1}
    assert parsed["ctx"]["disable_immediate_execution"] is False and isinstance(parsed["event"]["ts"], int)

    small = json.loads(call_body(events=[event], memo=memo, ctx=ctx, max_inline_bytes=100))
    assert small["use_api"] is True and small["ctx"]["use_api"] is True
    assert small["steps"] == {} and small["events"] == [] and small["event"]["name"] == "app/go"


def test_200_is_the_result_and_needs_the_sdk_header() -> None:
    assert parse_reply(200, SDK, b'{"ok":1}', now_ms=NOW) == RunComplete(output={"ok": 1})
    reply = parse_reply(200, {}, b'"fine"', now_ms=NOW)
    assert isinstance(reply, FunctionError) and reply.error.name == "NotAnSDKResponseError"
    assert not reply.error.no_retry


def test_206_opcodes_become_ops() -> None:
    body = json.dumps(
        [
            {"op": "StepRun", "id": "k1", "displayName": "one", "data": 5},
            {
                "op": "steprun",
                "id": "k2",
                "displayName": "send",
                "data": {"ids": []},
                "opts": {"type": "step.sendEvent"},
            },
            {"op": "Sleep", "id": "k3", "name": "2023-01-01T00:00:00.000Z", "displayName": "nap"},
            {"op": "Sleep", "id": "k4", "name": "1h30m", "userland": {"id": "nap2"}},
            {"op": "WaitForEvent", "id": "k5", "name": "app/ok", "opts": {"timeout": "1d", "if": "async.data.x == 1"}},
            {"op": "WaitForEvent", "id": "k6", "name": "app/ok", "opts": {"timeout": ""}},
            {
                "op": "InvokeFunction",
                "id": "k7",
                "opts": {"function_id": "app-child", "payload": {"data": {"a": 1}}, "timeout": "10s"},
            },
            {"op": "StepPlanned", "id": "k8", "displayName": "later"},
        ]
    ).encode()
    reply = parse_reply(206, SDK, body, now_ms=NOW)
    assert isinstance(reply, Ops) and reply.count == 8
    run, send, past_sleep, sleep, wait, expired, invoke = reply.steps
    assert run == StepRun(key="k1", step_id="one", output=5) and send.kind == "send_event"  # type: ignore[union-attr]
    assert past_sleep == Sleep(key="k3", step_id="nap", until_ms=NOW)  # a past date: now
    assert sleep == Sleep(key="k4", step_id="nap2", until_ms=NOW + 5_400_000)
    assert wait == WaitForEvent(
        key="k5", step_id="k5", event="app/ok", expression="async.data.x == 1", expires_at=NOW + 86_400_000
    )
    assert isinstance(expired, WaitForEvent) and expired.expires_at == NOW  # an empty timeout expires at once
    assert invoke == InvokeFunction(
        key="k7", step_id="k7", function_slug="app-child", data={"a": 1}, expires_at=NOW + 10_000
    )
    assert [p.key for p in reply.planned] == ["k8"]


def test_an_opcode_outlast_does_not_support_fails_the_run_at_once() -> None:
    for op, feature in (("Teleport", "the 'Teleport' opcode"),):
        body = json.dumps(
            [{"op": "StepRun", "id": "k1", "displayName": "one", "data": 5}, {"op": op, "id": "k2", "displayName": "x"}]
        ).encode()
        reply = parse_reply(206, SDK, body, now_ms=NOW, url="http://app")
        assert isinstance(reply, FunctionError), reply
        assert reply.error.no_retry and reply.error.name == "UnsupportedOpcodeError"
        assert f"Outlast does not support {feature}" in reply.error.message and "step 'x'" in reply.error.message


def test_step_errors_carry_the_retry_headers() -> None:
    body = b'[{"op":"StepError","id":"k","displayName":"s","error":{"name":"ValueError","message":"no"}}]'
    reply = parse_reply(206, {**SDK, "x-inngest-no-retry": "true"}, body, now_ms=NOW)
    assert isinstance(reply, Ops) and isinstance(reply.steps[0], StepAttemptFailed) and reply.steps[0].error.no_retry
    reply = parse_reply(206, {**SDK, "retry-after": "2024-01-01T00:00:00.000Z"}, body, now_ms=NOW)
    assert isinstance(reply, Ops) and reply.steps[0].error.retry_at == 1_704_067_200_000  # type: ignore[union-attr]
    reply = parse_reply(206, {**SDK, "retry-after": "30"}, body, now_ms=NOW)
    assert isinstance(reply, Ops) and reply.steps[0].error.retry_at == NOW + 30_000  # type: ignore[union-attr]


def test_other_statuses_are_function_errors() -> None:
    python_error = b'{"code":"unknown","message":"boom","name":"NonRetriableError","stack":"tb"}'
    reply = parse_reply(500, {**SDK, "x-inngest-no-retry": "true"}, python_error, now_ms=NOW)
    assert isinstance(reply, FunctionError)
    assert (reply.error.name, reply.error.message, reply.error.stack, reply.error.no_retry) == (
        "NonRetriableError",
        "boom",
        "tb",
        True,
    )
    reply = parse_reply(400, {**SDK, "x-inngest-no-retry": "false"}, b'{"name":"Error","message":"m"}', now_ms=NOW)
    assert isinstance(reply, FunctionError) and not reply.error.no_retry
    reply = parse_reply(502, {}, b"<html>Bad gateway</html>", now_ms=NOW, url="http://app")
    assert isinstance(reply, FunctionError) and reply.error.name == "FatalUpstreamError"
    assert "http://app answered 502" in reply.error.message


def test_201_streams_unwrap_to_the_real_reply() -> None:
    inner = json.dumps(
        {
            "status": 206,
            "headers": {"X-Inngest-No-Retry": "false"},
            "body": json.dumps([{"op": "StepRun", "id": "k", "data": 1}]),
        }
    )
    reply = parse_reply(201, SDK, b"   " + inner.encode(), now_ms=NOW)
    assert isinstance(reply, Ops) and reply.steps == [StepRun(key="k", step_id="k", output=1)]
    final = json.dumps({"status": 200, "headers": {}, "body": {"done": True}}).encode()
    assert parse_reply(201, SDK, final, now_ms=NOW) == RunComplete(output={"done": True})
    garbage = parse_reply(201, SDK, b"  not json", now_ms=NOW)
    assert isinstance(garbage, FunctionError) and garbage.error.name == "InvalidSDKResponseError"


def test_garbage_206_is_an_error_not_a_crash() -> None:
    for body in (b"{not json", b'[{"no_op": 1}]', b"[1, 2]"):
        reply = parse_reply(206, SDK, body, now_ms=NOW)
        assert isinstance(reply, FunctionError) and reply.error.name == "InvalidSDKResponseError"
    complete = parse_reply(206, SDK, b'[{"op":"RunComplete","id":"c","data":7}]', now_ms=NOW)
    assert isinstance(complete, Ops) and complete.complete == RunComplete(output=7)


def test_wait_for_signal_is_a_signal_wait() -> None:
    body = json.dumps(
        [
            {
                "op": "WaitForSignal",
                "id": "k1",
                "name": "approve:1",
                "displayName": "approval",
                "opts": {"signal": "approve:1", "timeout": "1h", "conflict": "replace"},
            },
            {"op": "WaitForSignal", "id": "k2", "name": "s", "opts": {"signal": "s", "timeout": "10s"}},
        ]
    ).encode()
    reply = parse_reply(206, SDK, body, now_ms=NOW)
    assert isinstance(reply, Ops)
    assert reply.steps == [
        WaitForSignal(
            key="k1", step_id="approval", signal="approve:1", expires_at=NOW + 3_600_000, on_conflict="replace"
        ),
        WaitForSignal(key="k2", step_id="k2", signal="s", expires_at=NOW + 10_000, on_conflict="fail"),
    ]
