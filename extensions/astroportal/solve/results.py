"""What a solved job tells: nova's calibration numbers, the matched stars, a coordinate grid, sources in the field.

All from the files solve-field wrote (the WCS header, the correspondence table), read with astropy.
Pixel positions follow the FITS convention of solve-field (the first pixel's centre is 1,1; for a JPEG or PNG
the first row is the top one) and are answered 0-based for drawing: x-1, y-1.
"""

from __future__ import annotations

import io
import math
import warnings

import numpy as np

GRID_STEPS_DEG = [1 / 60, 2 / 60, 5 / 60, 10 / 60, 0.25, 0.5, 1, 2, 5, 10, 15, 30]


def read_wcs(header_bytes: bytes):
    """(astropy WCS, header) of a solve-field WCS file."""
    from astropy.io import fits
    from astropy.wcs import WCS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        header = fits.Header.fromfile(io.BytesIO(header_bytes))
        return WCS(header), header


def calibration(header_bytes: bytes, width: int | None = None, height: int | None = None) -> dict:
    """nova's calibration of a WCS: ra, dec (image centre, degrees), radius (centre to corner, degrees),
    pixscale ("/pixel), orientation (degrees: up is this much east of north) and parity (the sign of the
    CD matrix's determinant, as astrometry.net's libraries give it), plus the image's size and width/height
    on the sky."""
    wcs, header = read_wcs(header_bytes)
    width = int(width or header.get("IMAGEW") or 0)
    height = int(height or header.get("IMAGEH") or 0)
    cd = wcs.wcs.cd if wcs.wcs.has_cd() else wcs.pixel_scale_matrix
    (cd11, cd12), (cd21, cd22) = cd
    det = cd11 * cd22 - cd12 * cd21
    parity = 1.0 if det >= 0 else -1.0
    t = parity * cd11 + cd22
    a = parity * cd21 - cd12
    orientation = -math.degrees(math.atan2(a, t))
    pixscale = math.sqrt(abs(det)) * 3600
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ra, dec = (float(v) for v in wcs.all_pix2world([[(width + 1) / 2, (height + 1) / 2]], 1)[0])
    radius = math.hypot(width, height) / 2 * pixscale / 3600
    return {"ra": ra % 360, "dec": dec, "radius": radius, "pixscale": pixscale, "orientation": orientation,
            "parity": parity, "width": width, "height": height,
            "width_arcsec": width * pixscale, "height_arcsec": height * pixscale}


def matched_stars(corr_bytes: bytes, limit: int = 2000) -> list[dict]:
    """The index stars solve-field matched, where the WCS puts them on the image (0-based pixels) and where
    the image's own star was found."""
    from astropy.io import fits

    with fits.open(io.BytesIO(corr_bytes)) as hdul:
        table = next((h.data for h in hdul if getattr(h, "columns", None) is not None), None)
        if table is None:
            return []
        names = {n.lower(): n for n in table.columns.names}
        out = []
        for row in table[:limit]:
            out.append({"x": float(row[names["index_x"]]) - 1, "y": float(row[names["index_y"]]) - 1,
                        "ra": float(row[names["index_ra"]]), "dec": float(row[names["index_dec"]]),
                        "field_x": float(row[names["field_x"]]) - 1, "field_y": float(row[names["field_y"]]) - 1})
        return out


def _step(span: float) -> float:
    """A round grid step giving about four lines across `span` degrees."""
    for step in GRID_STEPS_DEG:
        if span / step <= 6:
            return step
    return GRID_STEPS_DEG[-1]


def grid(header_bytes: bytes, width: int, height: int, samples: int = 120) -> list[dict]:
    """Lines of constant RA and of constant Dec over the image: [{kind, value, points: [[x, y], ...]}]
    in 0-based pixels, each line cut where it leaves the image (with a small margin)."""
    wcs, _ = read_wcs(header_bytes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xs, ys = np.meshgrid(np.linspace(1, width, 15), np.linspace(1, height, 15))
        ra, dec = wcs.all_pix2world(xs.ravel(), ys.ravel(), 1)
        ra_c, _ = wcs.all_pix2world([(width + 1) / 2], [(height + 1) / 2], 1)
    ra_off = (ra - ra_c[0] + 180) % 360 - 180
    dec_lo, dec_hi = float(np.nanmin(dec)), float(np.nanmax(dec))
    pole_inside = dec_hi > 89 or dec_lo < -89
    ra_lo, ra_hi = (-180.0, 180.0) if pole_inside else (float(np.nanmin(ra_off)), float(np.nanmax(ra_off)))
    dec_step = _step(dec_hi - dec_lo)
    ra_step = _step((ra_hi - ra_lo) * max(math.cos(math.radians((dec_lo + dec_hi) / 2)), 0.2))
    lines = []
    margin = 0.02 * max(width, height)

    def add(kind: str, value: float, ras: np.ndarray, decs: np.ndarray) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            px, py = wcs.all_world2pix(ras, decs, 1)
        inside = (px > 1 - margin) & (px < width + margin) & (py > 1 - margin) & (py < height + margin)
        segment: list[list[float]] = []
        for x, y, ok in zip(px, py, inside):
            if ok and math.isfinite(x) and math.isfinite(y):
                segment.append([round(float(x) - 1, 2), round(float(y) - 1, 2)])
            elif segment:
                if len(segment) > 1:
                    lines.append({"kind": kind, "value": value, "points": segment})
                segment = []
        if len(segment) > 1:
            lines.append({"kind": kind, "value": value, "points": segment})

    dec_range = np.linspace(max(dec_lo - dec_step, -90), min(dec_hi + dec_step, 90), samples)
    start = math.floor((ra_c[0] + ra_lo) / ra_step) * ra_step
    value = start
    while value <= ra_c[0] + ra_hi + ra_step and len(lines) < 60:
        add("ra", round(value % 360, 6), np.full(samples, value % 360), dec_range)
        value += ra_step
    ra_range = np.linspace(ra_c[0] + ra_lo - ra_step, ra_c[0] + ra_hi + ra_step, samples) % 360
    value = math.floor(dec_lo / dec_step) * dec_step
    while value <= dec_hi + dec_step and len(lines) < 120:
        if -90 < value < 90:
            add("dec", round(value, 6), ra_range, np.full(samples, value))
        value += dec_step
    return lines


def sources_in_field(session, user, header_bytes: bytes, cal: dict) -> list[dict]:
    """The portal's sources the user may see whose position falls on the image, with their pixel positions."""
    from astroportal.domain.sources import MAX_PER_PAGE, list_sources

    wcs, _ = read_wcs(header_bytes)
    found = list_sources(session, user, ra=cal["ra"], dec=cal["dec"], radius=min(cal["radius"] * 1.01, 180),
                         num_per_page=MAX_PER_PAGE, sort_by=None)["sources"]
    out = []
    for src in found:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x, y = (float(v) for v in wcs.all_world2pix([[src["ra"], src["dec"]]], 1)[0])
        if 0.5 <= x <= cal["width"] + 0.5 and 0.5 <= y <= cal["height"] + 0.5:
            out.append({"id": src["id"], "ra": src["ra"], "dec": src["dec"], "x": x - 1, "y": y - 1})
    return out
