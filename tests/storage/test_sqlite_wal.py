"""The SQLite WAL does not keep its high-water mark: once long, it is truncated after a checkpoint."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from outlast.storage.sqlite import WAL_TRUNCATE_FRAMES, SqliteStore


async def test_a_long_wal_is_truncated_after_its_checkpoint(tmp_path: Path) -> None:
    db = tmp_path / "wal.db"
    store = SqliteStore(str(db))
    await store.open()
    try:
        blob = "x" * 100_000

        def write(i: int) -> Any:
            return lambda tx: tx.run(
                "INSERT INTO events (id, name, data, user_data, ts, received_at) VALUES (?, 'big', ?, '{}', 0, 0)",
                (f"e{i:04d}", blob),
            )

        wal, peak = Path(f"{db}-wal"), 0
        for i in range(WAL_TRUNCATE_FRAMES * 4096 // 100_000 + 20):  # well past the threshold
            await store._run(write(i))
            peak = max(peak, wal.stat().st_size if wal.exists() else 0)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            size = wal.stat().st_size if wal.exists() else 0
            peak = max(peak, size)
            if size == 0 and peak:
                break
            await asyncio.sleep(0.05)
        assert peak > WAL_TRUNCATE_FRAMES * 4096 // 2 and wal.stat().st_size == 0
        assert await store._run(lambda tx: tx.one("SELECT COUNT(*) FROM events")[0]) > 80  # nothing lost
    finally:
        await store.close()
