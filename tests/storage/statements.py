"""The statements a store's transactions run, recorded (for tests of how many a call costs)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from outlast.storage.postgres import PgTx
from outlast.storage.sqlite import SqliteTx

#: the methods that send a statement (SQLite's `one` calls its `all`)
_METHODS = {PgTx: ("all", "one", "run", "many"), SqliteTx: ("all", "run", "many")}


@contextmanager
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The SQL of every statement the stores' requests run while the block runs (not the
    backends' own BEGIN, COMMIT and transaction-id reads), in order."""
    seen: list[str] = []
    with monkeypatch.context() as patch:
        for cls, names in _METHODS.items():
            for name in names:
                patch.setattr(cls, name, _recording(getattr(cls, name), seen))
        yield seen


def _recording(method: Any, seen: list[str]) -> Any:
    def record(self: Any, sql: str, *args: Any) -> Any:
        if not sql.startswith("SELECT txid_current_if_assigned()"):  # PostgreSQL's COMMIT
            seen.append(sql)
        return method(self, sql, *args)

    return record


@contextmanager
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """What PostgreSQL stores' writers send and wait for the answer of while the block runs: each
    statement, and each string of control statements sent together (BEGIN, the transaction's id,
    NOTIFY, COMMIT), in order."""
    seen: list[str] = []
    with monkeypatch.context() as patch:
        execute, control = PgTx._execute, PgTx.control

        def sent(self: PgTx, sql: str, params: Any) -> Any:
            seen.append(sql)
            return execute(self, sql, params)

        def controlled(self: PgTx, statements: bytes) -> None:
            seen.append(statements.decode())
            control(self, statements)

        patch.setattr(PgTx, "_execute", sent)
        patch.setattr(PgTx, "control", controlled)
        for name in ("many", "insert_many", "stored"):
            patch.setattr(PgTx, name, _recording(getattr(PgTx, name), seen))
        yield seen
