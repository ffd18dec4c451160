"""How long a SQLite store's write waits after another process lets go of the write lock.

    python -m bench.write_lock [--seconds 5]

Another process (plain `sqlite3`, as a sender ingesting a large batch would) holds the file's
write lock for 20 ms, lets go for 20 ms, and so on; this process writes through a `SqliteStore`
one request after another. For each write that had to wait for the other process, the table
gives the time from the other's COMMIT to the end of ours: what the wait for the lock adds
beyond the other's work (SQLite's own busy handler sleeps 1, 2, 5, 10 ... 100 ms between tries).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sqlite3
import tempfile
import time
from multiprocessing.sharedctypes import Synchronized

from bench.workloads import table
from outlast.storage.sqlite import SqliteStore

HOLD_S = 0.02


def hold_the_lock(path: str, until: float, last_commit: Synchronized[float]) -> None:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    while time.time() < until:
        conn.execute("BEGIN IMMEDIATE")
        started = time.perf_counter()
        while time.perf_counter() - started < HOLD_S:
            conn.execute("INSERT INTO meta (name, value) VALUES (hex(randomblob(8)), 1)")
        conn.execute("COMMIT")
        last_commit.value = time.time()
        time.sleep(HOLD_S)


async def waits_after_release(seconds: float) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(f"{tmp}/lock.db")
        await store.open()
        until = time.time() + seconds + 1  # the other process's start included
        spawn = multiprocessing.get_context("spawn")  # not fork: this process has threads in SQLite
        last_commit: Synchronized[float] = spawn.Value("d", 0.0)
        other = spawn.Process(target=hold_the_lock, args=(store.path, until, last_commit))
        other.start()
        lags = []
        try:
            while time.time() < until:
                sent = time.time()
                await store._run(lambda tx: tx.run("INSERT INTO meta (name, value) VALUES (hex(randomblob(8)), 2)"))
                done = time.time()
                if done - sent > 0.002 and last_commit.value > sent:  # it waited for the other's commit
                    lags.append((done - last_commit.value) * 1000)
        finally:
            other.join()
            await store.close()
    return sorted(lags)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    lags = asyncio.run(waits_after_release(args.seconds))
    row = {
        "waited_writes": len(lags),
        "p50_ms": lags[len(lags) // 2] if lags else 0.0,
        "p90_ms": lags[int(len(lags) * 0.9)] if lags else 0.0,
        "max_ms": lags[-1] if lags else 0.0,
    }
    print("from another process's COMMIT to the end of a write that waited for it (SQLite)\n")
    print(table([row], ["waited_writes", "p50_ms", "p90_ms", "max_ms"]))


if __name__ == "__main__":
    main()
