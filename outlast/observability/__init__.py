"""Observers of the engine: Prometheus metrics and OpenTelemetry traces.

Both are optional (`outlast[metrics]`, `outlast[tracing]`); their libraries are imported only when
they are switched on, and an engine nobody observes pays nothing for them.
"""
