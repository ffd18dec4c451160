"""Group commit, written once for the backends that have it (SQLite files, PostgreSQL).

A connection thread takes every request waiting in its queue (a request is one Store call,
`fn(tx)`), runs them in one transaction, commits once, then answers them: nobody sees a result
before the COMMIT that holds it (DESIGN.md §2).

What is atomic. Each request is all-or-nothing. A request that raises is undone alone and gets
its exception; the others commit. A failure of the whole transaction (the connection broke, the
disk is full) is raised to the backend, which answers every request of the group (or runs the
group again) and commits nothing of it.

Two passes. Requests rarely fail, so a group first runs without savepoints (two statements a
request fewer); if a request fails, that transaction is rolled back (`IsolationNeededError`) and
the group runs again with each request in its own savepoint, so its failure is undone alone.
Requests are functions of the transaction only, so running one again is safe. In the first pass
the group's checkpoints and run ends run together, a few statements for many
(`batches.run_together`), after the claims (which a backend may put first: see `Request`).

A backend supplies a `Session` for what differs by dialect: how a transaction begins, how
control statements travel, which failures are a request's own and which the transaction's, and
how it commits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from outlast.storage.sql.batches import run_together
from outlast.storage.sql.intake import Intake
from outlast.storage.sql.replies import Outbox, Reply
from outlast.storage.sql.store import SqlStore
from outlast.storage.sql.tx import Tx
from outlast.storage.sql.waits import count_committed_checks

T = TypeVar("T")

#: per request: (True, its result) or (False, the exception its caller gets)
Outcomes = list[tuple[bool, Any]]
#: control statements of the isolated pass (the first savepoint is the session's to begin)
NEXT_SAVEPOINT = ("RELEASE SAVEPOINT op", "SAVEPOINT op")
UNDO_REQUEST = "ROLLBACK TO SAVEPOINT op"


#: One Store call waiting for its group: (fn, reply, notify, claim). `notify`: once committed,
#: tell listeners in other processes (the request may have made work due); `claim`: a claim
#: (PostgreSQL runs these first in a group: the claim lock before any row lock). A plain tuple:
#: a dataclass costs a fifth of a microsecond more per request, 2% of a trivial write's CPU.
Request = tuple[Callable[[Any], Any], Reply, bool, bool]


class IsolationNeededError(Exception):
    """A request of a group run without savepoints failed: run the group again, isolated."""


class Session(Protocol):
    """One connection's transactions, as a dialect runs them."""

    def begin(self, *, savepoint: bool) -> Tx:
        """Begin a transaction (and with `savepoint`, the first request's savepoint); return the
        `Tx` its requests run on."""
        ...

    def control(self, *statements: str) -> None:
        """Run constant statements without parameters (in one round trip where the dialect can)."""
        ...

    def own_failure(self, exc: Exception) -> Exception:
        """A request's failure as its caller gets it; raise instead when the whole transaction
        failed with it (the connection broke, or the database must run the group again)."""
        ...

    def rollback(self) -> None:
        """End the transaction, applying nothing (if the connection still can)."""
        ...

    def commit(self, *, notify: bool, outcomes: Outcomes) -> None:
        """Commit; `notify`: some request asked that listeners be told once it is committed."""
        ...


def run_group(session: Session, group: Sequence[Request]) -> Outcomes:
    """Run the group in one transaction and commit it; each request's outcome, in order."""
    try:
        return _transaction(session, group, isolate=False)
    except IsolationNeededError:
        return _transaction(session, group, isolate=True)


def _transaction(session: Session, group: Sequence[Request], *, isolate: bool) -> Outcomes:
    tx = session.begin(savepoint=isolate)
    outcomes: Outcomes = []
    try:
        together: dict[int, Any] | None = {} if isolate else None
        for i, (fn, _reply, _notify, claim) in enumerate(group):
            if isolate and i:
                session.control(*NEXT_SAVEPOINT)
            if together is None and not claim:  # claims go first: see `Request`
                together = _run_together(session, tx, group)
            if together and i in together:
                outcomes.append((True, together[i]))
                continue
            try:
                outcomes.append((True, fn(tx)))
            except Exception as exc:
                outcomes.append((False, session.own_failure(exc)))
                if isolate:
                    session.control(UNDO_REQUEST)
                elif len(group) > 1:
                    raise IsolationNeededError() from exc
        if not any(ok for ok, _ in outcomes):
            session.rollback()
            return outcomes
    except BaseException:
        session.rollback()
        raise
    session.commit(notify=notifies(group, outcomes), outcomes=outcomes)
    count_committed_checks(tx)  # before anyone is told of this commit
    return outcomes


def _run_together(session: Session, tx: Tx, group: Sequence[Request]) -> dict[int, Any]:
    """`batches.run_together` for the first pass (a request's failure isolates the group)."""
    if len(group) < 2:
        return {}
    try:
        return run_together(tx, [r[0] for r in group])
    except Exception as exc:
        session.own_failure(exc)  # raises if the whole transaction failed
        raise IsolationNeededError() from exc


def notifies(group: Sequence[Request], outcomes: Outcomes) -> bool:
    """Whether a request that asked to notify listeners succeeded."""
    return any(ok and r[2] for r, (ok, _) in zip(group, outcomes, strict=True))


def deliver(group: Sequence[Request], outcomes: Outcomes) -> None:
    """Answer a group's callers, waking each event loop once."""
    outbox = Outbox()
    for request, (ok, value) in zip(group, outcomes, strict=True):
        outbox.put(request[1], ok, value)
    outbox.send()


def refuse(requests: Sequence[Request], error: Exception) -> None:
    """Answer requests that will not run (the store closed behind a thread that failed)."""
    deliver(requests, [(False, error)] * len(requests))


class GroupCommitStore(SqlStore):
    """A store whose calls queue up (`Intake`) for connection threads that group-commit them."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self._requests: Intake[Request] = Intake(name)

    def _submit(self, fn: Callable[[Any], Any], reply: Reply, *, notify: bool = False, claim: bool = False) -> Any:
        """Queue a request; its reply's future."""
        self._requests.put((fn, reply, notify, claim))
        return reply.future

    async def _run(self, fn: Callable[[Any], T], notify: bool = False) -> T:
        result: T = await self._submit(fn, Reply.for_running_loop(), notify=notify)
        return result
