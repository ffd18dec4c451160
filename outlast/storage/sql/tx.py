"""A minimal transaction interface both SQL backends provide (DB-API underneath)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

Row = tuple[Any, ...]


class Tx(Protocol):
    #: appended to the claim's candidate query (PostgreSQL: "FOR UPDATE SKIP LOCKED")
    lock_suffix: str
    #: appended to reads of rows the transaction will update (PostgreSQL: "FOR UPDATE")
    row_lock: str
    #: "sqlite" or "postgresql", for the few statements written differently for each (where one
    #: statement can do on PostgreSQL what takes several round trips otherwise)
    dialect: str
    #: an expression that takes the lock a claim holds while it counts concurrency keys, so counts
    #: are exact (PostgreSQL: a transaction advisory lock; SQLite's writers are serialised anyway)
    claim_lock: str | None
    #: reads that later statements of the same transaction reuse (see `waits.wait_fields`); the
    #: backend empties it when a transaction begins
    memo: dict[Any, Any]

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute; return the number of rows changed."""
        ...

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    def insert_many(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows that conflict with none stored (a conflict fails the statement), all at once:
        COPY on PostgreSQL, multi-row INSERTs on SQLite."""
        ...

    def stored(self, table: str, column: str, values: Sequence[Any]) -> set[Any]:
        """Which of the values are stored in `table.column` (an indexed column), in a few statements."""
        ...

    def tables(self, rows: Sequence[Sequence[Any]], types: Sequence[str]) -> Iterator[tuple[str, list[Any]]]:
        """The rows as a few queries (each with its parameters) to use as `WITH v(...) AS (query)`;
        `types` are the columns' SQL types. PostgreSQL: one statement's text whatever the number of
        rows (`unnest` of one array per column), so it is parsed and prepared once; SQLite: VALUES
        lists within its parameter limit."""
        ...


def marks(n: int) -> str:
    return ",".join("?" * n)
