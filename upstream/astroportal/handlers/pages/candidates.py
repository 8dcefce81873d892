"""The candidates page: scan what passed the groups' filters, save to a group, reject."""

from __future__ import annotations

from .common import PageHandler, login_required

PER_PAGE_CHOICES = (10, 25, 50, 100)


class CandidatesPage(PageHandler):
    @login_required
    def get(self) -> None:
        """Candidates, newest pass first, paged; each can be saved to a group or rejected."""
        page = self.get_query_argument("pageNumber", "1")
        per_page = self.get_query_argument("numPerPage", "25")
        data = {
            "pageNumber": int(page) if page.isdigit() and int(page) >= 1 else 1,
            "numPerPage": int(per_page) if per_page.isdigit() and int(per_page) in PER_PAGE_CHOICES else 25,
            "includeRejected": self.get_query_argument("includeRejected", "") in ("1", "true"),
            "savedStatus": self.get_query_argument("savedStatus", "all"),
        }
        self.render_page("candidates.html", page_data=data, per_page_choices=PER_PAGE_CHOICES, state=data)


ROUTES = [(r"/candidates/?", CandidatesPage)]
