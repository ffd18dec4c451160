"""Apps served over HTTP (official Inngest SDKs): the `apps` row and its functions, kept together."""

from __future__ import annotations

from typing import Any

from outlast.core.config import FunctionConfig
from outlast.core.models import SyncedApp
from outlast.storage.sql.functions import sync_functions
from outlast.storage.sql.tx import Tx

_COLUMNS = "id, url, sdk, framework, checksum, error, created_at, synced_at"


def sync_app(tx: Tx, app: SyncedApp, configs: list[FunctionConfig], now: int) -> bool:
    """Record the app and make its functions exactly `configs`; True when any function changed."""
    tx.run(
        "INSERT INTO apps (id, url, sdk, framework, checksum, error, created_at, synced_at)"
        " VALUES (?, ?, ?, ?, ?, NULL, ?, ?) ON CONFLICT (id) DO UPDATE SET url = excluded.url,"
        " sdk = excluded.sdk, framework = excluded.framework, checksum = excluded.checksum, error = NULL,"
        " synced_at = excluded.synced_at",
        (app.id, app.url, app.sdk, app.framework, app.checksum, now, now),
    )
    return sync_functions(tx, app.id, configs, now, "replace")


def record_app_error(tx: Tx, app_id: str, url: str | None, error: str, now: int) -> None:
    """Remember why a sync failed; the app's functions stay as they were."""
    tx.run(
        "INSERT INTO apps (id, url, error, created_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET error = excluded.error",
        (app_id, url, error, now),
    )


def get_app(tx: Tx, app_id: str) -> SyncedApp | None:
    row = tx.one(f"SELECT {_COLUMNS} FROM apps WHERE id = ?", (app_id,))
    return None if row is None else _app(tx, row)


def list_apps(tx: Tx) -> list[SyncedApp]:
    return [_app(tx, row) for row in tx.all(f"SELECT {_COLUMNS} FROM apps ORDER BY id")]


def remove_app(tx: Tx, app_id: str, now: int) -> bool:
    """Forget the app and its functions; False when there was no such app."""
    existed = tx.run("DELETE FROM apps WHERE id = ?", (app_id,)) > 0
    sync_functions(tx, app_id, [], now, "replace")
    return existed


def _app(tx: Tx, row: tuple[Any, ...]) -> SyncedApp:
    app_id, url, sdk, framework, checksum, error, created_at, synced_at = row
    functions = [
        r[0] for r in tx.all("SELECT function_id FROM functions WHERE app_id = ? ORDER BY function_id", (app_id,))
    ]
    return SyncedApp(
        id=str(app_id),
        url=url,
        sdk=sdk,
        framework=framework,
        checksum=checksum,
        error=error,
        created_at=int(created_at),
        synced_at=synced_at,
        functions=functions,
    )
