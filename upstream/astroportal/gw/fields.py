"""Field grids: the fixed pointings that tile the sky with an instrument's field of view.

A field of view (`instruments.field_of_view`) is a square, a rectangle (north up) or a circle. The grid is laid
in declination bands one field high; in each band the fields are spaced in right ascension by the field's
width widened by 1/cos(dec) at the band's edge nearest the equator (where a field spans the fewest degrees of
right ascension), so that neighbouring fields meet there and overlap a little towards the pole. Each pole has
one field centred on it. Circles are laid like the square inscribed in them, so that they leave no gaps.

What a field covers is stored as depth-29 nested HEALPix ranges (the form of the localization tiles): the
pixels, at one order chosen per instrument, whose centres fall inside the field. A field's contained
probability is then a sum over its ranges of a localization's cumulative probability (see `plan.py`), with no
rasterisation of the sky map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .skymaps import MAX_DEPTH

# Pixels per field the order is chosen for (within a factor 2): with ~256 pixel centres a field's area, hence
# its contained probability, is the true footprint's within a few percent (std ~2%, no bias: measured against
# a direct integration in the tests). Four times as many would halve that, at four times the build time.
PIXELS_PER_FIELD = 256
# Finest order a grid is built at (12.6 M pixels over the sky): bounds the memory and time of a build.
MAX_GRID_ORDER = 10
MIN_GRID_ORDER = 4
# A sky grid of more fields than this is refused: fields that small are for error boxes, not sky maps.
MAX_GRID_FIELDS = 60_000
# Fields are spaced this fraction closer than their size: a field's sides are great circles, which sag
# away from the band edges (constant declination) towards its corners; the margin closes those gaps.
OVERLAP = 0.03


class FieldOfViewError(ValueError):
    """A field of view no grid can be built for; the message says why and what to do."""


@dataclass(frozen=True)
class Footprint:
    """A field's shape: half-extents (degrees) along RA and Dec in the tangent plane, or a radius."""

    shape: str
    half_width: float  # degrees (the radius for a circle)
    half_height: float

    @property
    def radius(self) -> float:
        """The angular radius of a cone that holds the whole field (the half-diagonal)."""
        if self.shape == "circle":
            return self.half_width
        tx, ty = math.tan(math.radians(self.half_width)), math.tan(math.radians(self.half_height))
        return math.degrees(math.atan(math.hypot(tx, ty)))

    @property
    def area_deg2(self) -> float:
        if self.shape == "circle":
            return 2 * math.pi * (1 - math.cos(math.radians(self.half_width))) * (180 / math.pi) ** 2
        # Solid angle of a gnomonic rectangle of half-sides a, b: 4 asin(sin a sin b).
        a, b = math.radians(self.half_width), math.radians(self.half_height)
        return 4 * math.asin(math.sin(a) * math.sin(b)) * (180 / math.pi) ** 2

    @property
    def tile(self) -> tuple[float, float]:
        """(width, height) in degrees of the cell each field is given in the grid."""
        if self.shape == "circle":
            side = 2 * math.degrees(math.asin(math.sin(math.radians(self.half_width)) / math.sqrt(2)))
            return side, side
        return 2 * self.half_width, 2 * self.half_height


def footprint(fov: dict | None) -> Footprint:
    """The footprint of a `field_of_view` value ({"shape": "square", "side_deg": 1.9}, ...)."""
    if not isinstance(fov, dict):
        raise FieldOfViewError("the instrument has no field of view: set its `field_of_view` (for example "
                               '{"shape": "square", "side_deg": 1.9}) with PUT /api/instrument/ID')
    shape = fov.get("shape")
    try:
        if shape == "square":
            half = float(fov["side_deg"]) / 2
            fp = Footprint("square", half, half)
        elif shape == "rectangle":
            fp = Footprint("rectangle", float(fov["width_deg"]) / 2, float(fov["height_deg"]) / 2)
        elif shape == "circle":
            r = float(fov["radius_deg"])
            fp = Footprint("circle", r, r)
        else:
            raise FieldOfViewError(f"unknown field-of-view shape {shape!r}: use square, rectangle or circle")
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, FieldOfViewError):
            raise
        raise FieldOfViewError(f"the field of view {fov!r} lacks its size in degrees") from None
    if not (0 < fp.half_width <= 90 and 0 < fp.half_height <= 90):
        raise FieldOfViewError(f"the field of view {fov!r} must have sizes above 0 and at most 180 degrees")
    if fp.shape != "circle" and max(fp.half_width, fp.half_height) >= 89:
        raise FieldOfViewError(f"the field of view {fov!r} is too wide for a tangent-plane field (< 178 deg)")
    return fp


# -- geometry ------------------------------------------------------------------------------------------------
def contains(fp: Footprint, ra0, dec0, ra, dec) -> np.ndarray:
    """Whether each position (ra, dec) lies in the field centred at (ra0, dec0) (arrays broadcast; degrees).

    Rectangles are bounded in the tangent (gnomonic) plane at the centre, north up: their sides are great
    circles, as a camera's are."""
    a0, d0, a, d = (np.radians(np.asarray(x, dtype=float)) for x in (ra0, dec0, ra, dec))
    cos_d = np.cos(d)
    cos_da = np.cos(a - a0)
    cos_c = np.sin(d0) * np.sin(d) + np.cos(d0) * cos_d * cos_da
    if fp.shape == "circle":
        return cos_c >= math.cos(math.radians(fp.half_width))
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = cos_d * np.sin(a - a0) / cos_c
        eta = (np.cos(d0) * np.sin(d) - np.sin(d0) * cos_d * cos_da) / cos_c
    return (cos_c > 0) & (np.abs(xi) <= math.tan(math.radians(fp.half_width))) & (
        np.abs(eta) <= math.tan(math.radians(fp.half_height)))


def _frame(ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors of a field's centre and of east and north there."""
    a, d = math.radians(ra0), math.radians(dec0)
    centre = np.array([math.cos(d) * math.cos(a), math.cos(d) * math.sin(a), math.sin(d)])
    east = np.array([-math.sin(a), math.cos(a), 0.0])
    north = np.array([-math.sin(d) * math.cos(a), -math.sin(d) * math.sin(a), math.cos(d)])
    return centre, east, north


def _contains_xyz(fp: Footprint, ra0: np.ndarray, dec0: np.ndarray, xyz: np.ndarray) -> np.ndarray:
    """`contains` for unit vectors xyz (n, 3) and one field centre per vector (ra0, dec0 arrays of n): the
    same test written with dot products, several times faster than with trigonometry per point."""
    a, d = np.radians(ra0), np.radians(dec0)
    cd, sd, ca, sa = np.cos(d), np.sin(d), np.cos(a), np.sin(a)
    x, y, z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    pc = cd * ca * x + cd * sa * y + sd * z
    if fp.shape == "circle":
        return pc >= math.cos(math.radians(fp.half_width))
    pe = -sa * x + ca * y
    pn = -sd * ca * x - sd * sa * y + cd * z
    return (pc > 0) & (np.abs(pe) <= math.tan(math.radians(fp.half_width)) * pc) & (
        np.abs(pn) <= math.tan(math.radians(fp.half_height)) * pc)


def grid_centres(fp: Footprint) -> tuple[np.ndarray, np.ndarray]:
    """Field centres (ra, dec) in degrees, band by band from the south pole; field ids are 1 + the index."""
    width, height = (size * (1 - OVERLAP) for size in fp.tile)
    n_bands = math.ceil(180.0 / height)
    step = 180.0 / n_bands
    ras: list[np.ndarray] = []
    decs: list[np.ndarray] = []
    for k in range(n_bands + 1):
        dec = -90.0 + k * step
        if k in (0, n_bands):
            ras.append(np.zeros(1))
            decs.append(np.full(1, dec))
            continue
        lo, hi = dec - step / 2, dec + step / 2
        nearest_equator = 0.0 if lo <= 0 <= hi else min(abs(lo), abs(hi))
        n = max(1, math.ceil(360.0 * math.cos(math.radians(nearest_equator)) / width - 1e-9))
        # Every other band is shifted by half a field, so that band edges do not line up in long seams.
        ras.append(((np.arange(n) + 0.5 * (k % 2)) * 360.0 / n) % 360.0)
        decs.append(np.full(n, dec))
    return np.concatenate(ras), np.concatenate(decs)


def grid_order(fp: Footprint) -> int:
    """The HEALPix order a field's coverage is computed at: about PIXELS_PER_FIELD pixels per field."""
    pixel_area = fp.area_deg2 / PIXELS_PER_FIELD
    sphere = 4 * math.pi * (180 / math.pi) ** 2
    order = round(math.log(sphere / 12 / pixel_area, 4))
    return int(min(MAX_GRID_ORDER, max(MIN_GRID_ORDER, order)))


def expected_field_count(fp: Footprint) -> int:
    return len(grid_centres(fp)[0])


# -- coverage ------------------------------------------------------------------------------------------------
@dataclass
class Grid:
    """A field grid: centres, and each field's coverage as depth-29 ranges (`lo[start[i]:start[i+1]]`)."""

    ra: np.ndarray
    dec: np.ndarray
    order: int
    lo: np.ndarray
    hi: np.ndarray
    start: np.ndarray  # len(ra) + 1 offsets into lo/hi

    @property
    def field_ids(self) -> np.ndarray:
        return np.arange(1, len(self.ra) + 1)

    def ranges(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.lo[self.start[i]:self.start[i + 1]], self.hi[self.start[i]:self.start[i + 1]]


class _Rings:
    """The rings of constant declination of the HEALPix RING scheme at one order: each ring's declination and
    the range of RING indices it holds (standard HEALPix formulas), to take the pixels of a declination band
    without computing the whole sky."""

    def __init__(self, order: int) -> None:
        nside = 1 << order
        self.nside = nside
        i = np.arange(1, 4 * nside, dtype=np.float64)  # ring numbers from the north pole
        z = np.where(i < nside, 1 - i**2 / (3.0 * nside**2),
                     np.where(i <= 3 * nside, 4.0 / 3 - 2 * i / (3.0 * nside), -1 + (4 * nside - i) ** 2 / (3.0 * nside**2)))
        self.dec = np.degrees(np.arcsin(z))  # decreasing
        counts = 4 * np.minimum(np.minimum(i, nside), 4 * nside - i).astype(np.int64)
        self.start = np.concatenate(([0], np.cumsum(counts)))

    def pixels(self, dec_lo: float, dec_hi: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The pixels whose centres lie in [dec_lo, dec_hi]: (nested ipix, ra deg, dec deg, unit vectors)."""
        from astropy_healpix import healpix_to_lonlat
        from astropy_healpix.core import ring_to_nested

        first = int(np.searchsorted(-self.dec, -dec_hi, side="left"))
        last = int(np.searchsorted(-self.dec, -dec_lo, side="right"))
        ring = np.arange(self.start[first], self.start[last], dtype=np.int64)
        if len(ring) == 0:
            empty = np.zeros(0)
            return np.zeros(0, dtype=np.int64), empty, empty, np.zeros((0, 3))
        lon, lat = healpix_to_lonlat(ring, self.nside, order="ring")
        ra, dec = lon.rad, lat.rad
        cos_dec = np.cos(dec)
        xyz = np.stack([cos_dec * np.cos(ra), cos_dec * np.sin(ra), np.sin(dec)], axis=1)
        nested = np.asarray(ring_to_nested(ring, self.nside), dtype=np.int64)
        return nested, np.degrees(ra), np.degrees(dec), xyz


def _to_ranges(field: np.ndarray, pix: np.ndarray, n_fields: int, order: int):
    """(lo, hi, start) depth-29 ranges per field from distinct (field index, pixel) pairs at `order`, sorted by
    field then pixel."""
    # A new range starts where the field changes or the pixel does not follow the previous one.
    new = np.ones(len(pix), dtype=bool)
    new[1:] = (field[1:] != field[:-1]) | (pix[1:] != pix[:-1] + 1)
    first = np.flatnonzero(new)
    last = np.append(first[1:], len(pix)) - 1
    shift = 2 * (MAX_DEPTH - order)
    lo = pix[first] << shift
    hi = (pix[last] + 1) << shift
    start = np.searchsorted(field[first], np.arange(n_fields + 1), side="left")
    return lo.astype(np.int64), hi.astype(np.int64), start.astype(np.int64)


def build_grid(fov: dict) -> Grid:
    """The field grid of a field of view, with each field's coverage (depth-29 ranges).

    Pixel centres are assigned to fields band by band: a pixel can only fall in a field of a band whose
    declination is within the field's radius of it, and in a field near it in right ascension."""
    fp = footprint(fov)
    ra, dec = grid_centres(fp)
    if len(ra) > MAX_GRID_FIELDS:
        raise FieldOfViewError(
            f"a field of view of {fp.area_deg2:.3g} deg2 needs {len(ra)} fields to tile the sky, more than the "
            f"{MAX_GRID_FIELDS} a grid may have: such an instrument is planned only on error boxes")
    order = grid_order(fp)
    rings = _Rings(order)
    npix = np.int64(12 * 4**order)
    radius = fp.radius + 1e-9
    pairs_f: list[np.ndarray] = []
    pairs_p: list[np.ndarray] = []
    band_decs, band_start = np.unique(dec, return_index=True)
    band_end = np.append(band_start[1:], len(dec))
    for bdec, b0, b1 in zip(band_decs, band_start, band_end):
        spix, sra, _, sxyz = rings.pixels(bdec - radius, bdec + radius)
        if len(spix) == 0:
            continue
        n = b1 - b0
        reach = abs(bdec) + radius
        if n <= 8 or reach >= 89.0:
            tries = [(np.full(len(sra), j), slice(None)) for j in range(n)]
        else:
            # A field reaches at most half_ra degrees of RA from its centre within the band's reach: only the
            # fields whose centre is that close in RA to a pixel can hold it.
            half_ra = math.degrees(math.asin(min(1.0, math.sin(math.radians(radius)) / math.cos(math.radians(reach)))))
            dra = 360.0 / n
            x = ((sra - ra[b0]) % 360.0) / dra
            first = np.ceil(x - half_ra / dra).astype(np.int64)
            last = np.floor(x + half_ra / dra).astype(np.int64)
            tries = []
            for k in range(int((last - first).max()) + 1):
                ok = np.flatnonzero(first + k <= last)
                tries.append(((first[ok] + k) % n, ok))
        band_f, band_p = [], []
        for j, rows in tries:
            inside = _contains_xyz(fp, ra[b0 + j], np.full(len(j), bdec), sxyz[rows])
            band_f.append(j[inside])
            band_p.append(spix[rows][inside])
        # Sorted band by band (fields are numbered band after band): many small sorts beat one big one.
        key = np.sort(np.concatenate(band_f) * npix + np.concatenate(band_p))
        pairs_f.append(b0 + key // npix)
        pairs_p.append(key % npix)
    field = np.concatenate(pairs_f) if pairs_f else np.zeros(0, dtype=np.int64)
    pix = np.concatenate(pairs_p) if pairs_p else np.zeros(0, dtype=np.int64)
    lo, hi, start = _to_ranges(field, pix, len(ra), order)
    return Grid(ra=ra, dec=dec, order=order, lo=lo, hi=hi, start=start)


def single_field(fov: dict, ra: float, dec: float) -> Grid:
    """A one-field grid centred on (ra, dec) (for error boxes), its coverage at the instrument's order
    (finer for fields too small for it, so that the field holds pixels)."""
    from astropy_healpix import HEALPix
    import astropy.units as u

    fp = footprint(fov)
    order = grid_order(fp)
    # Fields too small for a sky grid still get ~PIXELS_PER_FIELD pixels: up to order 20 (0.2 arcsec).
    area_order = math.ceil(math.log(4 * math.pi * (180 / math.pi) ** 2 / 12 / (fp.area_deg2 / PIXELS_PER_FIELD), 4))
    order = int(min(20, max(order, area_order)))
    hp = HEALPix(nside=1 << order, order="nested")
    pad = hp.pixel_resolution.to_value(u.deg)
    cand = np.unique(np.asarray(hp.cone_search_lonlat(ra * u.deg, dec * u.deg, (fp.radius + pad) * u.deg),
                                dtype=np.int64))
    lon, lat = hp.healpix_to_lonlat(cand)
    pix = np.sort(cand[contains(fp, ra, dec, lon.deg, lat.deg)])
    if len(pix) == 0:  # smaller than a pixel: the pixel holding the centre
        pix = np.array([int(hp.lonlat_to_healpix(ra * u.deg, dec * u.deg))], dtype=np.int64)
    lo, hi, start = _to_ranges(np.zeros(len(pix), dtype=np.int64), pix, 1, order)
    return Grid(ra=np.array([float(ra) % 360.0]), dec=np.array([float(dec)]), order=order, lo=lo, hi=hi, start=start)


# -- stored grids ----------------------------------------------------------------------------------------------
# Grids by field of view, per process: a grid depends on nothing else (instruments of one field of view share
# it), so an entry never goes stale. The few fields of view of a network fit easily (a 1.9 deg grid is ~6 MB).
_CACHE: dict[str, Grid] = {}
_CACHE_MAX = 16


def _fov_key(fov: dict) -> str:
    import json

    return json.dumps(fov, sort_keys=True)


def _store(session, instrument_id: int, fov: dict, grid: Grid) -> None:
    """Replace the instrument's stored fields by `grid` (one COPY)."""
    import io

    from sqlalchemy import delete

    from ..models import InstrumentField

    session.execute(delete(InstrumentField).where(InstrumentField.instrument_id == instrument_id))
    fov_text = _fov_key(fov).replace("\\", "\\\\")
    buf = io.StringIO()
    for i in range(len(grid.ra)):
        lo, hi = grid.ranges(i)
        flat = np.empty(2 * len(lo), dtype=np.int64)
        flat[0::2], flat[1::2] = lo, hi
        buf.write(f"{instrument_id}\t{i + 1}\t{float(grid.ra[i])!r}\t{float(grid.dec[i])!r}\t{grid.order}\t"
                  f"{{{','.join(map(str, flat.tolist()))}}}\t{fov_text}\n")
    buf.seek(0)
    cursor = session.connection().connection.cursor()
    try:
        cursor.copy_expert("COPY instrument_fields (instrument_id, field_id, ra, dec, healpix_order, ranges, "
                           "field_of_view) FROM STDIN", buf)
    finally:
        cursor.close()


def load_grid(session, instrument_id: int) -> Grid | None:
    """The stored grid of an instrument (None when it has none)."""
    from sqlalchemy import text

    rows = session.execute(text(
        "SELECT field_id, ra, dec, healpix_order, ranges FROM instrument_fields WHERE instrument_id = :i "
        "ORDER BY field_id"), {"i": instrument_id}).all()
    if not rows:
        return None
    counts = np.array([len(r[4]) // 2 for r in rows], dtype=np.int64)
    flat = np.fromiter((x for r in rows for x in r[4]), dtype=np.int64, count=int(2 * counts.sum()))
    return Grid(ra=np.array([r[1] for r in rows], dtype=float), dec=np.array([r[2] for r in rows], dtype=float),
                order=int(rows[0][3]), lo=flat[0::2].copy(), hi=flat[1::2].copy(),
                start=np.concatenate(([0], np.cumsum(counts))))


def instrument_grid(session, instrument_id: int, fov: dict) -> Grid:
    """The field grid of an instrument for its field of view `fov`, stored in instrument_fields.

    Built once: when the instrument has no stored grid, or one of another field of view (its field of view
    was changed), the grid is built (or taken from this process's cache) and stored, under a per-instrument
    lock that makes a concurrent caller wait and then find it. Commits the session when it stores."""
    from sqlalchemy import text

    key = _fov_key(fov)
    footprint(fov)  # a field of view no grid can be made of fails here, before any lock

    def stored_matches() -> bool:
        found = session.execute(text(
            "SELECT field_of_view FROM instrument_fields WHERE instrument_id = :i LIMIT 1"), {"i": instrument_id}
        ).scalar()
        return found is not None and _fov_key(found) == key

    if stored_matches():
        grid = _CACHE.get(key) or load_grid(session, instrument_id)
    else:
        # Transaction-level advisory lock on the instrument: a second caller waits, then finds the grid stored.
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext('instrument_fields'), :i)"), {"i": instrument_id})
        if stored_matches():
            grid = _CACHE.get(key) or load_grid(session, instrument_id)
        else:
            grid = _CACHE.get(key) or build_grid(fov)
            _store(session, instrument_id, fov, grid)
        session.commit()
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = grid
    return grid
