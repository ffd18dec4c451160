"""Paused functions: kept in `paused_functions`, read by ingest (a paused function's runs are
recorded `skipped`, reason "paused") and by claims (a paused function's run items are not
claimed, so runs in flight run no step until it is resumed)."""

from __future__ import annotations

from outlast.storage.sql.tx import Tx

#: the claim's filter: run items of paused functions stay where they are
NOT_PAUSED = (
    "(kind <> 'run' OR NOT EXISTS (SELECT 1 FROM paused_functions p"
    " WHERE p.app_id = queue.app_id AND p.function_id = queue.function_id))"
)


def set_paused(tx: Tx, app_id: str, function_id: str, paused: bool, now: int) -> bool:
    """Pause or resume; True when that changed anything. A resumed function's run items due while
    it was paused are due at once (they kept their due times)."""
    if paused:
        return (
            tx.run(
                "INSERT INTO paused_functions (app_id, function_id, paused_at) VALUES (?, ?, ?)"
                " ON CONFLICT (app_id, function_id) DO NOTHING",
                (app_id, function_id, now),
            )
            == 1
        )
    return tx.run("DELETE FROM paused_functions WHERE app_id = ? AND function_id = ?", (app_id, function_id)) == 1


def paused_functions(tx: Tx) -> list[tuple[str, str]]:
    """Every paused function, in (app, function) order; read once per transaction by ingest."""
    key = "paused_functions"
    if (known := tx.memo.get(key)) is None:
        known = tx.memo[key] = [
            (a, f) for a, f in tx.all("SELECT app_id, function_id FROM paused_functions ORDER BY app_id, function_id")
        ]
    return list(known)
