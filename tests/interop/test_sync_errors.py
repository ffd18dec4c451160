"""A sync the app itself refuses: Outlast shows the app's own words and the likely cause, in the
CLI (`outlast dev --sdk-url`) and on the dashboard's Apps page. The case users hit first:
`inngest@4` runs in cloud mode unless INNGEST_DEV=1, and then answers every sync with a bare
`500 {"code": "internal_server_error"}`."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.interop.harness import JS4_APP_DIR, Outlast, SdkApp, base_env, free_port, node_ready


def _cloud_mode_v4_app(tmp: Path, outlast_port: int) -> SdkApp:
    """A v4 app started as a new user would: INNGEST_BASE_URL set, INNGEST_DEV and keys not."""
    node_ready(JS4_APP_DIR)
    port = free_port()
    env = {**base_env(tmp), "INNGEST_BASE_URL": f"http://127.0.0.1:{outlast_port}", "PORT": str(port)}
    return SdkApp("js4-app", ["node", "app.js"], cwd=JS4_APP_DIR, env=env, tmp=tmp, port=port)


async def test_the_cli_says_why_a_v4_app_in_cloud_mode_did_not_sync(tmp_path: Path) -> None:
    port = free_port()
    app = _cloud_mode_v4_app(tmp_path, port)
    server = Outlast(tmp_path, port=port, args=("--sdk-url", app.url))
    try:
        line = await server.wait(lambda: _said(server, "could not sync"), 30, "the CLI's sync failure line")
        assert "answered 500" in line and "code internal_server_error" in line
        assert "cloud mode without a signing key" in line and "INNGEST_DEV=1" in line
        assert await server.runs() == []
    finally:
        app.proc.stop()
        await server.close()


async def test_the_apps_page_says_why_a_v4_app_in_cloud_mode_did_not_sync(tmp_path: Path) -> None:
    port = free_port()
    app = _cloud_mode_v4_app(tmp_path, port)
    server = Outlast(tmp_path, port=port)
    try:
        async with httpx.AsyncClient(base_url=server.url, follow_redirects=True, timeout=30) as client:
            form = await client.get("/apps")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert token is not None
            page = await client.post("/apps", data={"url": app.url, "csrf_token": token.group(1)})
        assert page.status_code == 200
        assert "code internal_server_error" in page.text
        assert "cloud mode without a signing key" in page.text and "INNGEST_DEV=1" in page.text
    finally:
        app.proc.stop()
        await server.close()


async def _said(server: Outlast, needle: str) -> str | None:
    return next((line for line in server.proc.output().splitlines() if needle in line), None)
