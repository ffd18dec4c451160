"""What the Connect routes of one server share (`Services.connect`): the Connect driver its
workers run Connect apps through, the session tokens, and counts for metrics.

The gateway is served by the same Starlette app as everything else, on the main port
(`ws://<host>:<port>/v0/connect`) and, under `outlast dev`/`start`, on the gateway port Inngest
uses by default too (8289, `--connect-port`; `outlast.server.gateway_port`), both on `--host`.
`/v0/connect/start` names the gateway port when it listens (else the main port), on the host
name the worker reached the server by: a worker needs only the address it already has
(`INNGEST_BASE_URL`). Behind a TLS-terminating proxy (`https`), the URL keeps the proxy's own
host and port, the only ones a worker outside can reach.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from outlast.core.models import WorkerInfo
from outlast.observability.metrics import Metrics
from outlast.protocol import connect as wire
from outlast.runtime.drivers.connect import ConnectDriver, Connection
from outlast.runtime.engine import Engine
from outlast.server.mode import ServerConfig


@dataclass(slots=True, kw_only=True)
class Gateway:
    #: None when the `connect` extra is not installed (`/v0/connect/start` answers 501)
    driver: ConnectDriver | None
    sessions: wire.Sessions
    #: connections accepted, closed for bad input, messages by kind: for metrics
    counts: Counter[str] = field(default_factory=Counter)
    #: the gateway's own port, when the server listens on one besides its main port
    port: int | None = None

    @classmethod
    def build(cls, engine: Engine, config: ServerConfig, metrics: Metrics | None = None) -> Gateway:
        """Install the Connect driver in `engine` (its workers then run Connect apps' functions).

        Session tokens are signed with the signing key in production, so that any server process
        sharing the database and the key accepts a token another one issued; in development
        there is no key and a per-process secret serves (any worker is admitted anyway)."""
        secret = config.signing_keys[0].encode() if config.signing_keys else os.urandom(32)
        driver: ConnectDriver | None = None
        if wire.available():
            existing = engine.drivers.get("connect")
            if isinstance(existing, ConnectDriver):
                driver = existing
            else:
                driver = ConnectDriver(request_timeout_s=engine.settings.http_request_timeout_ms / 1000)
                driver.listeners.append(engine.wake)  # a new connection may have runs waiting for it
                engine.drivers["connect"] = driver
        gateway = cls(driver=driver, sessions=wire.Sessions(secret))
        if metrics is not None and driver is not None:
            metrics.registry.register(_Collector(gateway, driver))
        return gateway

    def live(self, workers: list[WorkerInfo]) -> list[WorkerInfo]:
        """`workers` as stored, with the requests in flight on this process's own connections
        as they are this moment (the store has them as of the last write, a fraction of a
        second behind: `Session.report_in_flight`)."""
        if self.driver is None:
            return workers
        now = {
            worker_id: len(c.in_flight)
            for c in self.driver.connections.values()
            for worker_id in worker_ids(c).values()
        }
        return [dataclasses.replace(w, in_flight=now[w.id]) if w.id in now else w for w in workers]


def worker_ids(connection: Connection) -> dict[str, str]:
    """Each app of a connection and the worker it is listed as (the connection id; with several
    apps, one worker per app: `<connection id>/<app>`)."""
    apps = sorted(connection.app_ids)
    return {app: connection.id if len(apps) == 1 else f"{connection.id}/{app}" for app in apps}


class _Collector:
    """Connect's metric families, made from the gateway's counts when scraped."""

    def __init__(self, gateway: Gateway, driver: ConnectDriver) -> None:
        self.gateway, self.driver = gateway, driver

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        live = GaugeMetricFamily(
            "outlast_connect_connections", "Connect workers connected now, by app.", labels=["app"]
        )
        in_flight = GaugeMetricFamily(
            "outlast_connect_requests_in_flight", "Requests sent to Connect workers and not yet answered."
        )
        by_app = Counter(app for c in self.driver.connections.values() for app in c.app_ids)
        for app, count in sorted(by_app.items()):
            live.add_metric([app], count)
        in_flight.add_metric([], sum(len(c.in_flight) for c in self.driver.connections.values()))
        accepted = CounterMetricFamily("outlast_connect_connections_accepted", "Connect handshakes completed.")
        accepted.add_metric([], self.gateway.counts["connections"])
        refused = CounterMetricFamily(
            "outlast_connect_connections_closed_bad_input", "Connections closed for bad input, a wrong key or silence."
        )
        refused.add_metric([], self.gateway.counts["closed_bad_input"])
        messages = CounterMetricFamily(
            "outlast_connect_messages", "Connect messages, by direction and kind.", labels=["direction", "kind"]
        )
        for key, count in sorted(self.gateway.counts.items()):
            direction, _, kind = key.partition(":")
            if kind:
                messages.add_metric([direction, kind], count)
        yield from (live, in_flight, accepted, refused, messages)
