"""The dashboard's Realtime page: watch a channel (with a topic filter) as messages arrive.

The page is rendered here; the messages come from `GET /api/realtime` in the browser
(`static/realtime.js`), with a channel token the page's script asks for as the logged-in user.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from outlast.core.realtime import channel_problem, topics_problem
from outlast.server.dashboard.render import render


async def realtime_page(request: Request) -> Response:
    channel = request.query_params.get("channel", "").strip()
    topics = request.query_params.get("topics", "").strip()
    problem = None
    if channel:
        names = [t.strip() for t in topics.split(",") if t.strip()] if topics else None
        problem = channel_problem(channel) or topics_problem(names)
        topics = ",".join(names or [])
    return render(request, "realtime.html", nav="realtime", channel=channel, topics=topics, problem=problem)
