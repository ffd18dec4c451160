"""A parent function invoking children and gathering their results (steps in parallel).

outlast dev examples/invoke.py
python examples/invoke.py          # in another terminal: upload an image
"""

import asyncio

import outlast
from outlast import Context, Event

app = outlast.Outlast("thumbnails")


@app.function(id="resize", trigger="images/never-sent", retries=1)
async def resize(ctx: Context) -> dict:
    size = ctx.event.data["size"]
    if size <= 0:
        raise outlast.NonRetriableError(f"cannot resize to {size}px")
    return {"url": f"https://cdn.example/{ctx.event.data['image']}@{size}.jpg"}


@app.function(id="make-thumbnails", trigger="images/uploaded")
async def make_thumbnails(ctx: Context) -> dict:
    image = ctx.event.data["image"]
    urls = await asyncio.gather(
        *[
            ctx.step.invoke(f"resize-{size}", function=resize, data={"image": image, "size": size}, timeout="1m")
            for size in (64, 256, 1024)
        ]
    )
    try:
        await ctx.step.invoke("resize-invalid", function=resize, data={"image": image, "size": 0})
    except outlast.StepError as exc:
        ctx.logger.warning("as expected, a child failed: %s", exc.message)
    return {"thumbnails": [u["url"] for u in urls]}


if __name__ == "__main__":  # run as a script (not imported by `outlast dev`): upload an image
    print(app.send(Event(name="images/uploaded", data={"image": "cat"})))
