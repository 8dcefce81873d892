"""A readable 404 page for any address no other page or API route answers.

The app factory mounts modules in name order and this one must come after every other page module (hence
its name); API addresses are left to the API's own JSON 404.
"""

from __future__ import annotations

from ...errors import ApiError
from ...validate import log_uri
from .common import PageHandler


class NotFoundPage(PageHandler):
    # Raised from the methods rather than from prepare(): a streaming handler that fails in prepare() leaves its
    # request unread, and Tornado then drops the kept-alive connection under the client's feet.
    def get(self, *args) -> None:
        raise ApiError(404, f"There is no page at {log_uri(self.request.path, 200)}.")

    head = post = put = patch = delete = get


ROUTES = [(r"/(?!api/|static/|vendor/).*", NotFoundPage)]
