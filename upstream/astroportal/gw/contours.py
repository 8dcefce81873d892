"""The 50% and 90% credible contours of a sky map as GeoJSON, with numpy alone.

How: the credible level (the tiles' cumprob) is sampled on a raster in a frame rotated so that the map's densest
tile sits at (0, 0) — an equirectangular grid is nearly uniform there, and a region around the position never
straddles the grid's seam or a pole. The raster covers the region (plus a margin), or the whole sphere for very
large regions. Marching squares on the inside/outside mask of each level gives closed lines through the middle
of the raster's cell edges; they are rotated back to ra/dec. The line is therefore within one raster cell of the
tiles' own boundary (the cell size is recorded in the output).
"""

from __future__ import annotations

import math

import numpy as np

from .skymaps import Skymap, healpix29, uniq_orders

LEVELS = (0.5, 0.9)
# Raster cells along the longer side of the region's box.
RASTER_CELLS = 480


def _rotation(ra0: float, dec0: float) -> np.ndarray:
    """The matrix taking unit vectors of (ra, dec) to the frame where (ra0, dec0) is at lon 0, lat 0."""
    a, d = math.radians(ra0), math.radians(dec0)
    rz = np.array([[math.cos(a), math.sin(a), 0], [-math.sin(a), math.cos(a), 0], [0, 0, 1]])
    ry = np.array([[math.cos(d), 0, math.sin(d)], [0, 1, 0], [-math.sin(d), 0, math.cos(d)]])
    return ry @ rz


def _to_vec(lon_deg, lat_deg) -> np.ndarray:
    lon, lat = np.radians(lon_deg), np.radians(lat_deg)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)


def _to_lonlat(vec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lon = np.degrees(np.arctan2(vec[..., 1], vec[..., 0]))
    lat = np.degrees(np.arcsin(np.clip(vec[..., 2], -1, 1)))
    return lon, lat


def _tile_centres(skymap: Skymap, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from astropy_healpix import healpix_to_lonlat
    import astropy.units as u

    uniq = skymap.uniq[keep]
    orders = uniq_orders(uniq)
    ra = np.empty(uniq.size)
    dec = np.empty(uniq.size)
    for order in np.unique(orders):
        sel = orders == order
        lon, lat = healpix_to_lonlat(uniq[sel] - (np.int64(4) << (2 * int(order))), 1 << int(order), order="nested")
        ra[sel], dec[sel] = lon.to_value(u.deg), lat.to_value(u.deg)
    return ra, dec


def credible_contours(skymap: Skymap, lo: np.ndarray, cumprob: np.ndarray, levels=LEVELS) -> dict:
    """GeoJSON FeatureCollection: a Point feature at the densest tile, then one MultiLineString per level
    (properties credible_level in percent), coordinates [ra in [0, 360), dec] in degrees."""
    densest = int(np.argmin(cumprob))
    ra_c, dec_c = (float(x[0]) for x in _tile_centres(skymap, np.array([densest])))
    rot = _rotation(ra_c, dec_c)

    # The box (in the rotated frame) holding the outermost level's tiles, with a margin of its biggest tile.
    outer = cumprob < max(levels)
    ra_t, dec_t = _tile_centres(skymap, outer)
    lon_t, lat_t = _to_lonlat(_to_vec(ra_t, dec_t) @ rot.T)
    orders = uniq_orders(skymap.uniq[outer])
    margin = 2 * 58.6 / 2.0 ** orders.min()
    lon_lo, lon_hi = lon_t.min() - margin, lon_t.max() + margin
    lat_lo, lat_hi = max(-90.0, lat_t.min() - margin), min(90.0, lat_t.max() + margin)
    if lon_hi - lon_lo > 270 or lat_hi - lat_lo > 150:
        lon_lo, lon_hi, lat_lo, lat_hi = -180.0, 180.0, -90.0, 90.0
    lon_lo, lon_hi = max(-180.0, lon_lo), min(180.0, lon_hi)
    cell = max(lon_hi - lon_lo, lat_hi - lat_lo) / RASTER_CELLS
    lons = np.arange(lon_lo, lon_hi + cell / 2, cell)
    lats = np.arange(lat_lo, lat_hi + cell / 2, cell)
    glon, glat = np.meshgrid(lons, lats)
    ra_g, dec_g = _to_lonlat(_to_vec(glon, glat) @ rot)  # rot is orthogonal: its transpose inverts it
    # The credible level at each raster point: the cumprob of the tile holding it.
    order = np.argsort(lo)
    lo_sorted = lo[order]
    hi_sorted = (lo + (np.int64(1) << (2 * (29 - uniq_orders(skymap.uniq)))))[order]
    points = healpix29(ra_g.ravel() % 360.0, dec_g.ravel())
    idx = np.clip(np.searchsorted(lo_sorted, points, side="right") - 1, 0, None)
    level_map = cumprob[order][idx]
    # A point outside every tile (a partial map) lies beyond every level.
    level_map[(points < lo_sorted[idx]) | (points >= hi_sorted[idx])] = 1.0
    level_map = level_map.reshape(glon.shape)

    features = [{"type": "Feature", "properties": {"name": "center"},
                 "geometry": {"type": "Point", "coordinates": [ra_c % 360.0, dec_c]}}]
    for p in levels:
        lines = []
        for line in _march(level_map < p):
            rows, cols = line[:, 0], line[:, 1]
            lon = lon_lo + cols * cell
            lat = lat_lo + rows * cell
            ra, dec = _to_lonlat(_to_vec(lon, lat) @ rot)
            lines.append([[round(float(r) % 360.0, 5), round(float(d), 5)] for r, d in zip(ra, dec)])
        features.append({"type": "Feature", "properties": {"credible_level": round(p * 100)},
                         "geometry": {"type": "MultiLineString", "coordinates": lines}})
    return {"type": "FeatureCollection", "features": features, "properties": {"raster_cell_deg": float(cell)}}


# Marching squares: corner bits (top-left 1, top-right 2, bottom-right 4, bottom-left 8) -> edges crossed,
# edges numbered top 0, right 1, bottom 2, left 3. Saddles (5, 10) keep the two inside corners apart.
_SEGMENTS = {
    1: [(3, 0)], 2: [(0, 1)], 3: [(3, 1)], 4: [(1, 2)], 5: [(3, 0), (1, 2)], 6: [(0, 2)], 7: [(3, 2)],
    8: [(2, 3)], 9: [(2, 0)], 10: [(0, 1), (2, 3)], 11: [(2, 1)], 12: [(1, 3)], 13: [(1, 0)], 14: [(0, 3)],
}


def _march(mask: np.ndarray) -> list[np.ndarray]:
    """Closed outlines of the True cells of `mask`, as arrays of (row, col) points at cell-edge midpoints."""
    m = np.pad(mask, 1, constant_values=False)  # every outline closes inside the padded grid
    h, w = m.shape
    case = (m[:-1, :-1] * 1 + m[:-1, 1:] * 2 + m[1:, 1:] * 4 + m[1:, :-1] * 8).astype(np.int8)
    rows, cols = np.nonzero((case != 0) & (case != 15))
    # A point on an edge: horizontal edges (between (r, c) and (r, c+1)) get id 2*(r*w+c), vertical ones
    # (between (r, c) and (r+1, c)) id 2*(r*w+c)+1; each cell's edges in the order top, right, bottom, left.
    def edge_id(r, c, e):
        return np.where(e == 0, 2 * (r * w + c), np.where(e == 1, 2 * (r * w + c + 1) + 1,
                        np.where(e == 2, 2 * ((r + 1) * w + c), 2 * (r * w + c) + 1)))

    nxt: dict[int, int] = {}
    for k, pairs in _SEGMENTS.items():
        sel = case[rows, cols] == k
        r, c = rows[sel], cols[sel]
        for a, b in pairs:
            for u, v in zip(edge_id(r, c, a).tolist(), edge_id(r, c, b).tolist()):
                nxt[u] = v
    lines = []
    seen: set[int] = set()
    for start in nxt:
        if start in seen:
            continue
        chain = [start]
        seen.add(start)
        cur = nxt.get(start)
        while cur is not None and cur not in seen:
            chain.append(cur)
            seen.add(cur)
            cur = nxt.get(cur)
        chain.append(chain[0])
        ids = np.array(chain, dtype=np.int64)
        vertical = ids % 2 == 1
        base = ids // 2
        r, c = base // w, base % w
        # midpoints, in unpadded raster coordinates
        pr = np.where(vertical, r + 0.5, r) - 1
        pc = np.where(vertical, c, c + 0.5) - 1
        lines.append(np.stack([pr, pc], axis=1))
    return lines
