"""The contract suite's store: a fresh, open store of the parametrised backend with the real
planner bound and the contract app's basic function (`contract.FN`) defined."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from outlast.core.planner import Planner
from outlast.storage.base import Store
from tests.storage.contract import FN, define


@pytest.fixture
async def store(make_store: Callable[[], Store]) -> AsyncIterator[Store]:
    s = make_store()
    s.bind(Planner())
    await s.open()
    await define(s, FN)
    yield s
    await s.close()
