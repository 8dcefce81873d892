"""Telescopes (list and one telescope with its night and twilight now) and instruments."""

from __future__ import annotations

from datetime import datetime, timezone

import tornado.ioloop

from ...domain import ephemeris
from ...errors import not_found
from ...models import Telescope
from .common import PageHandler, login_required
from ...validate import shown, small_id


def relative(iso_time: str | None, now: datetime) -> str:
    """'in 3 h 05 min' or '2 h 10 min ago' for an ISO UTC time, relative to `now`."""
    if iso_time is None:
        return ""
    t = datetime.strptime(iso_time, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    minutes = int(round((t - now).total_seconds() / 60))
    h, m = divmod(abs(minutes), 60)
    text = f"{h} h {m:02d} min" if h else f"{m} min"
    return f"in {text}" if minutes >= 0 else f"{text} ago"


def pretty_time(iso_time: str | None) -> str:
    """'2026-01-31 22:15 UTC' for an ISO UTC time (to the minute: the sun's motion is not known better here)."""
    return "—" if iso_time is None else iso_time[:16].replace("T", " ") + " UTC"


def safe_link(url: str | None) -> str | None:
    """Links typed by people become hrefs only when they are http(s) (never javascript: and the like)."""
    if url and url.strip().lower().startswith(("http://", "https://")):
        return url.strip()
    return None


class TelescopesPage(PageHandler):
    @login_required
    def get(self) -> None:
        """Every telescope, with whether it is night there now."""
        self.render_page("telescopes.html")


class TelescopePage(PageHandler):
    @login_required
    async def get(self, telescope_id: str) -> None:
        """One telescope: where it is, whether it is night there now, the sun's altitude, tonight's dark window."""
        tel = self.session.get(Telescope, small_id(telescope_id)) if small_id(telescope_id) is not None else None
        if tel is None:
            raise not_found(f"telescope {shown(telescope_id)}")
        # astropy's first computation in a process is slow: keep the server answering others meanwhile.
        eph = await tornado.ioloop.IOLoop.current().run_in_executor(
            None, ephemeris.compute_telescope_ephemeris, ephemeris.telescope_summary(tel)
        )
        now = datetime.now(timezone.utc)
        self.render_page(
            "telescope.html",
            tel=tel,
            eph=eph,
            rel=lambda t: relative(t, now),
            pretty=pretty_time,
            skycam=safe_link(tel.skycam_link),
            weather=safe_link(tel.weather_link),
            page_data={"telescopeId": tel.id},
        )


class InstrumentsPage(PageHandler):
    @login_required
    def get(self) -> None:
        """Every instrument with its telescope, type and filters."""
        self.render_page("instruments.html")


ROUTES = [
    (r"/telescopes/?", TelescopesPage),
    (r"/telescope/([^/]+)/?", TelescopePage),
    (r"/instruments/?", InstrumentsPage),
]
