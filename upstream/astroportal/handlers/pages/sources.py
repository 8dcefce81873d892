"""The sources list (with its cone-search form) and the source page."""

from __future__ import annotations

import math
import re
import warnings

import astropy.units as u
from astropy.coordinates import Angle, SkyCoord

from sqlalchemy import func, select

from ...domain.access import accessible_group_ids, get_visible_obj
from ...domain.annotations import annotations_for_obj
from ...domain.thumbnails import thumbnails_for_obj
from ...models import Group, Photometry, photometry_groups
from .common import PageHandler, login_required
from ...validate import small_id

RADIUS_UNITS = {"arcsec": 1 / 3600, "arcmin": 1 / 60, "deg": 1.0}
SORT_KEYS = ("saved_at", "id", "ra", "dec", "created_at")
PER_PAGE_CHOICES = (25, 50, 100, 250, 500)
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


class CoordinateError(ValueError):
    """A coordinate typed in a form that cannot be read; the message is meant for the person who typed it."""


def parse_ra(text: str) -> float:
    """Right ascension in degrees from decimal degrees ("150.1") or sexagesimal hours ("10:00:24", "10h00m24s").

    A sexagesimal value written with 'd' or '°' is taken as degrees.
    """
    text = text.strip()
    if _PLAIN_NUMBER.match(text):
        value = float(text)
    else:
        unit = u.deg if re.search(r"[d°]", text) else u.hourangle
        try:
            # astropy only warns about 24:00:01 and the like: here that is a typing error.
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                value = Angle(text, unit=unit).deg
        except (ValueError, u.UnitsError, Warning):
            raise CoordinateError(
                f"cannot read the right ascension {text!r}: give degrees (150.1) or hours (10:00:24.5 or 10h00m24.5s)"
            ) from None
    if not math.isfinite(value) or not 0 <= value < 360:
        raise CoordinateError(f"the right ascension {text!r} is outside 0..360 degrees (0..24 hours)")
    return value


def parse_dec(text: str) -> float:
    """Declination in degrees from decimal degrees ("-2.5") or sexagesimal ("-02:30:00", "-2d30m00s")."""
    text = text.strip()
    if _PLAIN_NUMBER.match(text):
        value = float(text)
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                value = Angle(text, unit=u.deg).deg
        except (ValueError, u.UnitsError, Warning):
            raise CoordinateError(
                f"cannot read the declination {text!r}: give degrees (-2.5) or -02:30:00 or -2d30m00s"
            ) from None
    if not math.isfinite(value) or not -90 <= value <= 90:
        raise CoordinateError(f"the declination {text!r} is outside -90..+90 degrees")
    return value


def parse_cone(ra: str, dec: str, radius: str, unit: str) -> dict | None:
    """A cone {ra, dec, radius} in degrees from the form's text fields, None when the fields are empty."""
    if not (ra.strip() or dec.strip()):
        return None
    if not ra.strip() or not dec.strip():
        raise CoordinateError("a cone search needs both a right ascension and a declination")
    if unit not in RADIUS_UNITS:
        raise CoordinateError(f"unknown radius unit {unit!r}; use arcsec, arcmin or deg")
    try:
        r = float(radius.strip() or "0")
    except ValueError:
        raise CoordinateError(f"the radius {radius!r} is not a number") from None
    radius_deg = r * RADIUS_UNITS[unit]
    if not math.isfinite(radius_deg) or not 0 < radius_deg <= 180:
        raise CoordinateError("the radius must be more than 0 and at most 180 degrees")
    return {"ra": parse_ra(ra), "dec": parse_dec(dec), "radius": radius_deg}


def positions(ra: float, dec: float) -> dict:
    """The position in degrees, sexagesimal (hours for RA) and Galactic coordinates, formatted for display."""
    c = SkyCoord(ra * u.deg, dec * u.deg, frame="icrs")
    gal = c.galactic
    return {
        "ra_deg": f"{ra:.6f}",
        "dec_deg": f"{dec:+.6f}",
        "ra_hms": c.ra.to_string(unit=u.hourangle, sep=":", precision=3, pad=True),
        "dec_dms": c.dec.to_string(unit=u.deg, sep=":", precision=2, pad=True, alwayssign=True),
        "l_deg": f"{gal.l.deg:.6f}",
        "b_deg": f"{gal.b.deg:+.6f}",
    }


def visible_point_count(session, user, obj_id: str) -> int:
    """How many of the object's photometry points the user may see (shared with one of their groups).

    The page uses it only to choose how to draw the light curve before the points arrive, so it must not count
    points the user cannot see (that would tell them such points exist).
    """
    groups = accessible_group_ids(session, user)
    query = select(func.count(func.distinct(Photometry.id))).where(Photometry.obj_id == obj_id)
    if groups is not None:
        query = query.join(photometry_groups, photometry_groups.c.photometry_id == Photometry.id).where(
            photometry_groups.c.group_id.in_(sorted(groups) or [-1])
        )
    return int(session.scalar(query) or 0)


class SourcesPage(PageHandler):
    @login_required
    def get(self) -> None:
        """The list of sources, searchable by position (cone) and id, sortable and paged."""
        arg = self.get_query_argument
        form = {
            "ra": arg("ra", ""),
            "dec": arg("dec", ""),
            "radius": arg("radius", "") or "10",
            "unit": arg("unit", "arcsec"),
            "sourceID": arg("sourceID", "").strip(),
            "group": arg("group", "").strip(),
        }
        # The groups the list can be narrowed to (e.g. the broker's group: what the alert broker brought in).
        readable = accessible_group_ids(self.session, self.current_user)
        query = select(Group.id, Group.name).where(Group.single_user_group.is_(False)).order_by(Group.name)
        if readable is not None:
            query = query.where(Group.id.in_(sorted(readable) or [-1]))
        groups = [{"id": gid, "name": name} for gid, name in self.session.execute(query)]
        group_id = int(form["group"]) if form["group"].isdigit() else None
        if group_id is not None and group_id not in {g["id"] for g in groups}:
            group_id = None
        error = None
        cone = None
        try:
            cone = parse_cone(form["ra"], form["dec"], form["radius"], form["unit"])
        except CoordinateError as exc:
            error = str(exc)
        sort_by = arg("sortBy", "saved_at")
        sort_order = arg("sortOrder", "")
        per_page = arg("numPerPage", "100")
        page = arg("pageNumber", "1")
        data = {
            "cone": cone,
            "sourceID": form["sourceID"] or None,
            "groupIds": str(group_id) if group_id is not None else None,
            "sortBy": sort_by if sort_by in SORT_KEYS else "saved_at",
            "sortOrder": sort_order if sort_order in ("asc", "desc") else None,
            "numPerPage": small_id(per_page) if small_id(per_page) in PER_PAGE_CHOICES else 100,
            "pageNumber": max(small_id(page) or 1, 1),
            "error": error,
        }
        self.render_page(
            "sources.html",
            status=400 if error else 200,
            form=form,
            error=error,
            cone=cone,
            units=list(RADIUS_UNITS),
            groups=groups,
            group_id=group_id,
            per_page_choices=PER_PAGE_CHOICES,
            per_page=data["numPerPage"],
            page_data=data,
        )


class SourcePage(PageHandler):
    @login_required
    def get(self, obj_id: str) -> None:
        """One source: position, cutouts, annotations, light curve, photometry, classifications, comments, groups,
        airmass."""
        obj = get_visible_obj(self.session, self.current_user, obj_id)
        self.render_page(
            "source.html",
            obj=obj,
            pos=positions(obj.ra, obj.dec),
            thumbnails=thumbnails_for_obj(self.session, obj.id),
            annotations=annotations_for_obj(self.session, self.current_user, obj.id),
            page_data={
                "objId": obj.id,
                "ra": obj.ra,
                "dec": obj.dec,
                "photometryCount": visible_point_count(self.session, self.current_user, obj.id),
            },
        )


ROUTES = [
    (r"/sources/?", SourcesPage),
    (r"/source/([^/]+)/?", SourcePage),
]
