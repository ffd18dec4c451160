"""`step.ai.infer` on inngest@4 and inngest (PyPI): the server makes the inference (the
`AIGateway` opcode), durably, against a local HTTP server standing in for an OpenAI-compatible
provider. The provider's JSON is the step's output; a non-2xx answer is a step error, retried as
a step; the provider's key reaches the provider and nothing else (logs, errors, the step)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.interop.harness import Outlast, SdkApp, free_port, js4_app, python_app

KEY = "sk-s3cret-key"


def completion(content: str) -> dict[str, Any]:
    """An OpenAI chat completion, as the provider answers one."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-test-0001",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


class Provider:
    """An OpenAI-compatible provider on loopback: answers each request with the next of
    `statuses` (the last one repeats), a completion echoing the prompt on a 2xx."""

    def __init__(self, statuses: list[int]) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.statuses = statuses
        self.requests: list[dict[str, Any]] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        lines = head.split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        body = json.loads(await reader.readexactly(int(headers.get("content-length", "0"))))
        method, path, _ = lines[0].split(" ")
        self.requests.append({"method": method, "path": path, "headers": headers, "body": body})
        status = self.statuses[min(len(self.requests), len(self.statuses)) - 1]
        answer = completion(f"you said: {body['messages'][0]['content']}") if status < 300 else {"error": "overloaded"}
        payload = json.dumps(answer).encode()
        writer.write(
            f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n".encode()
            + f"content-length: {len(payload)}\r\nconnection: close\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
        writer.close()


@pytest.fixture
async def provider_for() -> AsyncIterator[Callable[[list[int]], Any]]:
    servers: list[asyncio.Server] = []

    async def start(statuses: list[int]) -> Provider:
        provider = Provider(statuses)
        servers.append(await asyncio.start_server(provider.serve, "127.0.0.1", provider.port))
        return provider

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.fixture(params=["js4", "py"])
def app(request: pytest.FixtureRequest, tmp_path: Path, outlast: Outlast) -> Iterator[tuple[str, SdkApp]]:
    served = js4_app(tmp_path, outlast) if request.param == "js4" else python_app(tmp_path, outlast)
    yield request.param, served
    served.proc.stop()


def no_secret(outlast: Outlast, *values: object) -> None:
    assert KEY not in outlast.proc.output()
    for value in values:
        assert KEY not in json.dumps(value, default=str)


async def test_the_server_makes_the_inference_once(
    outlast: Outlast, app: tuple[str, SdkApp], provider_for: Callable[[list[int]], Any]
) -> None:
    sdk, served = app
    provider = await provider_for([200])
    await served.sync()
    (event_id,) = await outlast.send({"name": f"{sdk}/infer", "data": {"base_url": provider.base_url, "prompt": "hi"}})
    run = await outlast.finished_run(event_id)
    assert run.status == "completed", run.error
    assert run.output == {"said": "you said: hi", "model": "gpt-test-0001"}
    [request] = provider.requests
    assert (request["method"], request["path"]) == ("POST", "/v1/chat/completions")
    assert request["headers"]["authorization"] == f"Bearer {KEY}"
    assert request["headers"]["content-type"] == "application/json"
    assert request["body"] == {"messages": [{"role": "user", "content": "hi"}], "model": "gpt-test"}
    [step] = run.steps
    assert (step.id, step.status) == ("ask", "completed")
    assert step.output == completion("you said: hi")  # the provider's answer is the step's output
    no_secret(outlast, step.output, run.output)


async def test_a_failed_inference_is_retried_as_a_step(
    outlast: Outlast, app: tuple[str, SdkApp], provider_for: Callable[[list[int]], Any]
) -> None:
    sdk, served = app
    provider = await provider_for([503, 200])
    await served.sync()
    (event_id,) = await outlast.send(
        {"name": f"{sdk}/infer", "data": {"base_url": provider.base_url, "prompt": "again"}}
    )
    run = await outlast.finished_run(event_id)
    assert (run.status, run.output) == ("completed", {"said": "you said: again", "model": "gpt-test-0001"}), run.error
    assert len(provider.requests) == 2
    [step] = run.steps
    assert (step.status, step.attempts) == ("completed", 2)


async def test_an_inference_that_keeps_failing_fails_the_run_without_its_key(
    outlast: Outlast, app: tuple[str, SdkApp], provider_for: Callable[[list[int]], Any]
) -> None:
    sdk, served = app
    provider = await provider_for([500])
    await served.sync()
    (event_id,) = await outlast.send({"name": f"{sdk}/infer", "data": {"base_url": provider.base_url, "prompt": "x"}})
    run = await outlast.finished_run(event_id)
    assert run.status == "failed"
    assert len(provider.requests) == 2  # retries: 1
    [step] = run.steps
    assert step.status == "failed" and step.error is not None
    assert step.error["name"] == "AIGatewayError"
    assert "unsuccessful status code: 500" in step.error["message"]
    assert "overloaded" in step.error.get("stack", "")  # the provider's answer says why
    no_secret(outlast, step.error, run.error)
