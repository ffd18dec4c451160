"""The in-memory queue: items, their due heaps, leases, and choosing what a claim takes.

Each app has a heap of `(due_at, rowid, version, item id)` entries. Every write of an item gives it
a new version (from a counter that never goes back) and pushes one entry; only the entry with the
item's current version is live, the others are dropped as they surface or compacted once they
dominate. Ties on `due_at` go to the older item (SQLite's rowid order).

Concurrency keys. A claim skips items with a key at its limit. An item found due while one of its
keys is full is *parked*: its entry moves to a heap of that key, which claims leave alone while the
key stays full and merge back in by its head once the key has room. So thousands of items waiting
on one full key cost one parking each, not a scan per claim. Any heap an item is in (its app's, or
a parked heap of one of its keys) is a right place for it: a parked heap is only skipped when its
key is full, and then all of its items are excluded anyway.

A claim costs O(leased items with keys + parked keys) to count busy keys (as SQL's GROUP BY) and
start the merge, plus O(log n) per entry it pops: at most `2 * limit` candidates, the items it
parks (each once per parking), and dead entries.
"""

from __future__ import annotations

import heapq
from dataclasses import replace
from typing import Any

from outlast.core.ids import new_ulid
from outlast.storage.memory.tables import MIN_HEAP, Entry, Heap, Item, Tables, dumps


class Queue(Tables):
    def _enqueue(self, app_id: str, kind: str, run_id: str | None, due: int, payload: Any = None,
                 keys: list[tuple[str, int]] | None = None, item_id: str | None = None) -> None:
        """Insert an item; it keeps at most two concurrency keys (SQL's ck1 and ck2)."""
        text = None if payload is None else dumps(payload)
        self._put_item(Item(item_id or new_ulid(), app_id, kind, run_id, due, text, tuple((keys or [])[:2]),
                            rowid=next(self._counter)))

    def _put_item(self, item: Item, park: str | None = None) -> None:
        """Insert or replace an item under a new version, with a live entry in its app's heap, or
        in the parked heap of `park` (one of its concurrency keys)."""
        item = replace(item, version=next(self._counter))
        heapq.heappush(self._heap(item.app_id, park).entries, item.entry())
        self._touched.add((item.app_id, park))
        if item.id not in self._items and item.run_id is not None:
            self._set_in(self._items_by_run, item.run_id, item.id, None)
        self._set(self._items, item.id, item)  # rolled back, it gets its old version: the new entry dies
        if item.lease_token is not None and item.keys:
            if item.id not in self._leased:
                self._set(self._leased, item.id, None)
        else:
            self._delete(self._leased, item.id)

    def _delete_item(self, item_id: str) -> None:
        item = self._items.get(item_id)  # may be gone already: a timeout fired earlier in the claim
        if item is None:
            return
        self._delete(self._items, item_id)
        self._delete(self._leased, item_id)
        if item.run_id is not None:
            self._delete_in(self._items_by_run, item.run_id, item_id)

    def _relet(self, item_id: str, token: str, **changes: Any) -> bool:
        """Change a leased item if `token` still holds its lease; False when it does not."""
        item = self._items.get(item_id)
        if item is None or item.lease_token is None or item.lease_token != token:
            return False
        self._put_item(replace(item, **changes))
        return True

    # -- heaps ----------------------------------------------------------------------------------

    def _heap(self, app_id: str, park: str | None = None) -> Heap:
        heaps = self._due if park is None else self._parked.setdefault(app_id, {})
        key = app_id if park is None else park
        heap = heaps.get(key)
        if heap is None:
            heap = heaps[key] = Heap()  # an empty heap left behind by a rollback is harmless
        return heap

    def _live(self, entry: Entry) -> bool:
        item = self._items.get(entry[3])
        return item is not None and item.version == entry[2]

    def _head(self, app_id: str, park: str | None, heap: Heap) -> Entry | None:
        """A heap's smallest live entry, dropping dead ones on the way."""
        entries = heap.entries
        while entries and not self._live(entries[0]):
            self._heap_pop(entries)
            self._touched.add((app_id, park))
        return entries[0] if entries else None

    def _next_due(self, app_id: str) -> int | None:
        """When the app's earliest item is due, parked ones included (SQL: MIN(due_at))."""
        heads = [self._head(app_id, key, heap) for key, heap in self._parked.get(app_id, {}).items()]
        if (heap := self._due.get(app_id)) is not None:
            heads.append(self._head(app_id, None, heap))
        return min((h[0] for h in heads if h is not None), default=None)

    def _settle(self) -> None:
        """Compact the heaps this call changed once dead entries dominate; drop empty parked heaps."""
        for app_id, park in self._touched:
            heap = self._due.get(app_id) if park is None else self._parked.get(app_id, {}).get(park)
            if heap is None:
                continue
            if park is not None and not heap.entries:
                del self._parked[app_id][park]
                if not self._parked[app_id]:
                    del self._parked[app_id]
            elif len(heap.entries) > heap.limit:
                heap.entries[:] = [e for e in heap.entries if self._live(e)]
                heapq.heapify(heap.entries)
                heap.limit = max(MIN_HEAP, 2 * len(heap.entries))
        self._touched.clear()

    # -- choosing what a claim takes ------------------------------------------------------------

    def _busy_keys(self, now: int) -> dict[str, list[int]]:
        """Concurrency keys with leased (executing) items, in every app: key -> [count, limit].

        As SQL groups them: per column, the count of leases and the largest limit; a key found in
        both columns adds the counts and keeps the first column's limit."""
        columns: tuple[dict[str, list[int]], dict[str, list[int]]] = ({}, {})
        for item_id in self._leased:
            item = self._items[item_id]
            if item.due_at <= now:
                continue  # the lease has expired
            for column, (key, most) in zip(columns, item.keys, strict=False):
                entry = column.get(key)
                if entry is None:
                    column[key] = [1, most]
                else:
                    entry[0] += 1
                    entry[1] = max(entry[1], most)
        busy: dict[str, list[int]] = {}
        for column in columns:
            for key, (count, most) in column.items():
                busy.setdefault(key, [0, most])[0] += count
        return busy

    def _take_due(self, app_id: str, limit: int, now: int) -> list[Item]:
        """The due items a claim takes, oldest first, while each of their keys has a free slot.

        Exactly SQL's choice: keys already full are excluded, then at most `limit` items (`2 * limit`
        when any key is busy; no limit when negative) are read in due order, and each is taken if its
        keys still have room, counting the items taken before it."""
        busy = self._busy_keys(now)
        full = {key for key, (count, most) in busy.items() if count >= most}
        window = limit * 2 if busy else limit
        sources: list[tuple[str | None, list[Entry]]] = [
            (key, heap.entries) for key, heap in self._parked.get(app_id, {}).items() if key not in full]
        if (main := self._due.get(app_id)) is not None:
            sources.append((None, main.entries))
        merge = [(entries[0], i) for i, (_, entries) in enumerate(sources) if entries]
        heapq.heapify(merge)
        taken: list[Item] = []
        parks: list[tuple[Item, str]] = []  # pushed after the merge: its sources must not change under it
        read = 0
        while merge and read != window and len(taken) != limit:
            entry, i = merge[0]
            if entry[0] > now:
                break
            park, entries = sources[i]
            self._heap_pop(entries)
            self._touched.add((app_id, park))
            if entries:
                heapq.heapreplace(merge, (entries[0], i))
            else:
                heapq.heappop(merge)
            item = self._items.get(entry[3])
            if item is None or item.version != entry[2]:
                continue
            blocked = next((key for key, _ in item.keys if key in full), None)
            if blocked is None:
                read += 1
                blocked = next((key for key, most in item.keys if busy.get(key, [0, most])[0] >= most), None)
            if blocked is not None:
                parks.append((item, blocked))
                continue
            for key, most in item.keys:
                busy.setdefault(key, [0, most])[0] += 1
            taken.append(item)
        for item, key in parks:
            self._put_item(item, park=key)
        return taken
