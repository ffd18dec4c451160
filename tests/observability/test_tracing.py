"""OpenTelemetry traces: a run continues its sender's trace, through invoke and send_event, and
from the event API's `traceparent` header (spans caught by an in-memory exporter)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import outlast
from outlast import Context, Event
from outlast.core.models import EventFilter
from outlast.observability.tracing import _trace_id, install_tracing, tracing_requested
from outlast.testing import TestEngine
from tests.http import serving


@pytest.fixture
def exporter() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    provider, spans = TracerProvider(), InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    yield provider, spans
    provider.shutdown()


def family(app: outlast.Outlast) -> None:
    @app.function(id="child", trigger="t/child-direct")
    async def child(ctx: Context) -> int:
        return int(await ctx.step.run("double", lambda: ctx.event.data["n"] * 2))

    @app.function(id="listener", trigger="t/notified")
    async def listener(ctx: Context) -> str:
        return str(await ctx.step.run("hear", lambda: "heard"))

    @app.function(id="parent", trigger="t/start")
    async def parent(ctx: Context) -> int:
        doubled = await ctx.step.invoke("call-child", function=child, data={"n": 21})
        await ctx.step.send_event("notify", Event(name="t/notified"))
        return int(doubled)


def by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, list[ReadableSpan]]:
    found: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        found.setdefault(span.name, []).append(span)
    return found


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_a_run_continues_the_senders_trace_through_invoke_and_send_event(
    app: outlast.Outlast, exporter: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, spans = exporter
    family(app)
    async with TestEngine(app) as t:
        install_tracing(t.engine, provider)
        with provider.get_tracer("user").start_as_current_span("checkout request") as request:
            await t.send(Event(name="t/start"))
        await t.run_until_idle()
        [run] = t.runs(function_id="parent")
        assert run.output == 42
    found = by_name(spans.get_finished_spans())
    trace_id = request.get_span_context().trace_id
    assert {s.context.trace_id for s in spans.get_finished_spans()} == {trace_id}

    [parent_run] = found["run parent"]
    assert parent_id(parent_run) == request.get_span_context().span_id
    first, second = sorted(found["attempt parent"], key=lambda s: s.start_time or 0)  # before and after invoke
    assert parent_id(first) == parent_id(second) == parent_run.context.span_id
    [child_run] = found["run child"]
    assert parent_id(child_run) == first.context.span_id  # invoked by the first attempt
    [child_attempt] = found["attempt child"]
    assert parent_id(child_attempt) == child_run.context.span_id
    [double] = found["step double"]
    assert parent_id(double) == child_attempt.context.span_id
    [listener_run] = found["run listener"]
    assert parent_id(listener_run) == second.context.span_id  # sent by the second attempt
    [notify] = found["step notify"]
    assert parent_id(notify) == second.context.span_id
    assert dict(child_run.attributes or {})["outlast.status"] == "completed"


async def test_a_run_without_a_sender_trace_has_its_own(
    app: outlast.Outlast, exporter: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, spans = exporter

    @app.function(id="solo", trigger="t/solo")
    async def solo(ctx: Context) -> None:
        await ctx.step.sleep("nap", "1m")
        await ctx.step.run("after", lambda: None)

    async with TestEngine(app) as t:
        install_tracing(t.engine, provider)
        await t.send(Event(name="t/solo"))
        await t.run_until_idle()
        t.advance("1m")
        await t.run_until_idle()
        [run] = t.runs()
    found = by_name(spans.get_finished_spans())
    [run_span] = found["run solo"]
    assert run_span.parent is None and run_span.context.trace_id == _trace_id(run.id)
    attempts = found["attempt solo"]
    assert len(attempts) == 2 and {parent_id(a) for a in attempts} == {run_span.context.span_id}
    assert {s.context.trace_id for s in spans.get_finished_spans()} == {_trace_id(run.id)}
    assert dict(attempts[0].attributes or {})["outlast.outcome"] == "suspended"


async def test_the_event_api_takes_a_traceparent_header(
    app: outlast.Outlast, tmp_path: Path, exporter: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, spans = exporter
    family(app)
    header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    async with TestEngine(app, database_url=f"sqlite:///{tmp_path}/t.db") as t:
        install_tracing(t.engine, provider)
        async with serving(t.engine) as url, httpx.AsyncClient() as client:
            reply = await client.post(
                f"{url}/e/any-key", json={"name": "t/child-direct", "data": {"n": 1}}, headers={"traceparent": header}
            )
            assert reply.status_code == 200
        [event] = await t.store.get_events(reply.json()["ids"])
        assert event.trace == {"traceparent": header}
        await t.run_until_idle()
    [run_span] = by_name(spans.get_finished_spans())["run child"]
    assert run_span.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert parent_id(run_span) == 0xB7AD6B7169203331


async def test_tracing_is_off_by_default(app: outlast.Outlast) -> None:
    family(app)
    async with TestEngine(app) as t:
        assert t.engine.bus.trace_for is None and not t.engine.bus
        await t.send(Event(name="t/start"))
        await t.run_until_idle()
        events = await t.store.list_events(EventFilter())
    assert events and all(e.trace is None for e in events)


@pytest.mark.parametrize(
    ("env", "wanted"),
    [
        ({}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"}, False),
    ],
)
def test_the_standard_variables_switch_tracing_on(env: dict[str, Any], wanted: bool) -> None:
    assert tracing_requested(env) is wanted


def test_app_send_carries_the_callers_span(exporter: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, _spans = exporter
    app = outlast.Outlast("sender", database_url="memory://")
    try:
        with provider.get_tracer("user").start_as_current_span("request") as request:
            ids = app.send(Event(name="t/anything"))  # the blocking client: its loop runs in another thread
        engine = app._call(app.engine_async)
        [event] = app._call(lambda: engine.store.get_events(ids))
    finally:
        app.close()
    context = request.get_span_context()
    assert event.trace is not None
    assert event.trace["traceparent"].startswith(f"00-{context.trace_id:032x}-{context.span_id:016x}-")
