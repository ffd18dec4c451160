"""Signed production mode: `outlast start` with a signing key and an event key, and a FastAPI app
on the official Python SDK in production mode (it verifies every call request's signature)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from outlast.protocol.signing import bearer_token
from tests.interop.harness import EVENT_KEY, OTHER_SIGNING_KEY, SIGNING_KEY, Outlast, python_app


@pytest.fixture
async def production(tmp_path: Path) -> AsyncIterator[Outlast]:
    server = Outlast(
        tmp_path,
        mode="start",
        env={
            "INNGEST_SIGNING_KEY": SIGNING_KEY,
            "OUTLAST_EVENT_KEY": EVENT_KEY,
            "OUTLAST_DASHBOARD_PASSWORD": "dashboard-secret",
        },
    )
    yield server
    await server.close()


async def test_signed_calls_run_and_keys_are_checked(production: Outlast, tmp_path: Path) -> None:
    app = python_app(tmp_path, production, production=True)
    try:
        assert (await app.sync()).json()["modified"] is True
        [event] = await production.send({"name": "py/steps", "data": {"n": 3}}, key=EVENT_KEY)
        run = await production.finished_run(event)
        assert (run.status, run.output) == ("completed", {"a": 1, "b": 2, "n": 3})  # the SDK verified each call

        async with httpx.AsyncClient() as client:
            unsigned = await client.post(f"{app.url}?fnId=py-app-steps&stepId=step", json={})
            assert unsigned.status_code == 401  # the SDK refuses what we did not sign
            missing = await client.post(f"{production.url}/fn/register", json={"appName": "x"})
            wrong = await client.post(
                f"{production.url}/fn/register",
                json={"appName": "x"},
                headers={"Authorization": f"Bearer {bearer_token(OTHER_SIGNING_KEY)}"},
            )
            state = await client.get(f"{production.url}/v0/runs/{run.id}/actions")
            signed_state = await client.get(
                f"{production.url}/v0/runs/{run.id}/actions",
                headers={"Authorization": f"Bearer {bearer_token(SIGNING_KEY)}"},
            )
            bad_event = await client.post(f"{production.url}/e/wrong-key", json={"name": "py/steps"})
        assert missing.status_code == 401 and "signing key required" in missing.json()["error"]
        assert wrong.status_code == 401 and "signing key not accepted" in wrong.json()["error"]
        assert state.status_code == 401 and signed_state.status_code == 200 and len(signed_state.json()) == 4
        assert bad_event.status_code == 401 and "Event key not found" in bad_event.json()["error"]
        assert [a.id for a in await (await production.store()).list_apps()] == ["py-app"]
    finally:
        app.proc.stop()


async def test_an_app_with_another_signing_key_cannot_sync(production: Outlast, tmp_path: Path) -> None:
    app = python_app(
        tmp_path, production, production=True, signing_key=OTHER_SIGNING_KEY, env={"PY_APP_ID": "intruder"}
    )
    try:
        reply = await app.sync(expect_ok=False)
        assert "signing key not accepted" in reply.text  # (the Python SDK passes our 401 on with a 200)
        assert await (await production.store()).list_apps() == []
    finally:
        app.proc.stop()


def test_start_refuses_to_run_without_keys(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.interop.harness import ROOT, base_env

    env = {**base_env(tmp_path), "OUTLAST_DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "OUTLAST_EVENT_KEY": "k"}
    result = subprocess.run(
        [sys.executable, "-m", "outlast.cli", "start", "--port", "0"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "needs a signing key" in result.stderr and "Traceback" not in result.stderr
    env["OUTLAST_SIGNING_KEY"] = "signkey-prod-nothex"
    result = subprocess.run(
        [sys.executable, "-m", "outlast.cli", "start", "--port", "0"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "not hex" in result.stderr and "nothex" not in result.stderr
    env["OUTLAST_SIGNING_KEY"] = SIGNING_KEY
    result = subprocess.run(
        [sys.executable, "-m", "outlast.cli", "start", "--port", "0"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "needs a dashboard password" in result.stderr
