"""Sync payloads as each official SDK sends them, read into FunctionConfig (no network)."""

from __future__ import annotations

from typing import Any

import pytest

from outlast.core.config import CronTrigger, EventTrigger
from outlast.errors import FunctionConfigError
from outlast.protocol.sync import SyncError, parse_register

URL = "http://127.0.0.1:9/api/inngest"


def fn(fid: str, **extra: Any) -> dict[str, Any]:
    step: dict[str, Any] = {"id": "step", "name": "step", "runtime": {"type": "http", "url": f"{URL}?fnId={fid}"}}
    if "retries" in extra:
        step["retries"] = {"attempts": extra.pop("retries")}
    return {"id": fid, "name": fid, "triggers": [{"event": "app/go"}], "steps": {"step": step}, **extra}


def python_payload(*functions: dict[str, Any]) -> dict[str, Any]:
    """Python's quirks: `appname`, `deploy_type`, `sdk: py:v...`."""
    return {
        "appname": "shop",
        "deploy_type": "ping",
        "framework": "fast_api",
        "sdk": "py:v0.5.19",
        "url": URL,
        "v": "0.1",
        "functions": list(functions),
    }


def test_python_keys_and_the_retry_count() -> None:
    sync = parse_register(python_payload(fn("shop-a", retries=2), fn("shop-b")))
    assert (sync.app_id, sync.url, sync.sdk, sync.framework) == ("shop", URL, "py:v0.5.19", "fast_api")
    a, b = sync.functions
    assert (a.id, a.slug, a.retries, a.max_attempts) == ("a", "shop-a", 2, 3)  # attempts is the retry count
    assert b.retries == 4 and a.runtime.kind == "http" and a.runtime.url == f"{URL}?fnId=shop-a"
    assert parse_register({**python_payload(fn("shop-a", retries=99))}).functions[0].retries == 20  # capped


def test_js_shape_and_case_insensitive_keys() -> None:
    payload = {
        "appName": "shop",
        "deployType": "ping",
        "sdk": "js:v3.54.2",
        "framework": "express",
        "url": URL,
        "functions": [fn("shop-a")],
    }
    assert parse_register(payload).app_id == "shop"
    assert parse_register({**payload, "APPNAME": "x"} | {"appName": "shop"}).app_id == "shop"
    with pytest.raises(SyncError, match="App ID required"):
        parse_register({**payload, "appName": ""})


def test_identical_payloads_have_one_checksum() -> None:
    one = parse_register(python_payload(fn("shop-a")))
    assert one.checksum == parse_register(python_payload(fn("shop-a"))).checksum
    assert one.checksum != parse_register(python_payload(fn("shop-a", retries=1))).checksum


@pytest.mark.parametrize(
    ("concurrency", "expected"),
    [
        (5, [(5, None, "fn")]),
        ({"limit": 3, "key": "event.data.u"}, [(3, "event.data.u", "fn")]),
        (
            [{"limit": 9, "scope": "env", "key": "event.data.a"}, {"limit": 2}],
            [(2, None, "fn"), (9, "event.data.a", "account")],
        ),
        ({"fn": [{"limit": 4, "scope": "account", "key": "'x'"}]}, [(4, "'x'", "account")]),
        (0, []),
    ],
)
def test_concurrency_in_every_form(concurrency: Any, expected: list[tuple[Any, ...]]) -> None:
    [config] = parse_register(python_payload(fn("shop-a", concurrency=concurrency))).functions
    assert [(c.limit, c.key, c.scope) for c in config.concurrency] == expected


def test_flow_control_options() -> None:
    [config] = parse_register(
        python_payload(
            fn(
                "shop-a",
                throttle={"limit": 0, "period": "1m", "key": "event.data.u"},
                rateLimit={"limit": 10, "period": "1h"},
                debounce={"period": "5s", "timeout": "1m", "key": "event.data.id"},
                priority={"run": "event.data.plan == 'pro' ? 180 : 0"},
                idempotency="event.data.order",
                timeouts={"start": "10s", "finish": "1h"},
                singleton={"key": "event.data.u", "mode": "cancel"},
                cancel=[{"event": "shop/cancelled", "if": "event.data.id == async.data.id", "timeout": "1d"}],
                triggers=[
                    {"event": "app/go", "expression": "event.data.ok == true"},
                    {"cron": "TZ=Europe/Paris 0 9 * * *", "jitter": "30s"},
                ],
            )
        )
    ).functions
    assert config.throttle is not None and (
        config.throttle.limit,
        config.throttle.period_ms,
        config.throttle.burst,
    ) == (1, 60_000, 1)
    assert config.rate_limit is not None and config.rate_limit.period_ms == 3_600_000
    assert config.debounce is not None and (config.debounce.period_ms, config.debounce.timeout_ms) == (5000, 60_000)
    assert config.priority == "event.data.plan == 'pro' ? 180 : 0" and config.idempotency == "event.data.order"
    assert config.timeouts is not None and (config.timeouts.start_ms, config.timeouts.finish_ms) == (10_000, 3_600_000)
    assert config.singleton is not None and config.singleton.mode == "cancel"
    assert config.cancel[0].timeout_ms == 86_400_000 and config.cancel[0].expression == "event.data.id == async.data.id"
    assert config.triggers == (
        EventTrigger(event="app/go", expression="event.data.ok == true"),
        CronTrigger(cron="TZ=Europe/Paris 0 9 * * *", jitter_ms=30_000),
    )


def test_batching_and_on_failure_companions() -> None:
    failure = fn(
        "shop-a-failure",
        retries=0,
        triggers=[{"event": "inngest/function.failed", "expression": "event.data.function_id == 'shop-a'"}],
    )
    a, b, companion = parse_register(
        python_payload(
            fn("shop-a", batchEvents={"maxSize": 100, "timeout": "5s", "key": "event.data.u"}),
            fn("shop-b", batchEvents={"maxSize": 1, "timeout": "5s"}),
            failure,
        )
    ).functions
    assert a.batch is not None and (a.batch.max_size, a.batch.timeout_ms, a.batch.key) == (100, 5000, "event.data.u")
    assert b.batch is None  # a batch of one is no batch
    assert (companion.id, companion.failure_of, companion.retries) == ("a-failure", "a", 0)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"rateLimit": {"limit": 1, "period": "48h"}}, "rateLimit.period"),
        ({"throttle": {"limit": 1, "period": "soon"}}, "throttle.period"),
        ({"batchEvents": {"maxSize": 10, "timeout": "1s"}, "cancel": [{"event": "x"}]}, "batchEvents"),
        ({"debounce": {"period": "100ms"}}, "debounce.period"),
        ({"triggers": [{"cron": "every day"}]}, "triggers.cron"),
        ({"triggers": [{"event": "a", "expression": "event.data.x ==="}]}, "triggers.expression"),
        ({"concurrency": [{"limit": 1}, {"limit": 2}, {"limit": 3}]}, "concurrency"),
        ({"concurrency": {"limit": 1, "scope": "galaxy"}}, "concurrency.scope"),
        ({"singleton": {"mode": "maybe"}}, "singleton.mode"),
        ({"priority": {"run": "event.data.x +"}}, "priority.run"),
        ({"steps": {}}, "steps"),
    ],
)
def test_configs_that_cannot_be_honoured_name_the_function_and_field(extra: dict[str, Any], field: str) -> None:
    with pytest.raises(FunctionConfigError) as caught:
        parse_register(python_payload(fn("shop-ok"), fn("shop-bad", **extra)))
    assert "'shop-bad'" in str(caught.value) and field in str(caught.value), str(caught.value)


def test_a_function_defined_twice_is_refused() -> None:
    with pytest.raises(SyncError, match="defined twice"):
        parse_register(python_payload(fn("shop-a"), fn("shop-a")))
