"""The endpoint driver: a Durable Endpoint's run, gone on in the background, resumed through
the endpoint itself (`runtime.endpoint_runs` says when that happens).

As Inngest re-enters a sync function (`pkg/execution/driver/httpv2`), each call repeats the
request the run started from, to the same URL: its method, its query string, its body and
content type, plus `X-Run-ID`, `X-Inngest-Signature` (empty without a signing key: the SDK only
needs the header to tell a resume from a new request), `X-Inngest-Step-ID` for a targeted call
and `X-Inngest-Force-Step-Plan` while a parallel group is open. The SDK then loads the run's
memo from `GET /v0/runs/{run}/actions` and answers as a served app does, so the conversation
is the HTTP driver's (`HttpAttempt`); only the request differs.
"""

from __future__ import annotations

import httpx

from outlast.core.ops import FunctionError, Outcome
from outlast.core.retry import ErrorInfo
from outlast.protocol.endpoint import HTTP_REQUEST_EVENT, EndpointBodyError, parse_request
from outlast.protocol.reply import Reply
from outlast.protocol.request import DISCOVERY, REQUEST_VERSION
from outlast.protocol.signing import SIGNATURE_HEADER, sign
from outlast.runtime.drivers.base import AttemptHost
from outlast.runtime.drivers.http import USER_AGENT, HttpAttempt, HttpDriver


class EndpointDriver:
    """Runs endpoint functions over `http`'s connection pools and signing key."""

    def __init__(self, http: HttpDriver) -> None:
        self.http = http

    async def execute(self, host: AttemptHost) -> Outcome:
        trigger = host.run.events[0].to_dict() if host.run.events else None
        try:
            if trigger is None or trigger.get("name") != HTTP_REQUEST_EVENT:
                raise EndpointBodyError(f"the run was not started by an {HTTP_REQUEST_EVENT!r} event")
            request = parse_request(trigger)
        except EndpointBodyError as exc:
            error = ErrorInfo(name="EndpointRequestError", no_retry=True, message=f"cannot resume the endpoint: {exc}")
            return FunctionError(error=error)
        return await EndpointAttempt(self.http, host, request.url, trigger=trigger).run()


class EndpointAttempt(HttpAttempt):
    def __init__(self, driver: HttpDriver, host: AttemptHost, url: str, *, trigger: dict[str, object]) -> None:
        super().__init__(driver, host, url)
        self.request = parse_request(trigger)

    async def _request(self, step: str, *, attempt: int) -> Reply:
        await self.host.refresh()
        request, driver = self.request, self.driver
        body = request.body.encode()
        headers = {
            "Content-Type": request.content_type or "application/json",
            "X-Run-ID": self.host.run.run_id,
            "X-Inngest-Req-Version": str(REQUEST_VERSION),
            SIGNATURE_HEADER: sign(body, driver.signing_key, int(driver.wall_clock())) if driver.signing_key else "",
            "User-Agent": USER_AGENT,
        }
        if step != DISCOVERY:
            headers["X-Inngest-Step-ID"] = step
        if self.force_plan:
            headers["X-Inngest-Force-Step-Plan"] = "true"
        target = httpx.URL(self.url, query=request.query.encode()) if request.query else httpx.URL(self.url)
        return await driver.exchange(request.method, target, body, headers, url=self.url, now_ms=self.host.now_ms())


__all__ = ["EndpointDriver"]
