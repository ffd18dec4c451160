"""Stored function configurations and the cron items that follow them."""

from __future__ import annotations

from outlast.core import jsonutil
from outlast.core.config import FunctionConfig
from outlast.core.cron_items import cron_items, next_tick
from outlast.storage.sql.queue_items import enqueue
from outlast.storage.sql.tx import Tx, marks


def sync_functions(tx: Tx, app_id: str, configs: list[FunctionConfig], now: int, mode: str) -> bool:
    """Store an app's functions (see `Store.sync_functions` for the modes); all in the caller's transaction."""
    stored = {
        r[0]: (r[1], bool(r[2]))
        for r in tx.all("SELECT function_id, config, provisional FROM functions WHERE app_id = ?", (app_id,))
    }
    if mode == "provisional" and stored:
        return False  # someone serves (or served) the app: a process that serves nothing changes nothing
    wanted = {c.id: jsonutil.dumps(c.to_json()) for c in configs}
    provisional = mode == "provisional"
    changed = [fid for fid, text in wanted.items() if stored.get(fid) != (text, provisional)]
    removed = [
        fid
        for fid, (_, was_provisional) in stored.items()
        if fid not in wanted and (mode == "replace" or was_provisional)
    ]
    seen = None if mode != "merge" else now
    if removed:
        tx.run(f"DELETE FROM functions WHERE app_id = ? AND function_id IN ({marks(len(removed))})", (app_id, *removed))
    for fid in wanted:
        tx.run(
            "INSERT INTO functions (app_id, function_id, config, updated_at, last_seen_at, provisional)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (app_id, function_id) DO UPDATE SET config = excluded.config,"
            " updated_at = CASE WHEN functions.config = excluded.config THEN functions.updated_at"
            " ELSE excluded.updated_at END, last_seen_at = excluded.last_seen_at, provisional = 0",
            (app_id, fid, wanted[fid], now, seen, int(provisional)),
        )
    sync_crons(tx, app_id, now)  # also mends items a crash or an older version left wrong
    if not (changed or removed):
        return False
    _bump_version(tx)
    return True


def _bump_version(tx: Tx) -> None:
    tx.run("UPDATE meta SET value = value + 1 WHERE name = 'functions_version'")


def functions_version(tx: Tx) -> int:
    row = tx.one("SELECT value FROM meta WHERE name = 'functions_version'")
    return int(row[0]) if row else 0


def load_functions(tx: Tx) -> tuple[int, list[FunctionConfig]]:
    rows = tx.all("SELECT config FROM functions ORDER BY app_id, function_id")
    return functions_version(tx), [FunctionConfig.from_json(jsonutil.loads(r[0])) for r in rows]


def prune_functions(tx: Tx, stale_before: int) -> list[tuple[str, str]]:
    gone = [
        (r[0], r[1])
        for r in tx.all(
            "SELECT app_id, function_id FROM functions WHERE last_seen_at IS NOT NULL AND last_seen_at < ?"
            " ORDER BY app_id, function_id",
            (stale_before,),
        )
    ]
    if not gone:
        return []
    tx.run("DELETE FROM functions WHERE last_seen_at IS NOT NULL AND last_seen_at < ?", (stale_before,))
    _bump_version(tx)
    for app_id in sorted({app for app, _ in gone}):
        sync_crons(tx, app_id, stale_before)
    return gone


def settle_provisional(tx: Tx, app_id: str, served: set[str], now: int) -> bool:
    """A live worker serves the app: its provisional functions become the app's own, as a starting
    worker's merge makes them. Those in `served` are kept as seen at `now`; the others are
    deleted (so their runs fail when next claimed, nobody serving them). True if any was deleted."""
    held = [r[0] for r in tx.all("SELECT function_id FROM functions WHERE app_id = ? AND provisional = 1", (app_id,))]
    if not held:
        return False
    gone = [fid for fid in held if fid not in served]
    kept = [fid for fid in held if fid in served]
    if kept:
        tx.run(
            "UPDATE functions SET provisional = 0, last_seen_at = ?"
            f" WHERE app_id = ? AND function_id IN ({marks(len(kept))})",
            (now, app_id, *kept),
        )
    if gone:
        tx.run(f"DELETE FROM functions WHERE app_id = ? AND function_id IN ({marks(len(gone))})", (app_id, *gone))
        sync_crons(tx, app_id, now)
        _bump_version(tx)
    return bool(gone)


def sync_crons(tx: Tx, app_id: str, now: int) -> None:
    """One queue item per cron trigger of the app's stored functions; an unchanged one is kept
    (with its due time), so restarts and re-syncs never add ticks."""
    configs = [
        FunctionConfig.from_json(jsonutil.loads(r[0]))
        for r in tx.all("SELECT config FROM functions WHERE app_id = ? ORDER BY function_id", (app_id,))
    ]
    wanted = cron_items(app_id, configs)
    existing: dict[str, str] = dict(
        tx.all("SELECT id, payload FROM queue WHERE app_id = ? AND kind = 'cron' ORDER BY id", (app_id,))
    )
    for item_id, text in existing.items():
        if item_id not in wanted or jsonutil.loads(text) != wanted[item_id]:
            tx.run("DELETE FROM queue WHERE id = ?", (item_id,))
    for item_id, payload in wanted.items():
        if item_id not in existing or jsonutil.loads(existing[item_id]) != payload:
            enqueue(
                tx,
                app_id=app_id,
                function_id=payload["function_id"],
                kind="cron",
                run_id=None,
                due=next_tick(payload, now),
                now=now,
                payload=payload,
                item_id=item_id,
            )
