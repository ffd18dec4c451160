"""The HTTP driver: a served app's functions, called over Inngest's protocol.

One attempt of a run is a conversation with the app (`outlast.protocol` has the formats):

1. Steps due to retry are called first, each targeted (`stepId=<hashed id>`) with its own
   attempt number, concurrently.
2. A discovery call (`stepId=step`) sends the memo. The SDK answers with the function's result
   (200), an error (non-2xx), or opcodes (206): a step it ran at once (StepRun, StepError,
   StepFailed), steps it found (StepPlanned), or async steps (Sleep, WaitForEvent,
   InvokeFunction).
3. Step results are committed as they arrive (`host.apply`), so a committed step's body is
   never called again. Planned steps are called concurrently, each targeted; while such a
   parallel group is open (a response with more than one opcode), later calls carry
   `disable_immediate_execution`. Once the group has resolved, discovery again (without the
   flag), until the function returns, fails, or waits (a sleep, a wait, an invoke or a step
   retry pending: the attempt suspends). An SDK's own error answer to a targeted call is the
   function's error, as on Inngest.

Transport failures (connection refused, a hung app past the request timeout, a connection
closed mid-body, garbage, a 2xx without `X-Inngest-SDK`) are function errors on a discovery
call and step errors on a targeted call: the executor's retry policy decides what comes next.
Nothing here writes to the store except through `host.apply`.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import ssl
import time
from collections.abc import Callable, Sequence

import httpx

from outlast.core.defers import is_defer_op
from outlast.core.models import RETRYING, MemoEntry
from outlast.core.ops import (
    FunctionError,
    Outcome,
    RunComplete,
    StepAttemptFailed,
    StepOp,
    StepPlanned,
    Suspended,
)
from outlast.core.retry import ErrorInfo
from outlast.protocol.checkpoint import dispatch_id
from outlast.protocol.reply import MAX_RESPONSE_BYTES, Ops, Reply, is_unsupported, parse_reply
from outlast.protocol.request import DISCOVERY, MAX_INLINE_STATE_BYTES, REQUEST_VERSION, CallContext, call_body
from outlast.protocol.signing import SIGNATURE_HEADER, sign
from outlast.runtime.drivers.base import AttemptHost
from outlast.runtime.gateways import fetch, is_gateway_retry

DEFAULT_REQUEST_TIMEOUT_S = 900.0
#: connection pools per event loop (see `HttpDriver.client`)
POOLS = 64
USER_AGENT = "outlast"


class HttpDriver:
    """Calls served apps. `signing_key` signs every request (production); `request_timeout_s`
    bounds each call; `max_inline_bytes` is where `use_api` starts."""

    def __init__(
        self,
        *,
        signing_key: str | None = None,
        request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
        max_inline_bytes: int = MAX_INLINE_STATE_BYTES,
        max_connections: int = 200,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.signing_key = signing_key
        self.request_timeout_s = request_timeout_s
        self.max_inline_bytes = max_inline_bytes
        self.wall_clock = wall_clock
        per_pool = max(1, -(-max_connections // POOLS))
        self._limits = httpx.Limits(max_connections=per_pool, max_keepalive_connections=per_pool)
        self._clients: dict[int, list[httpx.AsyncClient]] = {}
        self._next = itertools.count()

    def client(self) -> httpx.AsyncClient:
        """A connection pool of this event loop (tests run several loops in one process).

        Requests are spread over `POOLS` small pools: httpcore's pool does work proportional to
        requests x connections on every request, which dominated the server's CPU with
        hundreds of calls in flight in one pool."""
        loop = id(asyncio.get_running_loop())
        pools = self._clients.get(loop)
        if pools is None or pools[0].is_closed:
            tls = ssl.create_default_context()  # loaded once, not once per pool
            pools = [
                httpx.AsyncClient(limits=self._limits, timeout=self.request_timeout_s, trust_env=False, verify=tls)
                for _ in range(POOLS)
            ]
            self._clients[loop] = pools
        return pools[next(self._next) % POOLS]

    async def aclose(self) -> None:
        pools, self._clients = [c for cs in self._clients.values() for c in cs], {}
        for client in pools:
            await client.aclose()

    async def execute(self, host: AttemptHost) -> Outcome:
        url = host.function.runtime.url
        if not url:
            return FunctionError(
                error=ErrorInfo(
                    name="FunctionNotFoundError",
                    no_retry=True,
                    message=(f"function {host.function.id!r} of app {host.function.app_id!r} has no URL to call"),
                )
            )
        return await HttpAttempt(self, host, url).run()

    # -- one request ---------------------------------------------------------------------------

    async def call(self, url: str, body: bytes, *, run_id: str, step: str, now_ms: int) -> Reply:
        """POST a call request; its reply as ops, a result or an error (never raises for the app's faults)."""
        headers = {
            "Content-Type": "application/json",
            "X-Run-ID": run_id,
            "X-Inngest-Step-ID": step,
            "X-Inngest-Req-Version": str(REQUEST_VERSION),
            "User-Agent": USER_AGENT,
        }
        if self.signing_key:
            headers[SIGNATURE_HEADER] = sign(body, self.signing_key, int(self.wall_clock()))
        target = httpx.URL(url).copy_set_param("stepId", step)
        return await self.exchange("POST", target, body, headers, url=url, now_ms=now_ms)

    async def exchange(
        self, method: str, target: httpx.URL, body: bytes, headers: dict[str, str], *, url: str, now_ms: int
    ) -> Reply:
        """Make one call request; its reply (a transport failure is the function's error)."""
        try:
            status, reply_headers, content = await self._post(target, body, headers, method=method)
        except httpx.ConnectError as exc:
            return _transport(url, "SDKUnreachableError", f"could not connect ({_reason(exc)}); is the app running?")
        except httpx.TimeoutException:
            return _transport(
                url, "SDKTimeoutError", f"did not answer within the request timeout ({self.request_timeout_s:g}s)"
            )
        except _TooLargeError:
            return _transport(
                url, "SDKResponseTooLargeError", f"answered with more than {MAX_RESPONSE_BYTES} bytes (the limit)"
            )
        except httpx.HTTPError as exc:
            return _transport(
                url, "SDKConnectionError", f"closed the connection before the response was complete ({_reason(exc)})"
            )
        return parse_reply(status, reply_headers, content, now_ms=now_ms, url=url)

    async def _post(
        self, url: httpx.URL, body: bytes, headers: dict[str, str], *, method: str = "POST"
    ) -> tuple[int, dict[str, str], bytes]:
        async with self.client().stream(method, url, content=body, headers=headers) as response:
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise _TooLargeError()
                chunks.append(chunk)
            return response.status_code, {k.lower(): v for k, v in response.headers.items()}, b"".join(chunks)


class _TooLargeError(Exception):
    pass


def _reason(exc: BaseException) -> str:
    """What went wrong underneath httpx's wrapper ("All connection attempts failed" says little)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or getattr(seen, "errno", None) == errno.ECONNREFUSED:
            return "connection refused"
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__


def _transport(url: str, name: str, problem: str) -> FunctionError:
    return FunctionError(error=ErrorInfo(name=name, message=f"{url} {problem}"))


class HttpAttempt:
    """One attempt's conversation with the app."""

    def __init__(self, driver: HttpDriver, host: AttemptHost, url: str) -> None:
        self.driver = driver
        self.host = host
        self.url = url
        #: a parallel group is open: later calls ask the SDK not to run steps on its own
        self.force_plan = False

    @property
    def memo(self) -> dict[str, MemoEntry]:
        return self.host.run.memo

    async def run(self) -> Outcome:
        # each round trip makes progress (a committed op) or ends the attempt; bound it anyway
        for _ in range(4 * self.host.function.max_attempts + 2 * max(100, len(self.memo)) + 10):
            due = [m for m in self.memo.values() if m.status == RETRYING and (m.deadline or 0) <= self.host.now_ms()]
            if targeted := [m for m in due if not is_gateway_retry(m)]:
                ended = await self._call_steps([StepPlanned(key=m.key, step_id=m.step_id) for m in targeted])
                if ended is not None:
                    return ended
                continue
            # a due `step.fetch` is made again when discovery reports it (the SDK cannot run it)
            if any(m.status == RETRYING and m not in due for m in self.memo.values()):
                return Suspended()
            outcome = await self._discover()
            if outcome is not None:
                return outcome
        return FunctionError(
            error=ErrorInfo(
                name="SDKNoProgressError",
                message=(f"{self.url} kept answering without making progress; the attempt was stopped"),
            )
        )

    async def _discover(self) -> Outcome | None:
        """One discovery round trip; an outcome ends the attempt, None means call again."""
        run = self.host.run
        reply = await self._request(DISCOVERY, attempt=run.attempt)
        if not isinstance(reply, Ops):
            return reply
        fresh = [op for op in reply.steps if op.key not in self.memo]
        fresh += await self._fetch(reply)
        planned = [p for p in reply.planned if p.key not in self.memo]
        self.force_plan = reply.count > 1 or (self.force_plan and reply.count == 0)
        entries = await self.host.apply(fresh) if fresh else []
        if reply.complete is not None:
            return reply.complete
        if planned:
            return await (self._race(planned) if any(p.race for p in planned) else self._call_group(planned))
        if fresh and all(e.final for e in entries):
            return None  # steps ran inline: on to the next ones
        if fresh or any(not m.final for m in self.memo.values()):
            return Suspended()  # something sleeps, waits or retries
        if reply.discovery:
            return None
        return FunctionError(
            error=ErrorInfo(
                name="SDKNoProgressError",
                message=(f"{self.url} answered with no new steps and no result (opcodes: {reply.count})"),
            )
        )

    async def _call_group(self, planned: Sequence[StepPlanned]) -> Outcome | None:
        """Run a group of planned steps; discover again only once the whole group has resolved,
        as Inngest does: while one of its steps sleeps, waits, invokes or retries, the attempt
        suspends (no extra request), and the call after the group runs the next step at once."""
        ended = await self._call_steps(planned)
        if ended is not None:
            return ended
        if any(not m.final for m in self.memo.values()):
            return Suspended()
        self.force_plan = False
        return None

    async def _race(self, planned: Sequence[StepPlanned]) -> Outcome | None:
        """A group in race mode, as on Inngest: discover again as soon as each of its steps ends,
        so each branch goes on at its own pace and the function continues with the first to
        finish. When the function returns (or fails), steps still running are ended."""
        running = {p.key: asyncio.ensure_future(self._call_step(p)) for p in planned}
        try:
            while running:
                done, _ = await asyncio.wait(running.values(), return_when=asyncio.FIRST_COMPLETED)
                for key in [k for k, task in running.items() if task in done]:
                    if (ended := running.pop(key).result()) is not None:
                        return ended
                self.force_plan = True
                reply = await self._request(DISCOVERY, attempt=self.host.run.attempt)
                if not isinstance(reply, Ops):
                    return reply
                if fresh := [op for op in reply.steps if op.key not in self.memo]:
                    await self.host.apply(fresh)
                if reply.complete is not None:
                    return reply.complete
                for p in reply.planned:
                    if p.key not in self.memo and p.key not in running:
                        running[p.key] = asyncio.ensure_future(self._call_step(p))
        finally:
            for task in running.values():
                task.cancel()
            await asyncio.gather(*running.values(), return_exceptions=True)
        if any(not m.final for m in self.memo.values()):
            return Suspended()
        self.force_plan = False
        return None

    async def _fetch(self, reply: Ops, *, only: str | None = None) -> list[StepOp]:
        """Make the requests the reply asks the server for (`step.fetch`), concurrently."""
        now = self.host.now_ms()
        wanted = [
            g
            for g in reply.gateways
            if (only is None or g.key == only)
            and ((m := self.memo.get(g.key)) is None or (m.status == RETRYING and (m.deadline or 0) <= now))
        ]
        client = self.driver.client()
        return list(await asyncio.gather(*(fetch(client, g) for g in wanted)))

    async def _call_steps(self, planned: Sequence[StepPlanned]) -> Outcome | None:
        """Call planned (or retrying) steps concurrently, committing each result as it comes."""
        results = await asyncio.gather(*(self._call_step(p) for p in planned))
        return next((r for r in results if r is not None), None)

    async def _call_step(self, planned: StepPlanned) -> Outcome | None:
        previous = self.memo.get(planned.key)
        attempt = previous.attempts if previous is not None and previous.status == RETRYING else 0
        reply = await self._request(planned.key, attempt=attempt)
        if isinstance(reply, RunComplete):
            return reply  # the function returned without reaching the step (it was removed)
        if isinstance(reply, FunctionError) and (reply.error.sent is not None or is_unsupported(reply.error)):
            # the SDK's own error (e.g. an unexpected step): the function's, as on Inngest; and an
            # opcode Outlast cannot carry out is not a step error the function could go on from
            return reply
        if isinstance(reply, Ops) and reply.complete is not None:
            # the function returned in this call: keep what ran, then end (Inngest handles each
            # opcode of a reply, whatever step the call was for)
            ran = [s for s in reply.steps if s.key == planned.key or s.key not in self.memo]
            if ran:
                await self.host.apply(ran)
            return reply.complete
        op: StepOp
        if isinstance(reply, FunctionError):
            op = StepAttemptFailed(key=planned.key, step_id=planned.step_id, error=reply.error)
        else:
            found = [s for s in reply.steps if s.key == planned.key] or await self._fetch(reply, only=planned.key)
            op = (
                found[0]
                if found
                else StepAttemptFailed(
                    key=planned.key,
                    step_id=planned.step_id,
                    error=ErrorInfo(
                        name="StepNotRunError",
                        message=f"{self.url} was asked to run step {planned.step_id!r} and did not "
                        f"(it answered {reply.count} other opcode(s))",
                    ),
                )
            )
        # `defer()`'s ops ride along with the step result that follows them (lazy ops)
        lazy = [s for s in reply.steps if is_defer_op(s) and s.key not in self.memo] if isinstance(reply, Ops) else []
        await self.host.apply([op, *lazy])
        return None

    async def _request(self, step: str, *, attempt: int) -> Reply:
        host, run = self.host, self.host.run
        await host.refresh()
        # only a discovery outside a parallel group names the dispatch: the SDK checkpoints there
        named = step == DISCOVERY and not self.force_plan
        ctx = CallContext(
            run_id=run.run_id,
            function_slug=host.function.slug,
            attempt=attempt,
            max_attempts=host.function.max_attempts,
            stack=host.completion_order(),
            disable_immediate_execution=self.force_plan,
            step_id=step,
            queue_item_id=dispatch_id(host.dispatch) if named else "",
        )
        body = call_body(
            events=run.events, memo=self.memo.values(), ctx=ctx, max_inline_bytes=self.driver.max_inline_bytes
        )
        return await self.driver.call(self.url, body, run_id=run.run_id, step=step, now_ms=host.now_ms())


__all__ = ["HttpAttempt", "HttpDriver"]
