"""A publish is a step: a worker process killed mid-run (after a publish, before the next) leaves
a run that another worker finishes without publishing the committed message again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import outlast
from outlast.events import Event
from outlast.storage import open_store
from tests.acceptance.test_worker_crashes import client, keep_a_worker_running
from tests.apps.crashers import POISON_EXIT_CODE

__all__ = ["client"]  # the fixture, shared with the worker crash tests


def test_a_killed_worker_does_not_publish_a_committed_message_twice(client: outlast.Outlast, tmp_path: Path) -> None:
    client.send(Event(name="crash/publish", data={"id": "k1", "marker": str(tmp_path / "died")}))

    def finished() -> bool:
        return [r.status for r in client.list_runs(limit=10)] == ["completed"]

    exits = keep_a_worker_running(client, finished)
    assert exits == [POISON_EXIT_CODE]  # the first worker died mid-run, the second finished it

    async def messages() -> list[tuple[int, str]]:
        store = open_store(client.settings.database_url)
        await store.open()
        try:
            return [(m.id, m.data) for m in await store.read_messages(channels=["crash:k1"], after_id=0)]
        finally:
            await store.close()

    got = asyncio.run(messages())
    assert [data for _, data in got] == ["before", "after"]
    assert got[0][0] < got[1][0]
