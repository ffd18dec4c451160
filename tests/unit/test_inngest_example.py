"""The order workflow written both ways (README, "Coming from inngest-py") defines the same
functions: the inngest-py app's ids and triggers are the Outlast app's."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from outlast.core.config import CronTrigger, EventTrigger

ROOT = Path(__file__).resolve().parents[2]


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{path.parent.name}_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the inngest SDK's own Pydantic V1-style config
def test_the_inngest_py_and_outlast_order_workflows_define_the_same_functions() -> None:
    ours = load(ROOT / "examples" / "orders.py").app
    theirs = load(ROOT / "examples" / "inngest_py" / "orders.py")
    mine = {}
    for fn in ours.functions.values():
        [trigger] = fn.config.triggers
        mine[fn.id] = (trigger.event, trigger.expression) if isinstance(trigger, EventTrigger) else (trigger.cron,)
        assert isinstance(trigger, (EventTrigger, CronTrigger))
    other = {}
    for fn in (theirs.process_order, theirs.daily_report):
        [trigger] = fn.get_config("http://127.0.0.1/api/inngest").main.triggers
        event = getattr(trigger, "event", None)
        other[fn.id.removeprefix("shop-")] = (event, trigger.expression) if event else (trigger.cron,)
    assert mine == other
