"""`/health` (the process is up) and `/ready` (the database answers, migrations applied, its disk
not full), over HTTP."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pytest

import outlast
from outlast.testing import TestEngine
from tests.conftest import PG_URL
from tests.http import serving


async def test_ready_when_the_database_answers_and_is_migrated(tmp_path: Path) -> None:
    async with (
        TestEngine(outlast.Outlast("h"), database_url=f"sqlite:///{tmp_path}/h.db") as t,
        serving(t.engine) as url,
        httpx.AsyncClient() as client,
    ):
        health = await client.get(f"{url}/health")
        ready = await client.get(f"{url}/ready")
        await t.store._run(lambda tx: tx.run("DELETE FROM schema_migrations WHERE version = 9"))  # type: ignore
        behind = await client.get(f"{url}/ready")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}
    assert behind.status_code == 503 and "migrations not applied: [9]" in behind.json()["error"]


async def test_not_ready_while_the_databases_disk_is_full_saying_so(tmp_path: Path) -> None:
    """Full: less free than `min_free_disk_mb`, here set a GiB above what this disk has free."""
    free_mb = shutil.disk_usage(tmp_path).free // (1024 * 1024)
    async with (
        TestEngine(
            outlast.Outlast("h"), database_url=f"sqlite:///{tmp_path}/h.db", min_free_disk_mb=free_mb + 1024
        ) as t,
        serving(t.engine) as url,
        httpx.AsyncClient() as client,
    ):
        full = await client.get(f"{url}/ready")
        health = await client.get(f"{url}/health")
    assert full.status_code == 503 and full.json()["status"] == "unavailable"
    assert f"the disk holding {tmp_path}/h.db is full" in full.json()["error"]
    assert health.status_code == 200  # the process itself is up


@pytest.mark.skipif(not PG_URL, reason="OUTLAST_TEST_POSTGRES_URL is not set")
async def test_not_ready_once_the_database_is_gone() -> None:
    import psycopg
    from psycopg import sql

    from tests.conftest import pg_database

    url = pg_database()
    name = url.rsplit("/", 1)[1]
    async with (
        TestEngine(outlast.Outlast("h"), database_url=url) as t,
        serving(t.engine) as base,
        httpx.AsyncClient(timeout=10) as client,
    ):
        assert (await client.get(f"{base}/ready")).status_code == 200
        with psycopg.connect(PG_URL, autocommit=True) as admin:  # our own test database, nobody else's
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        started = time.monotonic()
        down = await client.get(f"{base}/ready")
        waited = time.monotonic() - started
        health = await client.get(f"{base}/health")
    assert down.status_code == 503 and down.json()["status"] == "unavailable" and down.json()["error"]
    assert waited < 5  # a probe never hangs on a dead database
    assert health.status_code == 200  # the process itself is up
