"""Slowing down guessing: failed logins and Bearer credentials, per client and overall.

A client (one IP address, as the server sees it) may fail `free_per_client` times; after that it
waits before its next credential is even checked, `first_wait_s` doubling with each further
failure up to `max_wait_s`, and is forgotten after `forget_after_s` without a failure. Across all
clients, once `overall_per_window` failures fall within `overall_window_s`, every credential check
waits until the oldest of them leaves the window, so that guessing from many addresses is slowed
too. A request that must wait is answered 429 with `Retry-After`, its credential unchecked: a
check would tell a guesser whether the guess was right at full speed.

Never slowed: a logged-in session (its cookie is not a guess), a request that needs no
credential, and any client that has not failed. A success forgets the client's failures. Behind a
reverse proxy every client has the proxy's address, and the per-client limit acts as an overall
one (`X-Forwarded-For` is not trusted: any client can write it).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

#: clients remembered at most; past it the longest-quiet are forgotten (the overall limit stays)
MAX_CLIENTS = 100_000


@dataclass(frozen=True, slots=True, kw_only=True)
class GuessLimits:
    free_per_client: int = 5
    first_wait_s: float = 1.0
    max_wait_s: float = 300.0
    forget_after_s: float = 900.0
    overall_per_window: int = 100
    overall_window_s: float = 60.0


class TooManyGuessesError(Exception):
    """A credential that will not be checked yet: the client or everyone failed too often."""

    def __init__(self, retry_after_s: float) -> None:
        self.retry_after_s = max(1, math.ceil(retry_after_s))
        super().__init__(f"too many failed attempts: try again in {self.retry_after_s} s")


@dataclass(slots=True)
class _Client:
    failures: int = 0
    last_failure: float = 0.0
    wait_until: float = 0.0


class GuessLimiter:
    """The failures one server has seen; shared by every guard of that server (thread-safe)."""

    def __init__(self, limits: GuessLimits | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits or GuessLimits()
        self._clock = clock
        self._clients: OrderedDict[str, _Client] = OrderedDict()
        self._recent: deque[float] = deque()
        self._lock = threading.Lock()

    def check(self, client: str, credential_ok: Callable[[], bool]) -> bool:
        """Whether the credential is right, checked only if `client` need not wait; else raise
        TooManyGuessesError. A wrong credential counts as a failure of `client`."""
        with self._lock:
            now = self._clock()
            wait = self._wait_s(client, now)
            if wait > 0:
                raise TooManyGuessesError(wait)
            if credential_ok():
                self._clients.pop(client, None)
                return True
            self._failed(client, now)
            return False

    def _wait_s(self, client: str, now: float) -> float:
        limits = self.limits
        while self._recent and self._recent[0] <= now - limits.overall_window_s:
            self._recent.popleft()
        overall = (
            self._recent[0] + limits.overall_window_s - now if len(self._recent) >= limits.overall_per_window else 0.0
        )
        known = self._clients.get(client)
        own = known.wait_until - now if known is not None else 0.0
        return max(overall, own, 0.0)

    def _failed(self, client: str, now: float) -> None:
        limits = self.limits
        self._recent.append(now)
        known = self._clients.pop(client, None)
        if known is None or known.last_failure <= now - limits.forget_after_s:
            known = _Client()
        known.failures += 1
        known.last_failure = now
        beyond = known.failures - limits.free_per_client
        if beyond > 0:
            known.wait_until = now + min(limits.max_wait_s, limits.first_wait_s * 2 ** min(beyond - 1, 30))
        self._clients[client] = known  # most recent last
        while len(self._clients) > MAX_CLIENTS:
            self._clients.popitem(last=False)


def client_of(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def check(request: Request, limits: GuessLimits, credential_ok: Callable[[], bool]) -> bool:
    """`GuessLimiter.check` for this request's client, on the limiter of the app serving it (one
    per server, made on first use)."""
    state = request.app.state
    limiter = getattr(state, "guesses", None)
    if limiter is None:
        limiter = state.guesses = GuessLimiter(limits)
    return bool(limiter.check(client_of(request), credential_ok))


async def too_many_guesses(request: Request, exc: Exception) -> Response:
    """The server's answer to TooManyGuessesError: 429, with Retry-After in seconds."""
    assert isinstance(exc, TooManyGuessesError)
    return JSONResponse({"error": str(exc)}, status_code=429, headers={"Retry-After": str(exc.retry_after_s)})
