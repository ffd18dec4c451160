"""`step.fetch` requests that cannot be made are step errors naming the request without its
secrets, never exceptions."""

from __future__ import annotations

import httpx
import pytest

from outlast.core.ops import StepAttemptFailed
from outlast.protocol.reply import GatewayRequest
from outlast.runtime.gateways import fetch


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("ftp://files.example/x?token=s3cret", "not an http(s) URL"),
        ("http://user:s3cret@127.0.0.1:abc/x?token=s3cret", "no answer"),
        ("http://127.0.0.1:1/x?token=s3cret", "no answer"),
    ],
)
async def test_a_request_that_cannot_be_made_is_a_step_error_without_secrets(url: str, said: str) -> None:
    request = GatewayRequest(key="k", step_id="fetch", url=url, method="POST", headers={"authorization": "s3cret"})
    async with httpx.AsyncClient(trust_env=False) as client:
        op = await fetch(client, request, timeout_s=5)
    assert isinstance(op, StepAttemptFailed) and op.error.name == "GatewayError"
    assert said in op.error.message and "s3cret" not in op.error.message
