"""OpenTelemetry traces (`pip install 'outlast[tracing]'`), fed by the engine's observations.

The shape of a run's trace:

    run <function>                  one span per run, from its creation to its end
      attempt <function>            one span per attempt (a run resumes in any process, any day)
        step <id>                   one span per step attempt (and per sleep, wait or invoke stored)

A run continues the trace of the event that started it (the sender's `traceparent`, kept with the
event). Events an attempt causes (`step.send_event`, the `inngest/function.invoked` of
`step.invoke`) carry the attempt's context, so the runs they start are children of that attempt.
Attempts of one run may run in different processes, so the run span's ids are derived from the
run id: the trace id (when the trigger carried none) from the run's ULID, the span id from a hash
of it. Every attempt names it as parent; it is itself recorded when the run ends in a worker (a
run cancelled from outside has attempt spans but no run span).

Off unless installed: `outlast dev/start/worker` install it when the standard variables ask for
traces (`OTEL_TRACES_EXPORTER`, `OTEL_EXPORTER_OTLP_ENDPOINT`, ...; see `tracing_requested`).
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from outlast.core.observe import AttemptEnded, AttemptStarted, Observation, StepEnded

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, SpanContext

    from outlast.runtime.engine import Engine

log = logging.getLogger("outlast.tracing")
_ENDED = ("completed", "failed")
#: the span ids the next span gets (the run span, whose ids are derived from its run id)
_fixed_ids: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar("outlast_span_ids", default=None)


def tracing_requested(env: Mapping[str, str]) -> bool:
    """Whether the standard OpenTelemetry variables ask for traces (off by default)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def provider_from_env(env: Mapping[str, str]) -> TracerProvider:
    """A tracer provider configured by the standard variables: exporters from OTEL_TRACES_EXPORTER
    (`otlp`, the default, over HTTP/protobuf; `console`), the OTLP endpoint, headers and
    timeouts from OTEL_EXPORTER_OTLP_*, the sampler from OTEL_TRACES_SAMPLER, the resource from
    OTEL_SERVICE_NAME (default "outlast") and OTEL_RESOURCE_ATTRIBUTES, batching from OTEL_BSP_*."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    attributes = {} if env.get("OTEL_SERVICE_NAME") else {"service.name": "outlast"}
    provider = TracerProvider(resource=Resource.create(attributes))
    for name in [n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if n.strip()]:
        exporter: SpanExporter
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        elif name == "console":
            exporter = ConsoleSpanExporter()
        else:
            raise ValueError(f"OTEL_TRACES_EXPORTER: unsupported exporter {name!r} (use otlp or console)")
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def install_tracing(engine: Engine, provider: Any = None) -> Tracing:
    """Trace the engine's runs through `provider` (default: the global tracer provider)."""
    from opentelemetry import trace

    tracing = Tracing(provider or trace.get_tracer_provider())
    engine.bus.subscribe(tracing.observe)
    engine.bus.trace_for = tracing.trace_for
    return tracing


@dataclass(slots=True)
class _Attempt:
    span: Span
    run_parent: Context  # the sender's context (or none): the run span's parent
    run_context: SpanContext  # the run span's, which this attempt's span is a child of
    created_at: int
    token: object = None


class Tracing:
    def __init__(self, provider: Any) -> None:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.tracer = provider.get_tracer("outlast")
        self.propagator = TraceContextTextMapPropagator()
        inner = getattr(self.tracer, "id_generator", None)
        #: whether run spans can be given their derived ids (an SDK tracer)
        self.run_spans = inner is not None
        if inner is not None:
            self.tracer.id_generator = _RunIds(inner)
        self.attempts: dict[str, _Attempt] = {}

    # -- the bus subscriber --------------------------------------------------------------------

    def observe(self, o: Observation) -> None:
        if isinstance(o, StepEnded):
            self._step(o)
        elif isinstance(o, AttemptStarted):
            self._start(o)
        elif isinstance(o, AttemptEnded):
            self._end(o)

    def trace_for(self, run_id: str) -> dict[str, str] | None:
        """The W3C context of the run's current attempt, for the events it causes."""
        from opentelemetry import trace

        attempt = self.attempts.get(run_id)
        if attempt is None:
            return None
        carrier: dict[str, str] = {}
        self.propagator.inject(carrier, context=trace.set_span_in_context(attempt.span))
        return carrier or None

    def _start(self, o: AttemptStarted) -> None:
        from opentelemetry import context, trace

        parent = self.propagator.extract(o.trace) if o.trace else context.Context()
        sender = trace.get_current_span(parent).get_span_context()
        trace_id = sender.trace_id if sender.is_valid else _trace_id(o.run_id)
        run_context = trace.SpanContext(
            trace_id=trace_id,
            span_id=_span_id(o.run_id),
            is_remote=True,
            trace_flags=sender.trace_flags if sender.is_valid else trace.TraceFlags(1),
            trace_state=sender.trace_state if sender.is_valid else None,
        )
        span = self.tracer.start_span(
            f"attempt {o.function_id}",
            context=trace.set_span_in_context(trace.NonRecordingSpan(run_context)),
            attributes={
                "outlast.run_id": o.run_id,
                "outlast.app_id": o.app_id,
                "outlast.function_id": o.function_id,
                "outlast.attempt": o.attempt,
            },
        )
        attempt = _Attempt(span, parent, run_context, o.created_at)
        # the attempt's task runs the user's code: their own spans nest under the attempt
        attempt.token = context.attach(trace.set_span_in_context(span))
        self.attempts[o.run_id] = attempt

    def _step(self, o: StepEnded) -> None:
        from opentelemetry import trace

        attempt = self.attempts.get(o.run_id)
        if attempt is None:
            return
        end = time.time_ns()
        span = self.tracer.start_span(
            f"step {o.step_id}",
            context=trace.set_span_in_context(attempt.span),
            start_time=end - o.duration_ms * 10**6,
            attributes={
                "outlast.step_id": o.step_id,
                "outlast.step_kind": o.kind,
                "outlast.step_status": o.status,
                "outlast.step_attempt": o.attempt,
            },
        )
        _set_error(span, o.error)
        span.end(end_time=end)

    def _end(self, o: AttemptEnded) -> None:
        from opentelemetry import context

        attempt = self.attempts.pop(o.run_id, None)
        if attempt is None:
            return
        attempt.span.set_attribute("outlast.outcome", o.outcome)
        _set_error(attempt.span, o.error)
        attempt.span.end()
        context.detach(attempt.token)  # type: ignore[arg-type]
        if o.outcome in _ENDED and self.run_spans:
            self._run_span(o, attempt)

    def _run_span(self, o: AttemptEnded, attempt: _Attempt) -> None:
        ids = _fixed_ids.set((attempt.run_context.trace_id, attempt.run_context.span_id))
        try:
            from opentelemetry.trace import SpanKind

            span = self.tracer.start_span(
                f"run {o.function_id}",
                context=attempt.run_parent,
                kind=SpanKind.CONSUMER,
                start_time=attempt.created_at * 10**6,
                attributes={
                    "outlast.run_id": o.run_id,
                    "outlast.app_id": o.app_id,
                    "outlast.function_id": o.function_id,
                    "outlast.status": o.outcome,
                },
            )
        finally:
            _fixed_ids.reset(ids)
        _set_error(span, o.error)
        span.end()


class _RunIds:
    """The tracer's id generator, except for the run span, whose ids are fixed in advance."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def generate_span_id(self) -> int:
        fixed = _fixed_ids.get()
        return fixed[1] if fixed else int(self.inner.generate_span_id())

    def generate_trace_id(self) -> int:
        fixed = _fixed_ids.get()
        return fixed[0] if fixed else int(self.inner.generate_trace_id())

    def is_trace_id_random(self) -> bool:
        return _fixed_ids.get() is None and bool(getattr(self.inner, "is_trace_id_random", lambda: True)())


def _trace_id(run_id: str) -> int:
    """A run's own trace id: its ULID's 128 bits (time and randomness), the same in every process."""
    from outlast.core.ids import _ALPHABET

    value = 0
    for char in run_id:
        value = value * 32 + _ALPHABET.index(char)
    return value & ((1 << 128) - 1) or 1


def _span_id(run_id: str) -> int:
    return int.from_bytes(hashlib.sha1(run_id.encode()).digest()[:8], "big") or 1


def _set_error(span: Span, error: dict[str, Any] | None) -> None:
    if error:
        from opentelemetry.trace import Status, StatusCode

        span.set_status(Status(StatusCode.ERROR, f"{error.get('name', 'Error')}: {error.get('message', '')}"))
