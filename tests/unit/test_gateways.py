"""`step.fetch` requests that cannot be made are step errors naming the request without its
secrets, never exceptions."""

from __future__ import annotations

import httpx
import pytest

from outlast.core.ops import StepAttemptFailed
from outlast.protocol.reply import GatewayRequest
from outlast.runtime.gateways import ai_auth, fetch


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


@pytest.mark.parametrize(
    ("fmt", "url", "header"),
    [
        ("openai-chat", "https://ai.example/v1/chat/completions", ("Authorization", "Bearer sk-1")),
        ("anthropic", "https://ai.example/v1/chat/completions", ("X-Api-Key", "sk-1")),
        ("bedrock", "https://ai.example/v1/chat/completions", ("Authorization", "sk-1")),
        ("gemini", "https://ai.example/v1/chat/completions?key=sk-1", None),
    ],
)
def test_an_inference_puts_its_key_where_its_format_says(fmt: str, url: str, header: tuple[str, str] | None) -> None:
    request = GatewayRequest(
        key="k",
        step_id="ask",
        url="https://ai.example/v1/chat/completions",
        method="POST",
        ai=fmt,
        auth_key="sk-1",
        headers={"x-mine": "1"},
    )
    made_url, headers = ai_auth(request)
    assert made_url == url and headers["Content-Type"] == "application/json" and headers["X-Mine"] == "1"
    if header is not None:
        assert headers[header[0]] == header[1]
    assert "sk-1" not in repr(request)  # the key and headers stay out of logs and tracebacks


async def test_an_inference_answered_with_an_error_status_is_a_step_error_naming_it() -> None:
    def provider(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, json={"error": "rate limited"})

    request = GatewayRequest(
        key="k", step_id="ask", url="https://ai.example/v1/x?key=s3cret", ai="gemini", auth_key="s3cret"
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(provider)) as client:
        op = await fetch(client, request, timeout_s=5)
    assert isinstance(op, StepAttemptFailed) and op.error.name == "AIGatewayError"
    assert "unsuccessful status code: 429" in op.error.message and "s3cret" not in op.error.message
    assert "rate limited" in op.error.stack
