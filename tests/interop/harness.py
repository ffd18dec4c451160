"""Real processes on loopback for the interop tests: `outlast dev`/`start`, apps on the official
Inngest SDKs (FastAPI on `inngest` from PyPI, Express on `inngest@3` from npm), and reads of
the outlast database and of the apps' effect logs."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from outlast.core.models import Run, RunFilter
from outlast.storage import open_store
from outlast.storage.base import Store

ROOT = Path(__file__).resolve().parents[2]
PY_APP_DIR = ROOT / "tests" / "interop" / "py"
JS_APP_DIR = ROOT / "tests" / "interop" / "js"
JS_CONNECT_DIR = ROOT / "tests" / "interop" / "js-connect"
JS4_APP_DIR = ROOT / "tests" / "interop" / "js4"
SIGNING_KEY = "signkey-test-" + "5eed" * 16
OTHER_SIGNING_KEY = "signkey-test-" + "baad" * 16
EVENT_KEY = "interop-event-key"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """A subprocess with its output in a log file (shown when a test fails)."""

    def __init__(self, name: str, args: list[str], *, cwd: Path, env: dict[str, str], log: Path) -> None:
        self.name, self.args, self.cwd, self.env, self.log = name, args, cwd, env, log
        self.popen: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        with self.log.open("ab") as handle:  # the child writes to its own copy
            self.popen = subprocess.Popen(
                self.args, cwd=self.cwd, env=self.env, stdout=handle, stderr=handle, start_new_session=True
            )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:] if self.log.exists() else ""


def base_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INNGEST_", "OUTLAST_"))}
    env["PYTHONPATH"] = str(ROOT)
    env["OUTLAST_TEST_EFFECTS"] = str(tmp / "effects.log")
    env["OUTLAST_CONNECT_PORT"] = "off"  # never Inngest's 8289, shared by every test on the machine
    return env


def wait_port(port: int, proc: Proc, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen is not None and proc.popen.poll() is not None:
            raise AssertionError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.output()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"{proc.name} did not listen on {port} within {timeout}s:\n{proc.output()}")


class Outlast:
    """An `outlast dev` (or `start`) process on its own SQLite file and port."""

    def __init__(
        self,
        tmp: Path,
        *,
        mode: str = "dev",
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        port: int | None = None,
    ) -> None:
        self.tmp = tmp
        self.db = tmp / "outlast.db"
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **base_env(tmp),
            "OUTLAST_DATABASE_URL": f"sqlite:///{self.db}",
            "OUTLAST_POLL_INTERVAL_MS": "20",
            **(env or {}),
        }
        self.args = [sys.executable, "-m", "outlast.cli", mode, "--port", str(self.port), *args]
        self.proc = Proc(f"outlast {mode}", self.args, cwd=ROOT, env=self.env, log=tmp / "outlast.log")
        wait_port(self.port, self.proc)
        self._store: Store | None = None

    def restart(self) -> None:
        self.proc.start()
        wait_port(self.port, self.proc)

    async def store(self) -> Store:
        if self._store is None:
            self._store = open_store(f"sqlite:///{self.db}")
            await self._store.open()
        return self._store

    async def runs(self, function_id: str | None = None, status: str | None = None) -> list[Run]:
        return await (await self.store()).list_runs(RunFilter(function_id=function_id, status=status, limit=10_000))

    async def run(self, run_id: str) -> Run:
        run = await (await self.store()).get_run(run_id)
        assert run is not None, run_id
        return run

    async def send(self, *events: dict[str, Any], key: str = "dev-key") -> list[str]:
        async with httpx.AsyncClient() as client:
            reply = await client.post(f"{self.url}/e/{key}", json=list(events))
        assert reply.status_code == 200, reply.text
        return list(reply.json()["ids"])

    async def runs_of(self, event_id: str) -> list[Run]:
        return await (await self.store()).list_runs(RunFilter(event_id=event_id))

    async def finished_run(self, event_id: str, timeout: float = 30.0) -> Run:
        """The run the event started, once it has ended."""

        async def ended() -> Run | None:
            runs = await self.runs_of(event_id)
            done = [r for r in runs if r.status in ("completed", "failed", "cancelled", "skipped")]
            return await self.run(done[0].id) if done else None

        return await self.wait(ended, timeout, f"a finished run for event {event_id}")

    async def wait(self, probe: Callable[[], Awaitable[T | None]], timeout: float, what: str) -> T:
        deadline = time.monotonic() + timeout
        while True:
            value = await probe()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n--- outlast log ---\n{self.proc.output()}")
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()
        self.proc.stop()


class SdkApp:
    """An app on an official SDK, served on its own port; `url` is its serve URL."""

    def __init__(
        self,
        name: str,
        args: list[str],
        *,
        cwd: Path,
        env: dict[str, str],
        tmp: Path,
        port: int,
        path: str = "/api/inngest",
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}{path}"
        self.proc = Proc(name, args, cwd=cwd, env=env, log=tmp / f"{name}.log")
        wait_port(port, self.proc)

    def restart(self, env: dict[str, str] | None = None) -> None:
        if env is not None:
            self.proc.env = env
        self.proc.start()
        wait_port(self.port, self.proc)

    async def sync(self, *, expect_ok: bool = True) -> httpx.Response:
        """PUT on the app: it registers its functions with its Inngest server (us)."""
        async with httpx.AsyncClient(timeout=30) as client:
            reply = await client.put(self.url)
        if expect_ok:
            assert reply.status_code == 200, f"{reply.status_code} {reply.text}\n{self.proc.output()}"
        return reply


def sdk_env(tmp: Path, outlast: Outlast, *, production: bool = False, signing_key: str = SIGNING_KEY) -> dict[str, str]:
    """Every SDK's mode and server URLs, set explicitly: an SDK left to infer its mode (the JS SDK
    without INNGEST_DEV or NODE_ENV) looks for a dev server on :8288 and registers there."""
    env = {
        **base_env(tmp),
        "INNGEST_BASE_URL": outlast.url,
        "INNGEST_API_BASE_URL": outlast.url,
        "INNGEST_EVENT_API_BASE_URL": outlast.url,
    }
    if production:
        env.update(INNGEST_SIGNING_KEY=signing_key, INNGEST_EVENT_KEY=EVENT_KEY, INNGEST_DEV="0", NODE_ENV="production")
    else:
        env.update(INNGEST_DEV="1", NODE_ENV="development")
    return env


def python_app(
    tmp: Path,
    outlast: Outlast,
    *,
    production: bool = False,
    env: dict[str, str] | None = None,
    signing_key: str = SIGNING_KEY,
) -> SdkApp:
    port = free_port()
    full_env = {**sdk_env(tmp, outlast, production=production, signing_key=signing_key), **(env or {})}
    args = [sys.executable, "-m", "uvicorn", "app:app", "--port", str(port), "--log-level", "warning"]
    return SdkApp("py-app", args, cwd=PY_APP_DIR, env=full_env, tmp=tmp, port=port)


def node_ready(app_dir: Path = JS_APP_DIR) -> None:
    """Fail (not skip) with a clear message when Node or the JS app's (in `app_dir`) packages are missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise AssertionError("the JS interop tests need node and npm on PATH (Node 20); install them")
    if not (app_dir / "node_modules" / "inngest").exists():
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=app_dir, capture_output=True, text=True, timeout=600
        )
        if result.returncode != 0:
            raise AssertionError(
                f"`npm ci` in {app_dir} failed; the JS interop tests cannot run:\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
            )


def js_app(
    tmp: Path,
    outlast: Outlast,
    *,
    production: bool = False,
    env: dict[str, str] | None = None,
    app_dir: Path = JS_APP_DIR,
) -> SdkApp:
    """The Express app in `app_dir` (`js`: inngest@3; `js4`: inngest@4) on a free port."""
    node_ready(app_dir)
    port = free_port()
    full_env = {**sdk_env(tmp, outlast, production=production), "PORT": str(port), **(env or {})}
    return SdkApp(f"{app_dir.name}-app", ["node", "app.js"], cwd=app_dir, env=full_env, tmp=tmp, port=port)


def js4_app(tmp: Path, outlast: Outlast, *, production: bool = False, env: dict[str, str] | None = None) -> SdkApp:
    """The Express app on inngest@4 (the SDK `npm install inngest` gives today)."""
    return js_app(tmp, outlast, production=production, env=env, app_dir=JS4_APP_DIR)


def effects(tmp: Path) -> Counter[str]:
    """How many times each step body ran (the apps log one row per call)."""
    path = tmp / "effects.log"
    return Counter(path.read_text().splitlines()) if path.exists() else Counter()
