"""Settings are validated when made, with one line per bad setting."""

from __future__ import annotations

import pytest

from outlast.errors import StoreError
from outlast.settings import Settings, SettingsError


def test_every_bad_variable_is_named_at_once() -> None:
    env = {
        "OUTLAST_WORKER_CONCURRENCY": "abc",
        "OUTLAST_LEASE_MS": "-5",
        "OUTLAST_DATABASE_URL": "mysql://u:pw@x/db",
        "OUTLAST_BACKOFF_SCALE": "nan",
        "OUTLAST_POLL_INTERVAL_MS": "50",
    }
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert sorted(p.split(":")[0] for p in info.value.problems) == [
        "OUTLAST_BACKOFF_SCALE",
        "OUTLAST_DATABASE_URL",
        "OUTLAST_LEASE_MS",
        "OUTLAST_WORKER_CONCURRENCY",
    ]
    text = str(info.value)
    assert text.startswith("4 invalid settings:")
    assert "OUTLAST_WORKER_CONCURRENCY: expected a whole number, got 'abc'" in text
    assert "OUTLAST_LEASE_MS: must be from 100 to 86,400,000, got -5" in text
    assert "unsupported database 'mysql://u:***@x/db'" in text and "pw" not in text


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"OUTLAST_WORKER_CONCURRENCY": "0"}, "OUTLAST_WORKER_CONCURRENCY: must be from 1"),
        ({"OUTLAST_MAX_STEPS_PER_RUN": "1.5"}, "OUTLAST_MAX_STEPS_PER_RUN: expected a whole number"),
        ({"OUTLAST_DATABASE_URL": ""}, "OUTLAST_DATABASE_URL: expected a database URL"),
    ],
)
def test_one_bad_variable_gives_one_line(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError, match="^invalid setting: " + fragment):
        Settings.from_env(env)


def test_good_values_from_variables_and_flags() -> None:
    settings = Settings.from_env(
        {"OUTLAST_LEASE_MS": " 5000 ", "OUTLAST_BACKOFF_SCALE": "0.5"},
        database_url="postgresql://h/db",
        worker_concurrency=None,
    )
    assert (settings.lease_ms, settings.backoff_scale, settings.database_url, settings.worker_concurrency) == (
        5000,
        0.5,
        "postgresql://h/db",
        200,
    )


def test_settings_made_in_code_and_flags_are_checked_too() -> None:
    with pytest.raises(SettingsError, match="lease_ms: must be from 100"):
        Settings(lease_ms=0)
    with pytest.raises(SettingsError, match=r"^invalid setting: poll_interval_ms: must be from 1"):
        Settings.from_env({}, poll_interval_ms=0)


async def test_an_unreachable_postgresql_is_said_once_clearly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    postgres = pytest.importorskip("outlast.storage.postgres")
    monkeypatch.setattr(postgres, "_CONNECT_TIMEOUT_S", 0.5)
    store = postgres.PostgresStore("postgresql://someone:secret@127.0.0.1:1/nowhere")
    with caplog.at_level("DEBUG"), pytest.raises(StoreError) as info:
        await store.open()
    message = str(info.value)
    assert message.startswith("cannot open PostgreSQL database someone@127.0.0.1:1/nowhere: ")
    assert "Connection refused" in message and "(gave up after 0.5 s)" in message and "secret" not in message
    assert not [r for r in caplog.records if r.name.startswith("psycopg")], "no driver warning per retry"


def test_outlast_dev_retries_at_one_percent_of_the_backoff_unless_the_variable_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import argparse

    from outlast.cli.serve import dev_settings

    args = argparse.Namespace(database_url="memory://")
    monkeypatch.delenv("OUTLAST_BACKOFF_SCALE", raising=False)
    assert dev_settings(args).backoff_scale == 0.01
    monkeypatch.setenv("OUTLAST_BACKOFF_SCALE", "1")
    assert dev_settings(args).backoff_scale == 1.0
    monkeypatch.setenv("OUTLAST_BACKOFF_SCALE", "-1")
    with pytest.raises(SettingsError, match="OUTLAST_BACKOFF_SCALE: must be from 0"):
        dev_settings(args)
