"""The async Store over the shared SQL logic; backends supply `_run` (one transaction)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from outlast.events import EventRecord
from outlast.models import Run
from outlast.storage.base import Claimed, Commit, CommitResult, PlannerSlot, RunFilter, WorkerInfo
from outlast.storage.sql import logic
from outlast.storage.sql.tx import Tx

T = TypeVar("T")


class SqlStore(PlannerSlot):
    async def _run(self, fn: Callable[[Any], T]) -> T:
        """Run `fn(tx)` in one transaction."""
        raise NotImplementedError

    def _run_now(self, fn: Callable[[Any], T]) -> T:
        """Run `fn(tx)` in one transaction and block until it is done."""
        raise NotImplementedError

    def get_run_now(self, run_id: str) -> Run | None:
        return self._run_now(lambda tx: logic.get_run(tx, run_id))

    def list_runs_now(self, flt: RunFilter) -> list[Run]:
        return self._run_now(lambda tx: logic.list_runs(tx, flt))

    async def sync_functions(self, app_id: str, configs: list[dict[str, Any]], now_ms: int) -> bool:
        return await self._run(lambda tx: logic.sync_functions(tx, app_id, configs, now_ms))

    async def load_functions(self) -> tuple[int, list[dict[str, Any]]]:
        return await self._run(logic.load_functions)

    async def functions_version(self) -> int:
        return await self._run(logic.functions_version)

    async def ingest(self, events: list[EventRecord], now_ms: int) -> list[str]:
        return await self._run(lambda tx: logic.ingest(tx, self.planner, events, now_ms))

    async def claim(self, app_id: str, owner: str, limit: int, now_ms: int, lease_ms: int) -> list[Claimed]:
        return await self._run(lambda tx: logic.claim(tx, self.planner, app_id, owner, limit, now_ms, lease_ms))

    async def extend_leases(self, owner: str, tokens: dict[str, str], until_ms: int) -> set[str]:
        return await self._run(lambda tx: logic.extend_leases(tx, owner, tokens, until_ms))

    async def commit(self, commit: Commit) -> CommitResult:
        return await self._run(lambda tx: logic.commit(tx, self.planner, commit))

    async def release(self, item_id: str, lease_token: str, due_at: int) -> None:
        await self._run(lambda tx: logic.release(tx, item_id, lease_token, due_at))

    async def next_due_at(self, app_id: str) -> int | None:
        return await self._run(lambda tx: logic.next_due_at(tx, app_id))

    async def get_run(self, run_id: str) -> Run | None:
        return await self._run(lambda tx: logic.get_run(tx, run_id))

    async def list_runs(self, flt: RunFilter) -> list[Run]:
        return await self._run(lambda tx: logic.list_runs(tx, flt))

    async def get_events(self, event_ids: list[str]) -> list[EventRecord]:
        return await self._run(lambda tx: logic.get_events(tx, event_ids))

    async def heartbeat(self, worker: WorkerInfo) -> None:
        await self._run(lambda tx: logic.heartbeat(tx, worker))

    async def list_workers(self, since_ms: int) -> list[WorkerInfo]:
        return await self._run(lambda tx: logic.list_workers(tx, since_ms))

    async def cancel_run(self, run_id: str, now_ms: int, reason: str = "cancelled by request") -> bool:
        return await self._run(lambda tx: logic.cancel_run(tx, self.planner, run_id, now_ms, reason))


__all__ = ["SqlStore", "Tx"]
