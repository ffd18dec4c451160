"""Fixtures for the interop tests: a real `outlast dev` and real SDK apps, on free loopback ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.interop.harness import Outlast, SdkApp, python_app


@pytest.fixture
async def outlast(tmp_path: Path) -> AsyncIterator[Outlast]:
    server = Outlast(tmp_path, env={"OUTLAST_LEASE_MS": "5000"})
    yield server
    await server.close()


@pytest.fixture
def py_app(tmp_path: Path, outlast: Outlast) -> Iterator[SdkApp]:
    app = python_app(tmp_path, outlast)
    yield app
    app.proc.stop()
