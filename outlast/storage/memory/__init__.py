"""The in-memory store (`memory://`): the reference backend, pure Python, one process.

It follows `outlast.storage.sql.logic` step for step, over dicts keyed like the SQL indexes:

- `tables`: the rows and tables, and the undo journal;
- `queue`: items, their due heaps and leases, and the concurrency-aware choice of what a claim takes;
- `ingest`: events, runs under flow control (rate limit, idempotency, singleton, debounce, batch,
  throttle), waits, cancellation, and function and cron syncing;
- `store`: `MemoryStore` itself: the Store protocol, claiming, committing and reading.

Atomicity: one `threading.Lock` serialises every call, and a writing call keeps an undo journal.
Every change goes through `_set`/`_delete` (one dict slot) or `_heap_pop` (one heap entry), which
record how to reverse it; if the call raises anywhere (the planner, a value that is not JSON) the
journal is replayed backwards, leaving the state as it was. Rows are frozen dataclasses, replaced
and never mutated, so an undo only needs the old row. Heap pushes are not journaled: a pushed
entry names an item version, which a rollback takes back, so the entry is simply dead.

Isolation: JSON values are stored as `jsonutil` text, as in SQL, and decoded into fresh objects on
the way out, so callers never share objects with the store, and values that are not JSON fail the
same way.
"""

from outlast.storage.memory.store import MemoryStore

__all__ = ["MemoryStore"]
