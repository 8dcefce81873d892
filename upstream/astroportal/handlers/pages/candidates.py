"""The candidates page: scan what passed the groups' filters, save to a group, reject."""

from __future__ import annotations

from .common import PageHandler, login_required
from ...validate import small_id

PER_PAGE_CHOICES = (10, 25, 50, 100)


class CandidatesPage(PageHandler):
    @login_required
    def get(self) -> None:
        """Candidates, newest pass first, paged; each can be saved to a group or rejected."""
        page = self.get_query_argument("pageNumber", "1")
        per_page = self.get_query_argument("numPerPage", "25")
        data = {
            "pageNumber": max(small_id(page) or 1, 1),
            "numPerPage": small_id(per_page) if small_id(per_page) in PER_PAGE_CHOICES else 25,
            "includeRejected": self.get_query_argument("includeRejected", "") in ("1", "true"),
            "savedStatus": self.get_query_argument("savedStatus", "all"),
        }
        self.render_page("candidates.html", page_data=data, per_page_choices=PER_PAGE_CHOICES, state=data)


ROUTES = [(r"/candidates/?", CandidatesPage)]
