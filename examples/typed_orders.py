"""The order workflow with a typed event: the payload is validated before it is stored, and
`ctx.event.data` is an `OrderCreated` (mypy --strict checks this file: tests/unit/test_typed_example.py).

outlast dev examples/typed_orders.py
python examples/typed_orders.py    # in another terminal: queue three orders to watch
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

import outlast
from outlast import Context, EventType, TriggerEvent

app = outlast.Outlast("typed-shop")


class OrderCreated(BaseModel):
    order_id: str
    user_id: str
    total: float


class OrderPaid(BaseModel):
    order_id: str
    amount: float


order_created = EventType("shop/order.created", OrderCreated)
order_paid = EventType("shop/order.paid", OrderPaid)


def fetch_user(user_id: str) -> dict[str, str]:
    return {"id": user_id, "email": f"{user_id}@example.com"}


@app.function(id="process-order", trigger=TriggerEvent(order_created, if_="event.data.total > 0"), retries=3)
async def process_order(ctx: Context[OrderCreated]) -> dict[str, Any]:
    order = ctx.event.data  # an OrderCreated: editors complete its fields, mypy checks them
    user = await ctx.step.run("get-user", fetch_user, order.user_id)
    ctx.logger.info("processing order %s for %s", order.order_id, user["email"])
    charged = await ctx.step.run("charge", lambda: round(order.total * 1.2, 2))
    await ctx.step.sleep("wait-before-receipt", "2s")
    await ctx.step.run("email-receipt", lambda: f"sent receipt to {user['email']}")
    return {"status": "confirmed", "charged": charged}


@app.function(id="await-payment", trigger=order_created)
async def await_payment(ctx: Context[OrderCreated]) -> float | None:
    paid = await ctx.step.wait_for_event("paid", event=order_paid, match="data.order_id", timeout="1d")
    return None if paid is None else paid.data.amount  # an OrderPaid, checked by mypy like ctx.event.data


if __name__ == "__main__":  # run as a script (not imported by `outlast dev`): queue a few orders
    print(app.send([order_created.create(order_id=f"o{i}", user_id=f"u{i}", total=10 * i) for i in range(1, 4)]))
