"""The dashboard: server-rendered pages (Jinja2 templates, a little plain JavaScript, uPlot for
charts), every asset served from `static/`, so it works with no network."""

from __future__ import annotations

from outlast.server.dashboard.pages import ROUTES

__all__ = ["ROUTES"]
