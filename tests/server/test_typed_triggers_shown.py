"""A typed trigger's JSON Schema is shown where functions are: `outlast functions --json` and the
function's dashboard page; the Send event form offers an example payload built from it for an
event name nothing has sent yet, which the typed function then accepts."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import httpx
from pydantic import BaseModel, Field

import outlast
from outlast import Context, EventType, TriggerEvent
from tests.acceptance.test_ops_cli import outlast_cli
from tests.server.serving import serve


class Address(BaseModel):
    city: str


class Signup(BaseModel):
    user_id: str
    plan: str = "free"
    seats: int = Field(examples=[3])
    address: Address


signup = EventType("acct/signup", Signup)


def typed_app() -> outlast.Outlast:
    app = outlast.Outlast("typed-shown")

    @app.function(id="welcome", trigger=TriggerEvent(signup, if_="event.data.seats > 0"))
    async def welcome(ctx: Context[Signup]) -> str:
        return ctx.event.data.address.city

    return app


async def test_the_schema_is_shown_and_the_send_form_offers_an_example_from_it(tmp_path: Path) -> None:
    async with serve(tmp_path, source=typed_app()) as (url, _engine), httpx.AsyncClient(base_url=url) as http:
        page = (await http.get("/functions/typed-shown/welcome")).text
        assert "Data of <code>acct/signup</code>" in page and "JSON Schema" in page
        assert "&#34;user_id&#34;" in page or '"user_id"' in unescape(page)
        form = (await http.get("/events", params={"name": "acct/signup"})).text
        [payload] = re.findall(r"<textarea id=\"send-data\"[^>]*>(.*?)</textarea>", form, re.S)
        example = json.loads(unescape(payload))
        assert example == {"user_id": "", "plan": "free", "seats": 3, "address": {"city": ""}}
        assert signup.parse(example) == Signup(user_id="", seats=3, address=Address(city=""))
    listed = json.loads(outlast_cli(tmp_path / "server.db", "functions", "--json").stdout)
    [fn] = [f for f in listed["functions"] if f["id"] == "welcome"]
    [trigger] = fn["triggers"]
    assert trigger["event"] == "acct/signup" and trigger["if"] == "event.data.seats > 0"
    assert trigger["schema"]["required"] == ["user_id", "seats", "address"]
    assert trigger["schema"]["$defs"]["Address"]["properties"]["city"]["type"] == "string"
