"""A small shop app for the dashboard's tests and screenshots: steps, a failure, a sleep, a wait,
an invoke and log lines."""

from __future__ import annotations

from typing import Any

import outlast
from outlast import Context, NonRetriableError

app = outlast.Outlast("shop")


def charge(price: dict[str, Any]) -> dict[str, Any]:
    if price["total"] > 1000:
        raise NonRetriableError(f"card declined: {price['total']} is over the card's limit")
    return {"charged": price["total"], "currency": "EUR"}


@app.function(id="process-order", trigger="shop/order.created")
async def process_order(ctx: Context) -> Any:
    order = ctx.event.data
    ctx.logger.info("processing order %s", order.get("order_id"))
    user = await ctx.step.run("get-user", lambda: {"id": order.get("user_id", "u1"), "email": "ada@example.com"})
    price = await ctx.step.run("price", lambda: {"total": order.get("total", 10)})
    payment = await ctx.step.run("charge", charge, price)
    ctx.logger.warning("charged %s for <b>%s</b>", payment.get("charged"), user["email"])
    await ctx.step.run("email-receipt", lambda: {"sent_to": user["email"]})
    return {"status": "confirmed", "payment": payment}


@app.function(id="nap", trigger="shop/nap")
async def nap(ctx: Context) -> Any:
    await ctx.step.run("before", lambda: "awake")
    await ctx.step.sleep("long-nap", ctx.event.data.get("for", "1h"))
    return "rested"


@app.function(id="await-payment", trigger="shop/checkout")
async def await_payment(ctx: Context) -> Any:
    payment = await ctx.step.wait_for_event(
        "wait-payment", event="shop/payment.success", match="data.order_id", timeout="1d"
    )
    return {"paid": payment is not None}


@app.function(id="ship", trigger="shop/ship")
async def ship(ctx: Context) -> Any:
    label = await ctx.step.run("label", lambda: {"label": "L-" + str(ctx.event.data.get("order_id"))})
    return label


@app.function(id="fulfil", trigger="shop/fulfil")
async def fulfil(ctx: Context) -> Any:
    shipped = await ctx.step.invoke("ship-it", function=ship, data={"order_id": ctx.event.data.get("order_id")})
    return {"shipped": shipped}
