"""A misbehaving app on loopback: it answers call requests the way a broken deployment would
(garbage, no SDK header, a connection closed mid-body, 500s), to test the HTTP driver's failures."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.interop.harness import free_port

GOOD_206 = b'[{"op":"StepRun","id":"7f7e","displayName":"s","data":1}]'
#: one step planned (the server then calls it on its own: a targeted call)
PLANNED_206 = b'[{"op":"StepPlanned","id":"7f7e","displayName":"s"}]'


class FakeApp:
    """`behaviours` is consumed one per call request; the last one repeats."""

    def __init__(self, behaviours: list[str]) -> None:
        self.behaviours = behaviours
        self.calls = 0
        #: the `stepId` each call request asked for ("step" for discovery)
        self.step_ids: list[str] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/inngest"
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> FakeApp:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *_: Any) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                0,
            )
            await reader.readexactly(length)
            target = head.split(b" ", 2)[1].decode()
            self.step_ids.append(parse_qs(urlsplit(target).query).get("stepId", [""])[0])
            behaviour = self.behaviours[min(self.calls, len(self.behaviours) - 1)]
            self.calls += 1
            writer.write(_response(behaviour))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def register(self, outlast_url: str, *, function: str = "fake", retries: int = 1) -> None:
        payload = {
            "url": self.url,
            "v": "0.1",
            "sdk": "fake:v0",
            "framework": "none",
            "appName": "fake-app",
            "functions": [
                {
                    "id": f"fake-app-{function}",
                    "name": function,
                    "triggers": [{"event": "fake/go"}],
                    "steps": {
                        "step": {
                            "id": "step",
                            "name": "step",
                            "retries": {"attempts": retries},
                            "runtime": {"type": "http", "url": f"{self.url}?fnId=fake-app-{function}"},
                        }
                    },
                }
            ],
        }
        async with httpx.AsyncClient() as client:
            reply = await client.post(f"{outlast_url}/fn/register", json=payload)
        assert reply.status_code == 200, reply.text


def _response(behaviour: str) -> bytes:
    sdk = b"X-Inngest-SDK: fake:v0\r\n"
    if behaviour == "ok":
        return _http(200, sdk, b'"done"')
    if behaviour == "garbage":
        return _http(206, sdk, b"\x00not json at all{")
    if behaviour == "no-sdk-header":
        return _http(200, b"", b'"looks fine"')
    if behaviour == "500":
        return _http(500, sdk, b'{"name":"Error","message":"boom"}')
    if behaviour == "plan-two":  # a parallel group: the server calls each step next
        plan = (
            b'[{"op":"StepPlanned","id":"p1","displayName":"one"},{"op":"StepPlanned","id":"p2","displayName":"two"}]'
        )
        return _http(206, sdk, plan)
    if behaviour == "unknown-opcode":  # an opcode from an SDK newer than the server
        return _http(206, sdk, b'[{"op":"Teleport","id":"9a1f","displayName":"jump","opts":{}}]')
    if behaviour == "plan":
        return _http(206, sdk, PLANNED_206)
    if behaviour == "step-and-complete":  # the step ran, and the function returned after it
        return _http(
            206, sdk, b'[{"op":"StepRun","id":"7f7e","displayName":"s","data":1},{"op":"RunComplete","data":"done"}]'
        )
    if behaviour == "complete-206":  # the function returned: its end as an opcode
        return _http(206, sdk, b'[{"op":"RunComplete","id":"9c7f","data":"done"}]')
    if behaviour == "closed":  # promise 1000 bytes, send 10, hang up
        return b"HTTP/1.1 206 Partial Content\r\nContent-Length: 1000\r\n" + sdk + b"\r\n" + b'[{"op":"St'
    raise ValueError(behaviour)


def _http(status: int, headers: bytes, body: bytes) -> bytes:
    return (
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n".encode()
        + headers
        + b"Connection: close\r\n\r\n"
        + body
    )
