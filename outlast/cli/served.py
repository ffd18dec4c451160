"""What `outlast dev` and `outlast start` need for apps on the official Inngest SDKs: keys from
flags or the environment, the HTTP driver, and syncing `--sdk-url` apps once the server listens."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from typing import Any

from outlast.errors import OutlastError
from outlast.protocol.signing import SigningKeyError, validate_key
from outlast.runtime.drivers.endpoint import EndpointDriver
from outlast.runtime.drivers.http import HttpDriver
from outlast.runtime.engine import Engine
from outlast.settings import Settings

#: `--sdk-url` apps may start after the server: they are retried this long
SDK_URL_RETRY_S = 60.0


def signing_keys(args: argparse.Namespace, env: dict[str, str] | None = None) -> tuple[str, ...]:
    """The signing key (flag, OUTLAST_SIGNING_KEY or INNGEST_SIGNING_KEY) and its fallback
    (OUTLAST_SIGNING_KEY_FALLBACK or INNGEST_SIGNING_KEY_FALLBACK), validated; never echoed."""
    env = dict(os.environ) if env is None else env
    primary = getattr(args, "signing_key", None) or env.get("OUTLAST_SIGNING_KEY") or env.get("INNGEST_SIGNING_KEY")
    fallback = env.get("OUTLAST_SIGNING_KEY_FALLBACK") or env.get("INNGEST_SIGNING_KEY_FALLBACK")
    keys = []
    for where, key in (("the signing key", primary), ("the fallback signing key", fallback)):
        if not key:
            continue
        try:
            keys.append(validate_key(key))
        except SigningKeyError as exc:
            raise OutlastError(f"{where}: {exc}") from None
    return tuple(keys)


#: the shortest secrets `outlast start` accepts: anything shorter can be guessed or remembered
MIN_EVENT_KEY_CHARS = 16
MIN_SIGNING_KEY_HEX = 32  # 128 bits; Inngest's own keys have 64
MIN_PASSWORD_CHARS = 12


def refuse_weak_secrets(*, event_keys: tuple[str, ...], signing_keys: tuple[str, ...], password: str) -> None:
    """Production secrets must be long enough to be secret; the error says the minimum, never the
    secret itself."""
    for i, key in enumerate(event_keys):
        if len(key) < MIN_EVENT_KEY_CHARS:
            raise OutlastError(
                f"start: event key #{i + 1} has {len(key)} characters; an event key needs at least "
                f"{MIN_EVENT_KEY_CHARS} (e.g. python -c 'import secrets; print(secrets.token_hex(16))')"
            )
    for key in signing_keys:
        digits = len(key.rpartition("-")[2])
        if digits < MIN_SIGNING_KEY_HEX:
            raise OutlastError(
                f"start: the signing key has {digits} hex digits after 'signkey-<env>-'; it needs at least "
                f"{MIN_SIGNING_KEY_HEX} (e.g. signkey-prod-$(python -c 'import secrets; print(secrets.token_hex(32))'))"
            )
    if len(password) < MIN_PASSWORD_CHARS:
        raise OutlastError(
            f"start: the dashboard password (OUTLAST_DASHBOARD_PASSWORD) has {len(password)} characters; "
            f"it needs at least {MIN_PASSWORD_CHARS}"
        )


def event_keys(args: argparse.Namespace, env: dict[str, str] | None = None) -> tuple[str, ...]:
    """Accepted event keys, comma-separated (flag, OUTLAST_EVENT_KEY or INNGEST_EVENT_KEY)."""
    env = dict(os.environ) if env is None else env
    raw = getattr(args, "event_key", None) or env.get("OUTLAST_EVENT_KEY") or env.get("INNGEST_EVENT_KEY") or ""
    return tuple(k.strip() for k in raw.split(",") if k.strip())


def install_http_driver(engine: Engine, settings: Settings, keys: tuple[str, ...]) -> HttpDriver:
    """Let this engine's workers run served apps' functions, signing requests with the first key."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per call request is noise
    driver = HttpDriver(
        signing_key=keys[0] if keys else None, request_timeout_s=settings.http_request_timeout_ms / 1000
    )
    engine.drivers["http"] = driver
    engine.drivers["endpoint"] = EndpointDriver(driver)  # Durable Endpoints, over the same pools
    return driver


async def sync_sdk_urls(engine: Engine, urls: list[str], server: Any, *, production: bool) -> None:
    """Once the server listens, ask each app to sync; retry a while (it may still be starting)."""
    from outlast.server.sync import sync_app_url

    while not server.started:
        await asyncio.sleep(0.02)
    pending = list(urls)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SDK_URL_RETRY_S
    last: dict[str, str] = {}
    while pending:
        for url in list(pending):
            result = await sync_app_url(engine, url, production=production)
            if result.ok:
                pending.remove(url)
                print(f"outlast: synced {url}", flush=True)
            elif last.get(url) != result.message:
                last[url] = result.message
                print(f"outlast: could not sync {url} yet: {result.message}", flush=True)
        if pending and loop.time() > deadline:
            print(f"outlast: gave up syncing {', '.join(pending)}; PUT the app's URL to sync it later", flush=True)
            return
        if pending:
            await asyncio.sleep(1.0)
