"""Guessing is slowed: after a few failed logins or Bearer credentials a client waits (429 with
Retry-After, its credential unchecked), and so does everyone after many failures overall; a session
and a client that has not failed are never slowed. Real HTTP, clients on several loopback addresses."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from outlast.protocol.signing import bearer_token
from outlast.server.guesses import GuessLimiter, GuessLimits, TooManyGuessesError
from outlast.server.mode import ServerConfig
from tests.server.serving import serve

PASSWORD = "correct horse battery staple"
SIGNING_KEY = "signkey-test-" + "ab" * 32


def production(limits: GuessLimits) -> ServerConfig:
    return ServerConfig(
        mode="production",
        event_keys=("event-key-of-16+chars",),
        signing_keys=(SIGNING_KEY,),
        dashboard_password=PASSWORD,
        guess_limits=limits,
    )


@asynccontextmanager
async def client_at(url: str, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests come from `address` (any 127.x.y.z reaches a loopback server)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(base_url=url, transport=transport, timeout=10) as client:
        yield client


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def login(client: httpx.AsyncClient, password: str) -> httpx.Response:
    form = await client.get("/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert match, form.text
    return await client.post("/login", data={"password": password, "next": "/", "csrf_token": match.group(1)})


async def test_a_client_that_keeps_failing_waits_and_others_do_not(tmp_path: Path) -> None:
    config = production(GuessLimits(free_per_client=3, first_wait_s=60, overall_per_window=1000))
    async with (
        serve(tmp_path, config) as (url, _engine),
        client_at(url, "127.0.0.2") as guesser,
        client_at(url, "127.0.0.3") as user,
    ):
        for _ in range(4):  # three free failures, and the one that starts the wait
            assert (await guesser.get("/api/runs", headers=bearer("guess"))).status_code == 401
        slowed = await guesser.get("/api/runs", headers=bearer(PASSWORD))  # not even checked
        assert slowed.status_code == 429 and "too many failed attempts" in slowed.json()["error"]
        assert 55 <= int(slowed.headers["Retry-After"]) <= 60
        signed = await guesser.get("/v1/events", headers=bearer(bearer_token(SIGNING_KEY)))
        assert signed.status_code == 429  # one count per client, whichever credential it guesses
        form = await login(guesser, PASSWORD)
        assert form.status_code == 429 and "try again in" in form.text and form.headers["Retry-After"]

        assert (await user.get("/api/runs", headers=bearer(PASSWORD))).status_code == 200
        assert (await login(user, PASSWORD)).status_code == 303
        guesser.cookies.set("outlast_session", user.cookies["outlast_session"])
        assert (await guesser.get("/api/runs")).status_code == 200  # a session is not a guess


async def test_many_failures_from_many_clients_slow_every_credential_check(tmp_path: Path) -> None:
    config = production(GuessLimits(free_per_client=100, overall_per_window=4, overall_window_s=60))
    async with serve(tmp_path, config) as (url, _engine):
        for n in range(2, 6):
            async with client_at(url, f"127.0.0.{n}") as guesser:
                assert (await guesser.get("/api/runs", headers=bearer(f"guess {n}"))).status_code == 401
        async with client_at(url, "127.0.0.9") as newcomer:
            refused = await newcomer.get("/api/runs", headers=bearer(PASSWORD))
            assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
            assert (await newcomer.post("/fn/register", headers=bearer("x"), json={})).status_code == 429


def test_waits_double_and_end_and_a_success_forgets_the_failures() -> None:
    now = [0.0]
    limiter = GuessLimiter(
        GuessLimits(free_per_client=2, first_wait_s=1, max_wait_s=4, forget_after_s=100, overall_per_window=99),
        clock=lambda: now[0],
    )
    wrong, right = (lambda: False), (lambda: True)
    assert not limiter.check("a", wrong) and not limiter.check("a", wrong)  # free
    assert not limiter.check("a", wrong)  # the third failure: wait 1 s
    waits = []
    for _ in range(4):
        try:
            limiter.check("a", right)
        except TooManyGuessesError as exc:
            waits.append(exc.retry_after_s)
        now[0] += waits[-1] if waits else 0
        assert not limiter.check("a", wrong)
    assert waits == [1, 2, 4, 4]  # doubling, up to max_wait_s
    now[0] += 4
    assert limiter.check("a", right)  # checked again once the wait is over; and forgotten
    assert not limiter.check("a", wrong) and not limiter.check("a", wrong)  # free again
    now[0] += 1000
    assert not limiter.check("a", wrong) and not limiter.check("a", wrong)  # old failures forgotten
    assert limiter.check("b", right)  # another client is not slowed
