"""The PostgreSQL pool size is a setting (`OUTLAST_POSTGRES_POOL_SIZE`), and a process holds the
connections the README says: the pool, one for LISTEN (workers) and one for upkeep."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import pytest

from outlast.runtime.engine import Engine
from outlast.settings import Settings, SettingsError
from tests.conftest import PG_URL, pg_database


def test_the_pool_size_comes_from_its_variable_and_is_range_checked() -> None:
    assert Settings().postgres_pool_size == 4
    assert Settings.from_env({"OUTLAST_POSTGRES_POOL_SIZE": "9"}).postgres_pool_size == 9
    with pytest.raises(SettingsError, match=r"OUTLAST_POSTGRES_POOL_SIZE: must be from 1 to 100, got 0"):
        Settings.from_env({"OUTLAST_POSTGRES_POOL_SIZE": "0"})


@pytest.mark.skipif(not PG_URL, reason="OUTLAST_TEST_POSTGRES_URL is not set")
async def test_a_process_holds_its_pool_plus_a_listener_and_an_upkeep_connection() -> None:
    import psycopg

    url = pg_database()
    name = urlsplit(url).path.lstrip("/")
    engine = Engine.from_settings(Settings(database_url=url, postgres_pool_size=2))
    await engine.store.open()
    try:

        def connections() -> int:
            with psycopg.connect(PG_URL or "", autocommit=True) as admin:
                row = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,)
                ).fetchone()
            return int(row[0]) if row else 0

        assert connections() == 2
        engine.store.add_listener(lambda: None)  # type: ignore[attr-defined]
        await engine.store.queue_stats(engine.clock.now_ms())  # upkeep's connection
        deadline = time.monotonic() + 10
        while connections() < 4 and time.monotonic() < deadline:  # the listener connects in its thread
            await asyncio.sleep(0.02)
        assert connections() == 4
    finally:
        await engine.store.close()
