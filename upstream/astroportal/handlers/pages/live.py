"""The Live page: the network's activity as it happens."""

from __future__ import annotations

from .common import PageHandler, login_required


class LivePage(PageHandler):
    @login_required
    def get(self) -> None:
        """The feed (recent events, then the websocket), a sky map, the user's subscriptions."""
        self.render_page("live.html")


ROUTES = [(r"/live/?", LivePage)]
