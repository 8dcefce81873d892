"""The gravitational-wave (and GRB) events pages: the list, newest first, and one event with its sky map."""

from __future__ import annotations

import importlib.util
from datetime import datetime, timezone

from sqlalchemy import select

from ...errors import ApiError
from ...models import GcnEvent
from ...validate import shown
from .common import PageHandler, login_required


def parse_dateobs(text: str) -> datetime | None:
    """The event time of a page address ("2019-04-25T08:18:05", with fractions, "Z" or an offset) as naive UTC.

    None when the text is not a time (the page then answers 404, as for an unknown event).
    """
    text = (text or "").strip().replace(" ", "T")
    if not text or len(text) > 40:
        return None
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def find_event(session, dateobs_text: str) -> GcnEvent | None:
    """The event of this time, or None."""
    dateobs = parse_dateobs(dateobs_text)
    if dateobs is None:
        return None
    return session.scalar(select(GcnEvent).where(GcnEvent.dateobs == dateobs))


def plans_available() -> bool:
    """Whether this portal has observation plans (the gw.plan module and its /api/gcn_event/.../plan routes)."""
    return importlib.util.find_spec("astroportal.gw.plan") is not None


class GcnEventsPage(PageHandler):
    @login_required
    def get(self) -> None:
        """Every event, newest first: time, trigger, FAR, classification, distance, 90% area, tags."""
        self.render_page("gcn_events.html")


class GcnEventPage(PageHandler):
    @login_required
    def get(self, dateobs: str) -> None:
        """One event: notices, properties, sky map with the contours, sources in the region, the network."""
        event = find_event(self.session, dateobs)
        if event is None:
            raise ApiError(404, f"There is no event at the time {shown(dateobs)}. The events list (/gcn_events) "
                                "shows every event the portal has received.")
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
