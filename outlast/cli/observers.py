"""Switching observers on for a process the CLI runs: traces when the standard OTEL_* variables
ask for them, a metrics endpoint when `--metrics-port` is given (the server has `/metrics`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from outlast.errors import OutlastError
from outlast.runtime.engine import Engine

Stop = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsEndpoint:
    host: str
    port: int


async def start_observers(engine: Engine, *, env: Mapping[str, str], metrics: MetricsEndpoint | None = None) -> Stop:
    """Install what is asked for; return what stops it (flushing the spans not yet exported)."""
    stops: list[Callable[[], object]] = []
    from outlast.observability.tracing import tracing_requested

    if tracing_requested(env):
        try:
            from outlast.observability.tracing import install_tracing, provider_from_env

            provider = provider_from_env(env)
        except ImportError:
            raise OutlastError("OTEL_* variables ask for traces, which need: pip install 'outlast[tracing]'") from None
        except ValueError as exc:
            raise OutlastError(str(exc)) from None
        install_tracing(engine, provider)
        stops.append(provider.shutdown)
    if metrics is not None:
        from outlast.observability.endpoint import serve_metrics
        from outlast.observability.metrics import install_metrics

        installed = install_metrics(engine)
        if installed is None:
            raise OutlastError("--metrics-port needs prometheus_client: pip install 'outlast[metrics]'")
        try:
            server = await serve_metrics(installed, host=metrics.host, port=metrics.port)
        except OSError as exc:
            raise OutlastError(f"--metrics-port: cannot listen on {metrics.host}:{metrics.port}: {exc}") from None
        print(f"outlast: metrics on http://{metrics.host}:{server.sockets[0].getsockname()[1]}/metrics", flush=True)
        stops.append(server.close)

    async def stop() -> None:
        for fn in reversed(stops):
            await asyncio.to_thread(fn)

    return stop
