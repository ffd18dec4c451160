"""Browser tests: Playwright driving Debian's Chromium against a real `outlast dev` server.

They fail (not skip) when Chromium or Playwright is missing: CI installs both.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.serving import free_port

ROOT = Path(__file__).resolve().parents[2]
#: the browser's time zone (the dashboard shows times in it): not UTC, so a time left in UTC shows
VIEWER_TIME_ZONE = "Asia/Tokyo"
CHROMIUM = os.environ.get("OUTLAST_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")  # sync Playwright holds an event loop: gone before async tests run
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}: the browser tests need it (apt-get install chromium, "
            "or set OUTLAST_TEST_CHROMIUM)",
            pytrace=False,
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: pip install -e '.[dev]'", pytrace=False)
    from playwright.sync_api import expect

    expect.set_options(timeout=15_000)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`outlast dev tests.apps.shop:app --port P` on a fresh SQLite file."""
    yield from dev_server(tmp_path_factory.mktemp("dev"), "tests.apps.shop:app")


def dev_server(tmp: Path, app: str) -> Iterator[str]:
    """`outlast dev APP --port P` on a fresh SQLite file in `tmp`: its URL once it is healthy;
    stopped (SIGTERM, which it must obey within 15 s) when the generator closes."""
    port = free_port()
    env = {
        **os.environ,
        "OUTLAST_DATABASE_URL": f"sqlite:///{tmp}/dev.db",
        "PYTHONPATH": str(ROOT),
        "OUTLAST_POLL_INTERVAL_MS": "20",
    }
    with (tmp / "dev.log").open("w") as log:  # the child writes to its own copy
        proc = subprocess.Popen(
            [sys.executable, "-m", "outlast.cli", "dev", app, "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"outlast dev did not start:\n{(tmp / 'dev.log').read_text()}")
        time.sleep(0.1)
    yield url
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("outlast dev did not stop within 15 s of SIGTERM")


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    context = browser.new_context(
        base_url=server, viewport={"width": 1400, "height": 900}, timezone_id=VIEWER_TIME_ZONE
    )
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    blocked: list[str] = []  # what the Content-Security-Policy refused: a page that needs it is broken
    tab.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    yield tab
    context.close()
    assert errors == [], f"JavaScript errors: {errors}"
    assert blocked == [], f"refused by the Content-Security-Policy: {blocked}"
