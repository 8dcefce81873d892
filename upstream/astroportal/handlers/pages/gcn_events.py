"""The gravitational-wave (and GRB) events pages: the list, newest first, and one event with its sky map."""

from __future__ import annotations

import importlib.util

from ...errors import ApiError
from ...gw import events
from ...validate import shown
from .common import PageHandler, login_required


def plans_available() -> bool:
    """Whether this portal serves observation plans (/api/gcn_event/DATEOBS/plan and /network_plan)."""
    return importlib.util.find_spec("astroportal.handlers.api.gcn_plans") is not None


class GcnEventsPage(PageHandler):
    @login_required
    def get(self) -> None:
        """Every event, newest first: time, trigger, FAR, classification, distance, 90% area, tags."""
        self.render_page("gcn_events.html")


class GcnEventPage(PageHandler):
    @login_required
    def get(self, dateobs: str) -> None:
        """One event (by its time, or an alias such as S190425z): notices, properties, the sky map with the
        contours, the sources and candidates in the region, the network's telescopes."""
        try:
            event = events.find_event(self.session, dateobs)
        except ApiError as exc:
            if exc.status_code != 404:
                raise
            raise ApiError(404, f"There is no event {shown(dateobs)}: give its time (2019-04-25T08:18:05) or an alias "
                                "(S190425z). The events list (/gcn_events) shows every event the portal has received."
                           ) from None
        iso = event.dateobs.isoformat()
        self.render_page(
            "gcn_event.html",
            event=event,
            dateobs=iso,
            page_data={"dateobs": iso, "triggerId": event.trigger_id, "planAvailable": plans_available()},
        )


ROUTES = [
    (r"/gcn_events/?", GcnEventsPage),
    (r"/gcn_events/([^/]+)/?", GcnEventPage),
]
