"""Which fields a telescope can observe tonight: the dark window (Sun below -12 deg) and, per field, when it is
above an airmass limit within it.

Altitudes of many fields over a night are computed in one vectorised step: the fields are brought once to the
true equator and equinox of the night (astropy's TETE frame, which applies precession, nutation and
aberration), and each time's local apparent sidereal time gives their hour angles. Over a night this agrees
with astropy's AltAz frame (no refraction) to a few arcseconds at most, and it is some ten times faster
over thousands of fields (AltAz would redo the full transformation per field and time).

No network: the IERS settings of `astroportal.domain.ephemeris` (imported here) keep astropy to its bundled
tables.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from datetime import date, datetime

import astropy.units as u
import numpy as np
from astropy.coordinates import TETE, EarthLocation, SkyCoord, get_sun
from astropy.time import Time

# Imported for its IERS settings too (offline: bundled tables, no download), which apply process-wide.
from ..domain import ephemeris

# The Sun's altitude below which a telescope observes (nautical twilight), degrees.
SUN_ALTITUDE_LIMIT = -12.0
# Time step of the field altitude samples within the night, minutes.
STEP_MINUTES = 5.0
# The Sun's path is sampled this often to find the night's edges (then placed by linear interpolation).
SUN_STEP_MINUTES = 10.0

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Site:
    """A telescope's place: latitude, east longitude (degrees), elevation (metres)."""

    lat: float
    lon: float
    elevation: float = 0.0

    @property
    def location(self) -> EarthLocation:
        return ephemeris.location(self.lat, self.lon, self.elevation)


@dataclass
class Night:
    """Tonight at a site: the dark window [start, end] and the sample times in it (None: no dark window)."""

    start: Time | None
    end: Time | None
    times: Time | None
    reason: str | None = None

    @property
    def exists(self) -> bool:
        return self.times is not None and len(self.times) > 0


@dataclass
class Visibility:
    """Per field: whether it is observable tonight, its window (sample indices), best sample and airmass."""

    observable: np.ndarray  # bool
    first: np.ndarray  # index of the window's first sample (-1 when not observable)
    last: np.ndarray  # index of its last sample
    best: np.ndarray  # index of the sample of lowest airmass in the window
    airmass: np.ndarray  # airmass at `best` (NaN when not observable)


def reference_time(site: Site, when: str | date | datetime | Time | None) -> Time:
    """The time whose night is wanted: a date alone means that date's evening at the site (local noon, from the
    longitude); a time is taken as given (UTC); None is now."""
    if isinstance(when, str) and _DATE_ONLY.match(when.strip()):
        when = date.fromisoformat(when.strip())
    if isinstance(when, date) and not isinstance(when, datetime):
        noon = Time(datetime(when.year, when.month, when.day, 12), scale="utc")
        return noon - (site.lon / 15.0) * u.hour
    return ephemeris.as_time(when)


def _sun_altitude(loc: EarthLocation, times: Time) -> np.ndarray:
    from astropy.coordinates import AltAz

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.atleast_1d(get_sun(times).transform_to(AltAz(obstime=times, location=loc)).alt.deg)


def tonight(site: Site, when=None, *, sun_altitude: float = SUN_ALTITUDE_LIMIT,
            step_minutes: float = STEP_MINUTES) -> Night:
    """The dark window in progress at `when` (see `reference_time`) or the next to begin within a day, with
    samples every `step_minutes` at which the Sun is below `sun_altitude` (checked at each sample)."""
    ref = reference_time(site, when)
    loc = site.location
    coarse = ref - 12 * u.hour + np.arange(int(48 * 60 / SUN_STEP_MINUTES) + 1) * (SUN_STEP_MINUTES * u.min)
    intervals = ephemeris.intervals_below(coarse, _sun_altitude(loc, coarse), sun_altitude)
    window = None
    for start, end in intervals:  # the one in progress, else the next to start within a day
        if (start is None or start <= ref) and (end is None or ref < end):
            window = (start, end)
            break
    if window is None:
        later = [(s, e) for s, e in intervals if s is not None and ref < s <= ref + 24 * u.hour]
        window = later[0] if later else None
    when_text = ephemeris.iso(ref)
    if window is None:
        return Night(None, None, None, f"the Sun does not go below {sun_altitude:g} deg at this site within a day "
                                       f"of {when_text}: no dark time to observe in")
    start, end = window
    start = ref if start is None else max(start, ref)  # a night in progress is planned from `when` on
    if end is None:  # polar night: the window runs past the two days searched; plan the next day of it
        end = start + 24 * u.hour
    n = int(math.floor(float((end - start).to_value(u.min)) / step_minutes)) + 1
    times = start + np.arange(max(n, 0)) * (step_minutes * u.min)
    times = times[times <= end] if len(times) else times
    if len(times):
        times = times[_sun_altitude(loc, times) < sun_altitude]
    if len(times) == 0:
        return Night(start, end, None, f"the dark window at this site after {when_text} is too short to plan in")
    return Night(start, end, times)


def altitudes(site: Site, times: Time, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Altitude (degrees, no refraction) of each position at each time: shape (len(ra), len(times))."""
    loc = site.location
    mid = times[len(times) // 2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        apparent = SkyCoord(np.asarray(ra) * u.deg, np.asarray(dec) * u.deg).transform_to(
            TETE(obstime=mid, location=loc))
        lst = times.sidereal_time("apparent", longitude=loc.lon).rad
    lat = math.radians(site.lat)
    d = apparent.dec.rad[:, None]
    hour_angle = lst[None, :] - apparent.ra.rad[:, None]
    sin_alt = math.sin(lat) * np.sin(d) + math.cos(lat) * np.cos(d) * np.cos(hour_angle)
    return np.degrees(np.arcsin(np.clip(sin_alt, -1, 1)))


def visibility(site: Site, night: Night, ra, dec, airmass_limit: float) -> Visibility:
    """When each field (ra, dec) is at airmass <= `airmass_limit` within the night's samples.

    A field's window is its longest run of consecutive samples below the limit (a field can set early and
    rise again before dawn in a long night: the longer part is given)."""
    ra, dec = np.atleast_1d(np.asarray(ra, dtype=float)), np.atleast_1d(np.asarray(dec, dtype=float))
    n = len(ra)
    none = Visibility(np.zeros(n, bool), np.full(n, -1), np.full(n, -1), np.full(n, -1), np.full(n, np.nan))
    if not night.exists or n == 0:
        return none
    alt = altitudes(site, night.times, ra, dec)
    air = ephemeris.airmass_from_altitude(alt)
    ok = np.nan_to_num(air, nan=np.inf) <= airmass_limit
    # Runs of True per row: +1 where a run starts, -1 just after it ends (rows padded with False).
    edges = np.diff(np.pad(ok, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    rows_s, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)  # same row order as the starts: runs alternate start, end
    if len(starts) == 0:
        return none
    length = ends - starts
    # The longest run per row: sort by row, then by length descending; take each row's first.
    by = np.lexsort((-length, rows_s))
    rows_s, starts, ends = rows_s[by], starts[by], ends[by]
    keep = np.ones(len(rows_s), bool)
    keep[1:] = rows_s[1:] != rows_s[:-1]
    rows, first, last = rows_s[keep], starts[keep], ends[keep] - 1
    out = none
    out.observable[rows] = True
    out.first[rows] = first
    out.last[rows] = last
    # Best time: the lowest airmass within the window.
    cols = np.arange(ok.shape[1])[None, :]
    in_window = (cols >= first[:, None]) & (cols <= last[:, None])
    masked = np.where(in_window, air[rows], np.inf)
    best = np.argmin(masked, axis=1)
    out.best[rows] = best
    out.airmass[rows] = air[rows, best]
    return out
