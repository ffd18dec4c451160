"""The order workflow: steps, a sleep, and a retried step.

outlast dev examples/orders.py
python examples/orders.py          # in another terminal: queue three orders to watch
"""

import random

import outlast
from outlast import Context, Event

app = outlast.Outlast("shop")


def fetch_user(user_id: str) -> dict:
    return {"id": user_id, "email": f"{user_id}@example.com"}


def charge(order: dict) -> dict:
    if random.random() < 0.3:  # a flaky payment provider: the step is retried with backoff
        raise ConnectionError("payment provider timed out")
    return {"charged": order["total"]}


@app.function(
    id="process-order", trigger=outlast.TriggerEvent("shop/order.created", if_="event.data.total > 0"), retries=3
)
async def process_order(ctx: Context) -> dict:
    order = ctx.event.data
    user = await ctx.step.run("get-user", fetch_user, order["user_id"])
    ctx.logger.info("processing order %s for %s", order["order_id"], user["email"])
    payment = await ctx.step.run("charge", charge, order)
    await ctx.step.sleep("wait-before-receipt", "2s")
    await ctx.step.run("email-receipt", lambda: f"sent receipt to {user['email']}")
    return {"status": "confirmed", **payment}


@app.function(id="daily-report", trigger=outlast.TriggerCron("TZ=Europe/Paris 0 9 * * *"))
async def daily_report(ctx: Context) -> str:
    return await ctx.step.run("summarise", lambda: "all orders processed")


if __name__ == "__main__":  # run as a script (not imported by `outlast dev`): queue a few orders
    print(
        app.send(
            [
                Event(name="shop/order.created", data={"order_id": f"o{i}", "user_id": f"u{i}", "total": 10 * i})
                for i in range(1, 4)
            ]
        )
    )
