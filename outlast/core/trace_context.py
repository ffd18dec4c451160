"""The caller's W3C trace context, taken from OpenTelemetry only when the process already uses it.

Nothing is imported and nothing is paid when OpenTelemetry is not loaded: a process that does not
trace pays one dictionary lookup per `send`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from outlast.core.models import EventRecord

TRACE_HEADERS = ("traceparent", "tracestate")


def current_trace() -> dict[str, str] | None:
    """`traceparent` (and `tracestate`) of the active OpenTelemetry span, or None when there is none."""
    api = sys.modules.get("opentelemetry.trace")
    if api is None:
        return None
    if not api.get_current_span().get_span_context().is_valid:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return {k: v for k in TRACE_HEADERS if (v := carrier.get(k))} or None


def trace_headers(headers: object) -> dict[str, str] | None:
    """The W3C trace context in request headers (a mapping with `get`), or None."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    found = {k: v for k in TRACE_HEADERS if isinstance(v := get(k), str) and v}
    return found if "traceparent" in found else None


def carry_trace(events: Sequence[EventRecord], trace: dict[str, str] | None) -> None:
    """Events that carry no trace context of their own carry `trace`."""
    if trace:
        for event in events:
            if event.trace is None:
                event.trace = trace
