"""`app.invoke(fn, data, id=...)` is idempotent, as Inngest's event ids are: within 24 h a second
invoke with the same id starts no run and returns a handle on the first one's run, also when two
threads (each with its own client and store connection) or two processes invoke at once. On
SQLite, PostgreSQL and `memory://`; the TestEngine's window follows its virtual clock."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import outlast
from outlast import Context
from outlast.errors import OutlastError
from outlast.testing import TestEngine
from tests.acceptance.test_run_handles import GATE, ThreadWorker, make_app

ROOT = Path(__file__).resolve().parents[2]

#: a client in a process of its own: opens its store, says "ready", invokes `total` with the id
#: read from stdin once told to, prints the run id
CHILD = """
import sys
from tests.acceptance.test_run_handles import make_app
app = make_app(sys.argv[1])
app.list_runs(function_id="total")
print("ready", flush=True)
key = sys.stdin.readline().strip()
print(app.invoke("total", {"qty": 1}, id=key).run_id, flush=True)
app.close()
"""


@pytest.fixture
def served(store_url: str) -> Iterator[outlast.Outlast]:
    GATE.clear()
    app = make_app(store_url)
    worker = ThreadWorker(app, store_url)
    try:
        yield app
    finally:
        GATE.set()
        worker.close()
        app.close()


async def test_a_second_invoke_with_the_same_id_returns_the_first_run(served: outlast.Outlast) -> None:
    first = await served.invoke_async("total", {"qty": 2}, id="order-1")
    again = await served.invoke_async(served.functions["total"], {"qty": 5}, id="order-1")
    assert again.run_id == first.run_id
    assert await again.result_async(timeout=30) == {"total": 6}  # the first invoke's data
    assert served.invoke("total", {"qty": 7}, id="order-1").run_id == first.run_id  # also once it ended
    other = served.invoke("total", {"qty": 5}, id="order-2")
    assert other.run_id != first.run_id
    assert other.result(timeout=30) == {"total": 15}
    plain = [served.invoke("total", {"qty": 1}) for _ in range(2)]  # no id: a run each
    assert plain[0].run_id != plain[1].run_id
    assert len(served.list_runs(function_id="total")) == 4


async def test_an_id_taken_by_another_function_or_a_bad_id_is_a_clear_error_and_starts_nothing(
    served: outlast.Outlast,
) -> None:
    first = await served.invoke_async("total", {"qty": 2}, id="order-1")
    with pytest.raises(
        OutlastError, match="id 'order-1': an event sent in the last 24 h took this id and started no run of 'broken'"
    ):
        await served.invoke_async("broken", id="order-1")
    for bad in ("", 7):
        with pytest.raises(OutlastError, match="id: expected a non-empty string"):
            await served.invoke_async("total", id=bad)  # type: ignore[arg-type]
    assert [r.id for r in served.list_runs(function_id="total")] == [first.run_id]
    assert served.list_runs(function_id="broken") == []


def test_concurrent_invokes_with_one_id_from_two_threads_start_one_run(served: outlast.Outlast, store_url: str) -> None:
    """Each thread has its own client (its own store connection) where the store is shared;
    `memory://` is one store, so both threads use the served client."""
    second = served if store_url == "memory://" else make_app(store_url)
    try:
        clients = [served, second]
        for k in range(5):
            start = threading.Barrier(2)

            def invoke(app: outlast.Outlast, key: str = f"same-{k}", start: threading.Barrier = start) -> str:
                start.wait(30)
                return app.invoke("total", {"qty": 1}, id=key).run_id

            with ThreadPoolExecutor(2) as pool:
                run_ids = list(pool.map(invoke, clients))
            assert run_ids[0] == run_ids[1]
        assert len(served.list_runs(function_id="total")) == 5
    finally:
        if second is not served:
            second.close()


def test_concurrent_invokes_with_one_id_from_two_processes_start_one_run(
    served: outlast.Outlast, store_url: str
) -> None:
    if store_url == "memory://":
        pytest.skip("an in-memory store is seen by one process only")
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, store_url],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("same-id\n")
            child.stdin.flush()
        outputs = [child.communicate(timeout=60) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert [child.returncode for child in children] == [0, 0], [err for _, err in outputs]
    run_ids = {out.strip() for out, _ in outputs}
    assert len(run_ids) == 1
    [run] = served.list_runs(function_id="total")
    assert run.id in run_ids
    assert served.run_handle(run.id).result(timeout=30) == {"total": 3}


async def test_the_test_engines_invoke_id_holds_for_24_hours_of_its_virtual_clock(store_url: str) -> None:
    app = outlast.Outlast("handles", database_url=store_url)

    @app.function(id="echo", trigger="h/echo", retries=0)
    async def echo(ctx: Context) -> Any:
        return ctx.event.data["n"]

    async with TestEngine(app, database_url=store_url) as t:
        first = await t.invoke(echo, {"n": 1}, id="k")
        await t.run_until_idle()
        t.advance("23h")
        assert (await t.invoke("echo", {"n": 2}, id="k")).run_id == first.run_id
        t.advance("1h")  # the id's 24 h are over: it starts a run again
        later = await t.invoke("echo", {"n": 3}, id="k")
        await t.run_until_idle()
        assert later.run_id != first.run_id
        assert [await h.result_async(timeout=5) for h in (first, later)] == [1, 3]
        assert later.result(timeout=5) == 3  # the blocking form, from this test's running loop
        assert (await t.invoke("echo", {"n": 4}, id="k")).run_id == later.run_id
