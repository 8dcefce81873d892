"""When a telescope can observe: the sun's altitude, night and twilight, tonight's dark window, airmass curves.

Everything is computed with astropy (AltAz frames, the built-in solar ephemeris). Times are UTC and come out
as ISO strings ending in "Z"; altitudes are degrees.
"""

from __future__ import annotations

import math
import warnings
from datetime import datetime, timezone
from typing import Iterable

import astropy.units as u
import numpy as np
from astropy.coordinates import AltAz, EarthLocation, SkyCoord, get_sun
from astropy.time import Time
from astropy.utils import iers
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import ApiError, not_found
from ..models import Telescope, User
from .access import get_visible_obj
from ..validate import TIME_MAX_YEAR, TIME_MIN_YEAR, shown

# The portal must work with no network but loopback, so astropy may not fetch fresh IERS tables: it uses the
# ones bundled in astropy-iers-data. Past their end, Earth-orientation values are extrapolated; the error is
# far below an arcsecond, which no altitude or airmass shown here could reveal.
iers.conf.auto_download = False
iers.conf.auto_max_age = None
iers.conf.iers_degraded_accuracy = "ignore"

# The sun's altitude (degrees) at the edges of the twilight bands. Sunrise and sunset use the sun's upper limb
# with standard refraction, as almanacs do.
SUNSET_ALT = -0.833
CIVIL_ALT = -6.0
NAUTICAL_ALT = -12.0
ASTRONOMICAL_ALT = -18.0

# Bands from brightest to darkest, with the altitude each band reaches down to.
BANDS = [
    ("day", SUNSET_ALT),
    ("civil", CIVIL_ALT),
    ("nautical", NAUTICAL_ALT),
    ("astronomical", ASTRONOMICAL_ALT),
    ("night", -90.0),
]

# Sampling of the sun's path: crossings are found between samples and placed by linear interpolation, which
# near a crossing is accurate to well under a minute at this step.
SUN_STEP_MINUTES = 10
AIRMASS_STEP_MINUTES = 5


# -- small helpers ----------------------------------------------------------------------------------------
def as_time(when: Time | datetime | str | None) -> Time:
    """An astropy Time (UTC) from None (now), a datetime (naive means UTC), an ISO string or a Time."""
    if when is None:
        return Time.now()
    if isinstance(when, Time):
        return when
    if isinstance(when, datetime):
        if when.tzinfo is not None:
            when = when.astimezone(timezone.utc).replace(tzinfo=None)
        return Time(when, scale="utc")
    if isinstance(when, str):
        try:
            t = Time(when.rstrip("Z"), scale="utc")
            year = float(t.decimalyear)
        except (ValueError, TypeError, OverflowError):
            raise ApiError(400, f"invalid time {shown(when)}: use ISO format, e.g. 2026-01-31T22:00:00") from None
        if not TIME_MIN_YEAR <= year < TIME_MAX_YEAR + 1:
            raise ApiError(
                400, f"`time` must be within the years {TIME_MIN_YEAR} to {TIME_MAX_YEAR} (what the ephemerides "
                f"cover), got {shown(when)}"
            )
        return t
    raise TypeError(f"cannot read a time from {type(when).__name__}")


def iso(t: Time | None) -> str | None:
    """ISO 8601 UTC to the second, with a trailing Z (None stays None)."""
    if t is None:
        return None
    return t.utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def location(lat: float, lon: float, elevation: float | None = None) -> EarthLocation:
    """An observatory on the WGS84 ellipsoid (latitude, east longitude in degrees, elevation in metres)."""
    if lat is None or lon is None:
        raise ApiError(400, "this telescope has no fixed location (lat/lon), so nothing can be computed for it")
    if not -90 <= lat <= 90:
        raise ApiError(400, f"latitude {lat} is outside -90..90")
    return EarthLocation.from_geodetic(lon * u.deg, lat * u.deg, (elevation or 0.0) * u.m)


def airmass_from_altitude(alt_deg: np.ndarray) -> np.ndarray:
    """Airmass (Pickering 2002), NaN below the horizon.

    sec(z) diverges near the horizon; Pickering's formula stays finite and close to the true path length there.
    """
    alt = np.asarray(alt_deg, dtype=float)
    out = np.full(alt.shape, np.nan)
    up = alt > 0
    h = alt[up]
    out[up] = 1.0 / np.sin(np.radians(h + 244.0 / (165.0 + 47.0 * h**1.1)))
    return out


def twilight_state(sun_alt: float) -> str:
    """The band the sun's altitude falls in: day, civil, nautical, astronomical (twilight) or night."""
    for name, floor in BANDS:
        if sun_alt >= floor:
            return name
    return "night"


def _sun_altitudes(loc: EarthLocation, times: Time) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_sun(times).transform_to(AltAz(obstime=times, location=loc)).alt.deg


def _grid(start: Time, hours: float, step_minutes: float) -> Time:
    n = int(round(hours * 60 / step_minutes)) + 1
    return start + np.arange(n) * (step_minutes * u.min)


def _crossing(times: Time, alt: np.ndarray, i: int, threshold: float) -> Time:
    """The time between samples i and i+1 where the altitude passes `threshold` (linear interpolation)."""
    a0, a1 = alt[i], alt[i + 1]
    frac = 0.0 if a1 == a0 else (threshold - a0) / (a1 - a0)
    return times[i] + frac * (times[i + 1] - times[i])


def intervals_below(times: Time, alt: np.ndarray, threshold: float) -> list[tuple[Time | None, Time | None]]:
    """The intervals where `alt` is below `threshold`; an end is None where the interval runs off the grid."""
    below = alt < threshold
    out: list[tuple[Time | None, Time | None]] = []
    start: Time | None = None
    inside = bool(below[0])
    for i in range(len(alt) - 1):
        if below[i] == below[i + 1]:
            continue
        t = _crossing(times, alt, i, threshold)
        if below[i + 1]:
            start, inside = t, True
        else:
            out.append((start, t))
            start, inside = None, False
    if inside:
        out.append((start, None))
    return out


def _window_for(when: Time, intervals: list[tuple[Time | None, Time | None]]) -> tuple[Time | None, Time | None] | None:
    """The interval that contains `when`, else the next one to start after it, else None."""
    for start, end in intervals:
        if (start is None or start <= when) and (end is None or when < end):
            return start, end
    for start, end in intervals:
        if start is not None and start > when:
            return start, end
    return None


def _window_dict(window: tuple[Time | None, Time | None] | None, when: Time) -> dict:
    if window is None:
        return {"start": None, "end": None, "exists": False, "ongoing": False}
    start, end = window
    return {
        "start": iso(start),
        "end": iso(end),
        "exists": True,
        "ongoing": start is None or start <= when,
        "hours": None if start is None or end is None else round(float((end - start).to_value(u.hour)), 2),
    }


# -- what a telescope page shows ----------------------------------------------------------------------------
def site_ephemeris(lat: float, lon: float, elevation: float | None = None, when=None) -> dict:
    """The sun at a site now, and tonight's night (sunset to sunrise) and dark window (astronomical night).

    "Tonight" is the night in progress at `when`, else the next one to begin within a day. At high latitudes
    there may be none (an `exists: false` window), or one that has no start or end within the day searched.
    """
    when = as_time(when)
    loc = location(lat, lon, elevation)
    times = _grid(when - 12 * u.hour, 48, SUN_STEP_MINUTES)
    alt = _sun_altitudes(loc, times)
    sun_now = float(_sun_altitudes(loc, when))
    horizon = 24 * u.hour

    def tonight(threshold: float) -> dict:
        window = _window_for(when, intervals_below(times, alt, threshold))
        if window is not None and window[0] is not None and window[0] - when > horizon:
            window = None
        return _window_dict(window, when)

    return {
        "time": iso(when),
        "sun_altitude": round(sun_now, 2),
        "twilight": twilight_state(sun_now),
        "is_night": sun_now < SUNSET_ALT,
        "is_dark": sun_now < ASTRONOMICAL_ALT,
        "night": tonight(SUNSET_ALT),
        "dark_window": tonight(ASTRONOMICAL_ALT),
    }


def sun_altitudes_at(sites: Iterable[tuple[float, float, float | None]], when=None) -> list[float]:
    """The sun's altitude at many sites at one time, in one vectorised transform."""
    sites = list(sites)
    if not sites:
        return []
    when = as_time(when)
    lats = np.array([s[0] for s in sites], dtype=float)
    lons = np.array([s[1] for s in sites], dtype=float)
    heights = np.array([s[2] or 0.0 for s in sites], dtype=float)
    locs = EarthLocation.from_geodetic(lons * u.deg, lats * u.deg, heights * u.m)
    return [float(a) for a in np.atleast_1d(_sun_altitudes(locs, when))]


def twilight_intervals(times: Time, alt: np.ndarray) -> list[dict]:
    """Consecutive {name, start, end} bands (day, civil, nautical, astronomical, night) over the grid."""
    bounds = [floor for _, floor in BANDS[:-1]]

    def band(a: float) -> int:
        for k, floor in enumerate(bounds):
            if a >= floor:
                return k
        return len(bounds)

    out: list[dict] = []
    cur = band(alt[0])
    start = times[0]
    for i in range(len(alt) - 1):
        nxt = band(alt[i + 1])
        # Walk through every band between the two samples (the sun may cross two in one step near the poles).
        while nxt != cur:
            step = 1 if nxt > cur else -1
            threshold = bounds[cur] if step > 0 else bounds[cur - 1]
            t = _crossing(times, alt, i, threshold)
            out.append({"name": BANDS[cur][0], "start": iso(start), "end": iso(t)})
            cur, start = cur + step, t
    out.append({"name": BANDS[cur][0], "start": iso(start), "end": iso(times[-1])})
    return out


def airmass_curve(lat: float, lon: float, elevation: float | None, ra: float, dec: float, when=None) -> dict:
    """A target's altitude and airmass through tonight at a site, with the sun's altitude and twilight bands.

    The curve spans tonight (see `site_ephemeris`) from an hour before sunset to an hour after sunrise; where
    there is no sunset within a day (polar day or night) it spans the 24 hours from `when`.
    """
    when = as_time(when)
    loc = location(lat, lon, elevation)
    if not (0 <= ra < 360 and -90 <= dec <= 90):
        raise ApiError(400, f"invalid target position ra={ra}, dec={dec}")
    coarse = _grid(when - 12 * u.hour, 48, SUN_STEP_MINUTES)
    night = _window_for(when, intervals_below(coarse, _sun_altitudes(loc, coarse), SUNSET_ALT))
    if night is not None and night[0] is not None and night[0] - when > 24 * u.hour:
        night = None
    if night is None or night[0] is None or night[1] is None:
        start, end = when, when + 24 * u.hour
    else:
        start, end = night[0] - 1 * u.hour, night[1] + 1 * u.hour
    hours = float((end - start).to_value(u.hour))
    times = _grid(start, hours, AIRMASS_STEP_MINUTES)
    frame = AltAz(obstime=times, location=loc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        target = SkyCoord(ra * u.deg, dec * u.deg).transform_to(frame)
        sun = get_sun(times).transform_to(frame)
    alt = target.alt.deg
    airmass = airmass_from_altitude(alt)
    sun_alt = sun.alt.deg
    return {
        "time": iso(when),
        "start": iso(times[0]),
        "end": iso(times[-1]),
        "night": _window_dict(night, when),
        "times": [iso(t) for t in times],
        "altitude": [round(float(a), 3) for a in alt],
        "airmass": [None if math.isnan(a) else round(float(a), 4) for a in airmass],
        "sun_altitude": [round(float(a), 3) for a in sun_alt],
        "twilight": twilight_intervals(times, sun_alt),
    }


# -- the same over the database ---------------------------------------------------------------------------
def _telescope(session: Session, telescope_id: int) -> Telescope:
    tel = session.get(Telescope, telescope_id)
    if tel is None:
        raise not_found(f"telescope {telescope_id}")
    return tel


def telescope_summary(tel: Telescope) -> dict:
    return {
        "id": tel.id,
        "name": tel.name,
        "nickname": tel.nickname,
        "lat": tel.lat,
        "lon": tel.lon,
        "elevation": tel.elevation,
        "fixed_location": tel.fixed_location,
    }


def telescope_ephemeris(session: Session, telescope_id: int, when=None) -> dict:
    """`site_ephemeris` for a telescope; `location_known: false` (and nothing computed) without a fixed site."""
    return compute_telescope_ephemeris(telescope_site(session, telescope_id), when)


def telescope_site(session: Session, telescope_id: int) -> dict:
    """What the ephemeris of a telescope needs from the database (404 for an unknown telescope)."""
    return telescope_summary(_telescope(session, telescope_id))


def compute_telescope_ephemeris(site: dict, when=None) -> dict:
    """The astropy part of `telescope_ephemeris` (no database: it may run in a worker thread)."""
    out = {"telescope": site, "location_known": site["lat"] is not None and site["lon"] is not None}
    if out["location_known"]:
        out.update(site_ephemeris(site["lat"], site["lon"], site["elevation"], when))
    return out


def telescopes_night_status(session: Session, when=None) -> list[dict]:
    """For every telescope: id, name, the sun's altitude there, the twilight band and whether it is night."""
    when = as_time(when)
    tels = list(session.scalars(select(Telescope).order_by(Telescope.name)))
    placed = [t for t in tels if t.lat is not None and t.lon is not None]
    alts = dict(zip((t.id for t in placed), sun_altitudes_at(((t.lat, t.lon, t.elevation) for t in placed), when)))
    out = []
    for t in tels:
        alt = alts.get(t.id)
        out.append(
            {
                "telescope_id": t.id,
                "name": t.name,
                "nickname": t.nickname,
                "location_known": alt is not None,
                "sun_altitude": None if alt is None else round(alt, 2),
                "twilight": None if alt is None else twilight_state(alt),
                "is_night": None if alt is None else alt < SUNSET_ALT,
                "is_dark": None if alt is None else alt < ASTRONOMICAL_ALT,
                "time": iso(when),
            }
        )
    return out


def airmass_target(session: Session, user: User, obj_id: str, telescope_id: int) -> dict:
    """What an airmass curve needs from the database: the visible object and a telescope with a fixed site."""
    obj = get_visible_obj(session, user, obj_id)
    tel = _telescope(session, telescope_id)
    if tel.lat is None or tel.lon is None:
        raise ApiError(400, f"telescope {tel.name} has no fixed location, so its airmass cannot be computed")
    return {"telescope": telescope_summary(tel), "obj_id": obj.id, "ra": obj.ra, "dec": obj.dec}


def compute_airmass(target: dict, when=None) -> dict:
    """The astropy part of `airmass_for_obj` (no database: it may run in a worker thread)."""
    site = target["telescope"]
    out = airmass_curve(site["lat"], site["lon"], site["elevation"], target["ra"], target["dec"], when)
    out.update(target)
    return out


def airmass_for_obj(session: Session, user: User, obj_id: str, telescope_id: int, when=None) -> dict:
    """`airmass_curve` for an object the user may see, from a telescope with a fixed site."""
    return compute_airmass(airmass_target(session, user, obj_id, telescope_id), when)
