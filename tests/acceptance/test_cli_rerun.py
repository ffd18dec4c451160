"""`outlast rerun` against a real SQLite file: from the start, and from a step with an edited output.

The command runs in a thread: it runs its own event loop, as it does from a shell."""

from __future__ import annotations

import asyncio
from pathlib import Path

from outlast import Event
from outlast.testing import TestEngine
from tests.acceptance.test_cli import cli
from tests.apps.shop import app as shop


async def test_rerun_from_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    async with TestEngine(shop, database_url=f"sqlite:///{db}") as t:
        await t.send(Event(name="shop/order.created", data={"order_id": "o1", "total": 5000}))
        await t.run_until_idle()
        [failed] = t.runs(function_id="process-order")
        assert failed.status == "failed"

        edited = (
            await asyncio.to_thread(cli, db, "rerun", failed.id, "--from-step", "charge", "--output", '{"charged": 3}')
        ).out.strip()
        again = (await asyncio.to_thread(cli, db, "rerun", failed.id)).out.strip()
        t.advance("1m")  # the CLI stamped the reruns with the wall clock, past the virtual one
        await t.run_until_idle()
        new, plain = t.get_run(edited), t.get_run(again)
    assert new is not None and new.status == "completed" and new.output["payment"] == {"charged": 3}
    assert plain is not None and plain.status == "failed" and plain.event_ids == failed.event_ids

    bad = await asyncio.to_thread(cli, db, "rerun", failed.id, "--from-step", "charge", "--output", "{oops")
    assert bad.rc == 2 and "--output: not valid JSON" in bad.err
    unknown = await asyncio.to_thread(cli, db, "rerun", failed.id, "--from-step", "nope")
    assert unknown.rc == 2 and "has no step 'nope'" in unknown.err and "Traceback" not in unknown.err
    lonely = await asyncio.to_thread(cli, db, "rerun", failed.id, "--output", "1")
    assert lonely.rc == 2 and "--output needs --from-step" in lonely.err
    for deep, fragment in [
        ("[" * 100_000, "--output: not valid JSON"),
        ("[" * 300 + "]" * 300, "nested more than 254 levels deep"),
    ]:
        refused = await asyncio.to_thread(cli, db, "rerun", failed.id, "--from-step", "charge", "--output", deep)
        assert refused.rc == 2 and fragment in refused.err and "Traceback" not in refused.err
