"""Wake-ups across processes on SQLite (outlast/storage/wakeup.py): an idle worker in another
process than the sender starts new work without waiting for its poll; sockets left by dead
processes are removed by the next ring and break nothing; closing a store removes its socket."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import outlast
from outlast.core.planner import Planner
from outlast.events import Event
from outlast.storage.memory import MemoryStore
from outlast.storage.sqlite import SqliteStore
from outlast.storage.wakeup import wake_directory
from tests.apps.shop import app as shop
from tests.storage.contract import FN, T0, define, event

ROOT = Path(__file__).resolve().parents[2]
#: the longest poll allowed: with wake-ups the worker polls ten times more rarely still
NO_POLL_MS = "60000"
#: far below the poll: only a wake-up can start the work this soon
PROMPTLY_S = 20.0


def sockets(db: Path) -> list[str]:
    directory = wake_directory(str(db))
    assert directory is not None
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


def completed(client: outlast.Outlast) -> int:
    return sum(r.status == "completed" for r in client.list_runs(function_id="ship"))


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PROMPTLY_S
    while not condition():
        assert time.monotonic() < deadline, f"{what} not within {PROMPTLY_S} s"
        time.sleep(0.01)


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`outlast worker` serving the shop app in its own process, polling only every 60 s."""
    env = {
        **os.environ,
        "OUTLAST_DATABASE_URL": f"sqlite:///{tmp_path}/shop.db",
        "PYTHONPATH": str(ROOT),
        "OUTLAST_POLL_INTERVAL_MS": NO_POLL_MS,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "outlast.cli", "worker", "tests.apps.shop:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield proc
    proc.terminate()
    proc.wait(30)


def test_an_idle_worker_in_another_process_starts_each_sent_event_without_waiting_for_its_poll(
    tmp_path: Path, worker: subprocess.Popen[bytes]
) -> None:
    """The worker listens before its first claim, so no send is missed. It may take order 0 in that
    first claim, and an order in the claim it makes on finishing a run; every other order reaches a
    worker idle until its poll, ten minutes away: only a wake-up starts it within PROMPTLY_S."""
    db = tmp_path / "shop.db"
    wait_until(lambda: bool(sockets(db)), "the worker listening")
    sender = outlast.Outlast(shop.id, database_url=f"sqlite:///{db}")
    try:
        for order in range(3):
            sender.send(Event(name="shop/ship", data={"order_id": order}))
            wait_until(lambda n=order + 1: completed(sender) == n, f"run {order} completed")
        assert sorted(r.output["label"] for r in sender.list_runs(function_id="ship")) == ["L-0", "L-1", "L-2"]
    finally:
        sender.close()
    worker.terminate()
    worker.wait(30)
    assert sockets(db) == []  # a worker that stops removes its socket


async def assert_ingest_rings_another_store(db: Path) -> None:
    """A store listening on `db` is rung when another store on the same file ingests."""
    listening, sending = await open_store(db), await open_store(db)
    rung = threading.Event()
    try:
        assert listening.add_listener(rung.set)
        assert rung.wait(10)  # once at first, for what was committed before it listened
        rung.clear()
        await sending.ingest([event()], T0)
        assert rung.wait(10)
    finally:
        await sending.close()
        await listening.close()


async def test_a_commit_of_new_work_rings_listeners_of_other_stores_on_the_same_file(tmp_path: Path) -> None:
    await assert_ingest_rings_another_store(tmp_path / "a.db")


async def test_sockets_of_dead_processes_are_removed_by_the_next_ring_and_break_nothing(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    directory = wake_directory(str(db))
    assert directory is not None
    os.makedirs(directory)
    dead = os.path.join(directory, "1-deadbeef.sock")
    code = "import socket, os, sys; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).bind(sys.argv[1]); os._exit(0)"
    subprocess.run([sys.executable, "-c", code, dead], check=True)
    assert os.path.exists(dead)  # a process killed while listening leaves its socket behind

    listening, sending = await open_store(db), await open_store(db)
    rung = threading.Event()
    try:
        listening.add_listener(rung.set)
        assert rung.wait(10)
        rung.clear()
        await sending.ingest([event()], T0)
        assert rung.wait(10)  # the live listener still hears of it
        # the same ring unlinks the dead socket, possibly just after it rang the live one
        wait_until(lambda: not os.path.exists(dead), "the dead socket removed")
    finally:
        await sending.close()
        await listening.close()
    assert not os.path.exists(directory)  # the last listener to close removes the directory


async def test_closing_a_store_removes_its_socket(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    store = await open_store(db)
    assert store.add_listener(lambda: None)
    assert len(sockets(db)) == 1
    await store.close()
    assert sockets(db) == []


async def test_a_database_path_too_long_for_a_socket_name_listens_in_the_temp_directory(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    db = deep / "a.db"
    directory = wake_directory(str(db))
    assert directory is not None and not directory.startswith(str(deep))
    await assert_ingest_rings_another_store(db)


def test_a_database_in_memory_has_no_wake_ups() -> None:
    assert SqliteStore(":memory:").add_listener(lambda: None) is False
    assert MemoryStore().add_listener(lambda: None) is False  # no other process shares it: workers poll


async def open_store(db: Path) -> SqliteStore:
    store = SqliteStore(str(db))
    store.bind(Planner())
    await store.open()
    await define(store, FN)
    return store
