"""An approval workflow: wait for a manager's decision, auto-reject after a timeout.

outlast dev examples/approval.py
python examples/approval.py                                                 # in another terminal
outlast send expense/approved --data '{"expense_id": "e1", "by": "ana"}'   # in another terminal
"""

import outlast
from outlast import Context, Event

app = outlast.Outlast("expenses")


@app.function(
    id="approve-expense",
    trigger="expense/submitted",
    cancel=[outlast.Cancel(event="expense/withdrawn", match="data.expense_id")],
)
async def approve_expense(ctx: Context) -> dict:
    expense = ctx.event.data
    await ctx.step.run("notify-manager", lambda: f"asked a manager to approve {expense['expense_id']}")
    decision = await ctx.step.wait_for_event(
        "wait-for-approval", event="expense/approved", match="data.expense_id", timeout="30s"
    )
    if decision is None:
        await ctx.step.run("auto-reject", lambda: f"rejected {expense['expense_id']}: no answer in time")
        return {"status": "rejected"}
    await ctx.step.run("reimburse", lambda: f"paid {expense['amount']}")
    return {"status": "approved", "by": decision.data["by"]}


if __name__ == "__main__":  # run as a script (not imported by `outlast dev`): submit two expenses
    print(
        app.send(
            [
                Event(name="expense/submitted", data={"expense_id": "e1", "amount": 42}),
                Event(name="expense/submitted", data={"expense_id": "e2", "amount": 7}),
            ]
        )
    )
