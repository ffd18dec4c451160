"""Stored functions: merge and replace syncs, pruning what no live worker serves, and the cron
items that follow the stored functions."""

from __future__ import annotations

from dataclasses import replace

from outlast.core.config import FunctionConfig, Runtime
from outlast.core.cron import parse_schedule
from outlast.core.models import AppScope, WorkerInfo
from outlast.storage.base import Store
from tests.storage.contract import APP, APP_ID, FN, T0, define, function

HOUR = 3_600_000


async def ids(store: Store) -> list[tuple[str, str]]:
    return [(c.app_id, c.id) for c in (await store.load_functions())[1]]


async def test_merge_keeps_other_functions_of_the_app_and_replace_makes_it_exactly_the_given_set(store: Store) -> None:
    await define(store, function("b"), function("a"))
    await store.sync_functions("other", [replace(function("z"), app_id="other")], T0)
    assert await ids(store) == [(APP_ID, "a"), (APP_ID, "b"), (APP_ID, "fn"), ("other", "z")]
    version = await store.functions_version()
    assert not await store.sync_functions(APP_ID, [function("a")], T0 + 1)  # merge: nothing changed
    assert await store.functions_version() == version
    assert await store.sync_functions(APP_ID, [function("a")], T0 + 2, mode="replace")
    assert await ids(store) == [(APP_ID, "a"), ("other", "z")]
    assert await store.functions_version() > version


async def test_cron_items_follow_the_stored_functions(store: Store) -> None:
    hourly, daily = parse_schedule("0 * * * *"), parse_schedule("0 0 * * *")
    await define(store, function("tick", "cron:0 * * * *"))
    assert await store.next_due_at(APP) == hourly.next_after(T0)
    await define(store, function("tick", "cron:0 * * * *"), now=T0 + 5 * HOUR)  # unchanged: keeps its due time
    assert await store.next_due_at(APP) == hourly.next_after(T0)
    await define(store, function("tick", "cron:0 0 * * *"), now=T0 + 5 * HOUR)  # changed: next tick from now
    assert await store.next_due_at(APP) == daily.next_after(T0 + 5 * HOUR)
    await define(store, FN, mode="replace", now=T0 + 6 * HOUR)  # gone: its item too
    assert await store.next_due_at(APP) is None


async def test_prune_forgets_local_functions_nobody_served_lately_and_their_crons(store: Store) -> None:
    await define(store, function("kept", "cron:0 * * * *"), function("stale", "cron:*/5 * * * *"))
    served = replace(function("served"), runtime=Runtime(kind="http", url="http://127.0.0.1:1/api"))
    await store.sync_functions("served-app", [replace(served, app_id="served-app")], T0, mode="replace")
    worker = WorkerInfo(
        id="w", app_id=APP_ID, host="h", pid=1, started_at=T0, heartbeat_at=T0 + HOUR, functions=["kept", "fn"]
    )
    await store.heartbeat(worker)  # marks kept and fn seen an hour later
    version = await store.functions_version()
    assert await store.prune_functions(T0 + 1) == [(APP_ID, "stale")]
    assert await ids(store) == [(APP_ID, "fn"), (APP_ID, "kept"), ("served-app", "served")]
    assert await store.functions_version() > version
    assert await store.next_due_at(APP) == parse_schedule("0 * * * *").next_after(T0)  # only kept's cron
    assert await store.prune_functions(T0 + 2) == []
    assert await store.prune_functions(T0 + 2 * HOUR) == [(APP_ID, "fn"), (APP_ID, "kept")]
    assert await store.next_due_at(APP) is None
    assert await ids(store) == [("served-app", "served")]
    assert await store.next_due_at(AppScope(app_id="served-app")) is None


async def test_a_provisional_sync_stores_only_for_an_app_nobody_served_and_the_first_merge_replaces_it(
    store: Store,
) -> None:
    assert await store.sync_functions("script", [fn("old"), fn("kept")], T0, mode="provisional")
    assert await ids(store) == [(APP_ID, "fn"), ("script", "kept"), ("script", "old")]
    assert await store.prune_functions(T0 + HOUR) == [(APP_ID, "fn")]  # provisional ones wait for a worker
    assert await store.sync_functions("script", [fn("kept", "c/other"), fn("new")], T0 + 1)
    assert await ids(store) == [("script", "kept"), ("script", "new")]
    version = await store.functions_version()
    assert not await store.sync_functions("script", [fn("kept"), fn("old")], T0 + 2, mode="provisional")
    assert await ids(store) == [("script", "kept"), ("script", "new")]
    triggers = [c.triggers for c in (await store.load_functions())[1]]
    assert triggers == [fn("kept", "c/other").triggers, fn("new").triggers]
    assert await store.functions_version() == version


def fn(fid: str, trigger: str = "c/go") -> FunctionConfig:
    return replace(function(fid, trigger), app_id="script")


async def test_settling_provisional_functions_keeps_the_served_ones_as_seen_and_deletes_the_rest(
    store: Store,
) -> None:
    assert await store.sync_functions("script", [fn("served"), fn("gone")], T0, mode="provisional")
    version = await store.functions_version()
    assert await store.settle_provisional("script", {"served", "elsewhere"}, T0 + 1)
    assert await ids(store) == [(APP_ID, "fn"), ("script", "served")]
    assert await store.functions_version() > version
    assert not await store.settle_provisional("script", {"served"}, T0 + 2)  # nothing provisional is left
    assert await store.prune_functions(T0 + 1 + HOUR) == [(APP_ID, "fn"), ("script", "served")]  # seen: prunable
    assert not await store.settle_provisional("nobody", set(), T0)
