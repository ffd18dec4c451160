"""The order workflow of examples/orders.py written for the official Inngest Python SDK, to
compare side by side (README, "Coming from inngest-py"). It runs on Outlast unchanged as an SDK
app: `INNGEST_DEV=1 INNGEST_BASE_URL=http://127.0.0.1:8288 uvicorn examples.inngest_py.orders:api`,
then `outlast dev --sdk-url http://127.0.0.1:8000/api/inngest`.
"""

from __future__ import annotations

import datetime
import random
from typing import Any

import fastapi
import inngest
import inngest.fast_api

client = inngest.Inngest(app_id="shop", is_production=False)


def fetch_user(user_id: str) -> dict[str, Any]:
    return {"id": user_id, "email": f"{user_id}@example.com"}


def charge(order: dict[str, Any]) -> dict[str, Any]:
    if random.random() < 0.3:  # a flaky payment provider: the step is retried with backoff
        raise ConnectionError("payment provider timed out")
    return {"charged": order["total"]}


@client.create_function(
    fn_id="process-order",
    trigger=inngest.TriggerEvent(event="shop/order.created", expression="event.data.total > 0"),
    retries=3,
)
async def process_order(ctx: inngest.Context) -> dict[str, Any]:
    order = ctx.event.data
    user = await ctx.step.run("get-user", fetch_user, order["user_id"])
    ctx.logger.info("processing order %s for %s", order["order_id"], user["email"])
    payment = await ctx.step.run("charge", charge, order)
    await ctx.step.sleep("wait-before-receipt", datetime.timedelta(seconds=2))
    await ctx.step.run("email-receipt", lambda: f"sent receipt to {user['email']}")
    return {"status": "confirmed", **payment}


@client.create_function(fn_id="daily-report", trigger=inngest.TriggerCron(cron="TZ=Europe/Paris 0 9 * * *"))
async def daily_report(ctx: inngest.Context) -> str:
    return await ctx.step.run("summarise", lambda: "all orders processed")


api = fastapi.FastAPI()
inngest.fast_api.serve(api, client, [process_order, daily_report])


async def queue_orders() -> list[str]:
    """What `python examples/orders.py` does, the inngest-py way (`send` is async there)."""
    return await client.send(
        [
            inngest.Event(name="shop/order.created", data={"order_id": f"o{i}", "user_id": f"u{i}", "total": 10 * i})
            for i in range(1, 4)
        ]
    )
