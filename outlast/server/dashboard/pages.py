"""The dashboard's route table. Every page has its own URL; every action is a real form POST
(CSRF token, redirect after success), so the pages work without JavaScript; the little script in
static/app.js adds live updates, JSON checking and charts. The handlers live in one module per
part (`run_pages`, `event_pages`, `function_pages`, `app_pages`, `login`)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from outlast.server.dashboard import app_pages, event_pages, function_pages, login, realtime_page, run_pages
from outlast.server.dashboard.render import HERE
from outlast.server.guards import form_post, page

ROUTES: list[BaseRoute] = [
    Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    Route("/login", login.login_form, methods=["GET"]),
    Route("/login", form_post(login.login), methods=["POST"]),
    Route("/logout", form_post(login.logout), methods=["POST"]),
    Route("/", page(run_pages.runs), methods=["GET"]),
    Route("/runs/{run_id}", page(run_pages.run), methods=["GET"]),
    Route("/runs/{run_id}/cancel", page(run_pages.cancel), methods=["POST"]),
    Route("/runs/{run_id}/rerun", page(run_pages.rerun_form), methods=["GET"]),
    Route("/runs/{run_id}/rerun", page(run_pages.rerun), methods=["POST"]),
    Route("/events", page(event_pages.events), methods=["GET"]),
    Route("/events", page(event_pages.send), methods=["POST"]),
    Route("/events/{event_id}", page(event_pages.event), methods=["GET"]),
    Route("/functions", page(function_pages.functions), methods=["GET"]),
    Route("/functions/{app_id}/{function_id}", page(function_pages.function), methods=["GET"]),
    Route("/functions/{app_id}/{function_id}/invoke", page(function_pages.invoke), methods=["POST"]),
    Route("/apps", page(app_pages.apps), methods=["GET"]),
    Route("/apps", page(app_pages.sync_app), methods=["POST"]),
    Route("/apps/{app_id}/resync", page(app_pages.resync_app), methods=["POST"]),
    Route("/apps/{app_id}/remove", page(app_pages.remove_app), methods=["POST"]),
    Route("/workers", page(app_pages.workers), methods=["GET"]),
    Route("/bulk", page(app_pages.bulk), methods=["GET"]),
    Route("/bulk", page(app_pages.bulk_start), methods=["POST"]),
    Route("/realtime", page(realtime_page.realtime_page), methods=["GET"]),
]
