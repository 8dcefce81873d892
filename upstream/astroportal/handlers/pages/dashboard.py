"""The dashboard: counts and the latest sources and candidates."""

from __future__ import annotations

from .common import PageHandler, login_required


class DashboardPage(PageHandler):
    @login_required
    def get(self) -> None:
        """Recent sources and candidates, with counts (filled in by the browser from the API)."""
        self.render_page("dashboard.html")


ROUTES = [(r"/", DashboardPage)]
