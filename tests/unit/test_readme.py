"""The README states what users rely on and would otherwise have to find in the code."""

from __future__ import annotations

import re
from pathlib import Path

README = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())


def test_the_readme_documents_retry_timing_failure_payloads_and_when_a_body_runs_twice() -> None:
    # `outlast dev` retries at 1 % of the backoff, and the variable that changes it
    assert re.search(r"`outlast dev` retries faster, at 1 % of those delays", README)
    assert "`OUTLAST_BACKOFF_SCALE` sets that factor in any mode" in README
    # RetryAfterError's clamp (outlast.core.retry.clamp_retry_at), and what an unusable time does
    assert "kept between 1 s and 24 h from now" in README and "fails the step at once, naming it" in README
    # on_failure's payload: the keys of outlast.core.system_events.run_ended_events
    for key in ("`function_id`", "`run_id`", "`event`", "`events`", "`error`", "`_inngest.status`"):
        assert key in README.split("what an `on_failure` handler gets")[1][:600], key
    # at-least-once bodies: a worker paused past its lease, not only a dead one
    assert "stalls past its lease" in README and "SIGSTOP" in README
