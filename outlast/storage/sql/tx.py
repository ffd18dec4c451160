"""A minimal transaction interface both SQL backends provide (DB-API underneath)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

Row = tuple[Any, ...]


class Tx(Protocol):
    #: appended to the claim's candidate query (PostgreSQL: "FOR UPDATE SKIP LOCKED")
    lock_suffix: str
    #: appended to reads of rows the transaction will update (PostgreSQL: "FOR UPDATE")
    row_lock: str
    #: run first in every claim so concurrency counts are exact (PostgreSQL: an advisory lock)
    claim_lock: str | None

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute; return the number of rows changed."""
        ...

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


def marks(n: int) -> str:
    return ",".join("?" * n)
