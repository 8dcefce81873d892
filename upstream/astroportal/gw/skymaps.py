"""Sky maps as multi-order HEALPix tiles, and the depth-29 nested index of sky positions.

A `Skymap` is a list of multi-order tiles (NUNIQ indices) with a probability density per steradian, normalised
so that the probabilities sum to 1. It comes from a multi-order FITS file (LVK alerts), a flat HEALPix FITS file
(older alerts such as GW190425's bayestar.fits.gz, coarsened to multi-order) or an error circle (Fermi, Swift).

Stored form: each tile is the depth-29 nested range [lo, hi), with `cumprob`, the probability of all tiles
denser than it (ties broken by lo). A tile belongs to the p credible region iff cumprob < p: the tile that
crosses p is included, so the region holds at least p.
"""

from __future__ import annotations

import gzip
import io
import math
from dataclasses import dataclass, field

import numpy as np

# Depth 29 (nside 2**29) is the finest order whose nested indices fit a signed 64-bit integer; every tile of a
# multi-order map is a contiguous range of depth-29 indices, so a position's depth-29 index locates it in any map.
MAX_DEPTH = 29
NSIDE29 = 1 << MAX_DEPTH
SPHERE_DEG2 = 4 * math.pi * (180 / math.pi) ** 2
SR_TO_DEG2 = (180 / math.pi) ** 2

# A flat map is coarsened by merging four sibling pixels while their summed probability stays below this:
# the tiles that carry the probability keep their resolution, the empty sky becomes a few hundred big tiles.
COARSEN_MAX_PROB = 2e-4

# Error circles: the tile size is at most this fraction of the radius, and the map reaches this many radii.
CIRCLE_TILES_PER_RADIUS = 5
CIRCLE_EXTENT_RADII = 4.0


class SkymapError(ValueError):
    """A sky map that cannot be read; the message says what is wrong with it."""


@dataclass
class Skymap:
    """Multi-order tiles: `uniq` (NUNIQ), `probdensity` per steradian, optional distance layers per tile."""

    name: str
    uniq: np.ndarray
    probdensity: np.ndarray
    distmu: np.ndarray | None = None
    distsigma: np.ndarray | None = None
    distnorm: np.ndarray | None = None
    distmean: float | None = None
    diststd: float | None = None
    meta: dict = field(default_factory=dict)

    @property
    def orders(self) -> np.ndarray:
        return uniq_orders(self.uniq)

    @property
    def areas_sr(self) -> np.ndarray:
        return tile_areas_sr(self.orders)

    @property
    def probabilities(self) -> np.ndarray:
        return self.probdensity * self.areas_sr


# -- indices -----------------------------------------------------------------------------------------------------
def healpix29(ra_deg, dec_deg):
    """The nested HEALPix index at depth 29 of (ra, dec) in degrees: an int for scalars, an int64 array otherwise."""
    import astropy.units as u
    from astropy_healpix import lonlat_to_healpix

    scalar = np.isscalar(ra_deg) and np.isscalar(dec_deg)
    ra = np.asarray(ra_deg, dtype=float) % 360.0
    dec = np.asarray(dec_deg, dtype=float)
    ipix = lonlat_to_healpix(ra * u.deg, dec * u.deg, NSIDE29, order="nested")
    return int(ipix) if scalar else np.asarray(ipix, dtype=np.int64)


def uniq_orders(uniq: np.ndarray) -> np.ndarray:
    """The order of each NUNIQ index (uniq = 4 * 4**order + ipix)."""
    uniq = np.asarray(uniq, dtype=np.int64)
    # bit_length - 3, halved: exact for every order up to 29 (no floating point logarithm).
    bits = np.zeros(uniq.shape, dtype=np.int64)
    value = uniq.copy()
    for shift in (32, 16, 8, 4, 2, 1):
        big = value >= (np.int64(1) << shift)
        bits[big] += shift
        value[big] >>= shift
    return (bits - 2) // 2


def tile_areas_sr(orders: np.ndarray) -> np.ndarray:
    return 4 * math.pi / (12 * 4.0 ** np.asarray(orders, dtype=float))


def uniq_to_ranges(uniq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each tile's depth-29 nested range [lo, hi)."""
    uniq = np.asarray(uniq, dtype=np.int64)
    orders = uniq_orders(uniq)
    ipix = uniq - (np.int64(4) << (2 * orders))
    shift = 2 * (MAX_DEPTH - orders)
    return ipix << shift, (ipix + 1) << shift


def cumulative_probability(skymap: Skymap) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lo, hi, cumprob) per tile, in the skymap's tile order: cumprob is the probability of every tile denser
    than this one, ties broken by lo (the probability *before* it in the credible-region order)."""
    lo, hi = uniq_to_ranges(skymap.uniq)
    prob = skymap.probabilities
    order = np.lexsort((lo, -skymap.probdensity))
    before = np.empty_like(prob)
    before[order] = np.concatenate(([0.0], np.cumsum(prob[order])[:-1]))
    return lo, hi, before


def credible_area_deg2(skymap: Skymap, p: float, cumprob: np.ndarray | None = None) -> float:
    """Area of the p credible region (tiles with cumprob < p), square degrees."""
    if cumprob is None:
        cumprob = cumulative_probability(skymap)[2]
    return float(skymap.areas_sr[cumprob < p].sum() * SR_TO_DEG2)


def densest_position(skymap: Skymap) -> tuple[float, float]:
    """(ra, dec) in degrees of the centre of the densest tile."""
    from astropy_healpix import healpix_to_lonlat
    import astropy.units as u

    k = int(np.argmax(skymap.probdensity))
    order = int(uniq_orders(skymap.uniq[k:k + 1])[0])
    lon, lat = healpix_to_lonlat(int(skymap.uniq[k]) - (4 << (2 * order)), 1 << order, order="nested")
    return float(lon.to_value(u.deg)) % 360.0, float(lat.to_value(u.deg))


# -- reading -----------------------------------------------------------------------------------------------------
def _open_fits(data: bytes):
    from astropy.io import fits

    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise SkymapError(f"the sky map is gzip data that does not decompress: {exc}") from None
    if not data.startswith(b"SIMPLE"):
        raise SkymapError("the sky map is not a FITS file (it should start with SIMPLE, gzipped or not)")
    try:
        hdus = fits.open(io.BytesIO(data), memmap=False)
        hdus.verify("silentfix")
        table = next((h for h in hdus[1:] if isinstance(h, fits.BinTableHDU)), None)
    except Exception as exc:  # astropy raises many kinds for a damaged file
        raise SkymapError(f"the sky map FITS file cannot be read: {exc}") from None
    if table is None:
        raise SkymapError("the sky map FITS file has no binary table of HEALPix pixels")
    return table


def _column(table, name: str) -> np.ndarray | None:
    names = [c.upper() for c in table.columns.names]
    if name not in names:
        return None
    return np.asarray(table.data.field(names.index(name)), dtype=float).ravel()


def _header_float(header, key: str) -> float | None:
    value = header.get(key)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def read_fits(data: bytes, name: str) -> Skymap:
    """A multi-order (ORDERING NUNIQ) or flat (NESTED or RING) HEALPix FITS sky map, gzipped or not."""
    table = _open_fits(data)
    header = table.header
    ordering = str(header.get("ORDERING", "")).upper()
    meta = {k: header.get(k) for k in ("OBJECT", "DATE-OBS", "CREATOR", "INSTRUME", "ORDERING") if k in header}
    dist = {"distmean": _header_float(header, "DISTMEAN"), "diststd": _header_float(header, "DISTSTD")}
    try:
        if ordering == "NUNIQ" or "UNIQ" in [c.upper() for c in table.columns.names]:
            sky = _multiorder(table, name)
        elif ordering in ("NESTED", "RING"):
            sky = _flat(table, name, nested=ordering == "NESTED")
        else:
            raise SkymapError(f"the sky map's ORDERING is {ordering or 'missing'}; NUNIQ, NESTED or RING are read")
    except SkymapError:
        raise
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise SkymapError(f"the sky map's table cannot be read: {exc}") from None
    sky.distmean, sky.diststd, sky.meta = dist["distmean"], dist["diststd"], meta
    return _normalised(sky)


def _multiorder(table, name: str) -> Skymap:
    names = [c.upper() for c in table.columns.names]
    uniq = np.asarray(table.data.field(names.index("UNIQ")), dtype=np.int64).ravel()
    density = _column(table, "PROBDENSITY")
    if density is None:
        raise SkymapError("the multi-order sky map has no PROBDENSITY column")
    if uniq.size == 0 or (uniq < 4).any() or (uniq_orders(uniq) > MAX_DEPTH).any():
        raise SkymapError("the multi-order sky map has no tiles, or UNIQ values outside orders 0..29")
    return Skymap(name, uniq, density, _column(table, "DISTMU"), _column(table, "DISTSIGMA"), _column(table, "DISTNORM"))


def _flat(table, name: str, *, nested: bool) -> Skymap:
    prob = _column(table, "PROB")
    if prob is None:
        raise SkymapError("the flat HEALPix sky map has no PROB column")
    npix = prob.size
    nside = int(round(math.sqrt(npix / 12)))
    if 12 * nside * nside != npix or nside & (nside - 1):
        raise SkymapError(f"the flat HEALPix sky map has {npix} pixels, not 12 * nside**2 for a power-of-two nside")
    layers = {k: _column(table, k.upper()) for k in ("distmu", "distsigma", "distnorm")}
    if not nested:
        from astropy_healpix.core import nested_to_ring

        # Pixel i of the nested map is ring pixel nested_to_ring(i).
        idx = np.asarray(nested_to_ring(np.arange(npix), nside), dtype=np.int64)
        prob = prob[idx]
        layers = {k: (v[idx] if v is not None else None) for k, v in layers.items()}
    return coarsen(name, prob, nside.bit_length() - 1, layers)


def coarsen(name: str, prob: np.ndarray, order: int, layers: dict[str, np.ndarray | None],
            max_prob: float = COARSEN_MAX_PROB) -> Skymap:
    """A flat nested map (probability per pixel at `order`) as multi-order tiles: four siblings become their
    parent while their summed probability is below `max_prob`. Total probability is kept exactly; a merged
    tile's distance layers are the probability-weighted means of its children's (their plain mean when the
    children hold no probability) — an approximation, good where little probability is."""
    prob = np.nan_to_num(np.asarray(prob, dtype=float), nan=0.0, posinf=0.0, neginf=0.0).clip(min=0.0)
    layers = {k: np.asarray(v, dtype=float) for k, v in layers.items() if v is not None}
    # Tiles decided so far (kept at their order), and the level being merged.
    kept_uniq: list[np.ndarray] = []
    kept_prob: list[np.ndarray] = []
    kept_layers: dict[str, list[np.ndarray]] = {k: [] for k in layers}
    ipix = np.arange(prob.size, dtype=np.int64)
    for level in range(order, 0, -1):
        # Siblings are consecutive (ipix >> 2 equal); a parent merges only when all four are still present.
        parent = ipix >> 2
        # ipix is sorted, so complete groups are runs of 4 with the same parent.
        starts = np.flatnonzero(np.r_[True, parent[1:] != parent[:-1]])
        sizes = np.diff(np.r_[starts, parent.size])
        group_prob = np.add.reduceat(prob, starts)
        merge_group = (sizes == 4) & (group_prob < max_prob)
        merge_member = np.repeat(merge_group, sizes)
        stay = ~merge_member
        kept_uniq.append((np.int64(4) << (2 * level)) + ipix[stay])
        kept_prob.append(prob[stay])
        weights = np.where(group_prob[merge_group] > 0, 0, 1)  # plain mean when the group holds nothing
        for k, v in layers.items():
            kept_layers[k].append(v[stay])
            w = prob[merge_member].reshape(-1, 4)
            vals = v[merge_member].reshape(-1, 4)
            finite = np.isfinite(vals)
            w = np.where(finite, w + weights[:, None], 0.0)
            total = w.sum(axis=1)
            mean = np.where(total > 0, (np.where(finite, vals, 0.0) * w).sum(axis=1) / np.where(total > 0, total, 1),
                            vals[:, 0])
            layers[k] = mean
        ipix = parent[starts[merge_group]]
        prob = group_prob[merge_group]
        if ipix.size == 0:
            break
    else:
        kept_uniq.append(4 + ipix)
        kept_prob.append(prob)
        for k in layers:
            kept_layers[k].append(layers[k])
    uniq = np.concatenate(kept_uniq)
    p = np.concatenate(kept_prob)
    sort = np.argsort(uniq)
    uniq, p = uniq[sort], p[sort]
    density = p / tile_areas_sr(uniq_orders(uniq))
    dist = {k: np.concatenate(v)[sort] for k, v in kept_layers.items()}
    return Skymap(name, uniq, density, dist.get("distmu"), dist.get("distsigma"), dist.get("distnorm"))


def _normalised(sky: Skymap) -> Skymap:
    """Refuse a map without probability; scale it to a total of exactly 1 (credible levels need that)."""
    density = np.nan_to_num(np.asarray(sky.probdensity, dtype=float), nan=0.0, posinf=0.0, neginf=0.0).clip(min=0)
    sky.probdensity = density
    total = float(sky.probabilities.sum())
    if not total > 0:
        raise SkymapError("the sky map holds no probability (PROB / PROBDENSITY all zero or invalid)")
    sky.probdensity = density / total
    lo, hi = uniq_to_ranges(sky.uniq)
    order = np.argsort(lo, kind="stable")
    if (hi[order][:-1] > lo[order][1:]).any():
        raise SkymapError("the sky map's tiles overlap (a UNIQ repeated, or a tile inside another)")
    return sky


def from_error_circle(name: str, ra: float, dec: float, radius_deg: float) -> Skymap:
    """A Gaussian sky map for an error circle (Fermi, Swift): density exp(-d**2 / (2 r**2)) at angular distance d
    from (ra, dec), r = the notice's error radius taken as one sigma, out to CIRCLE_EXTENT_RADII radii (then 0).
    Tiles share one order, fine enough for CIRCLE_TILES_PER_RADIUS tiles across a radius."""
    from astropy_healpix import HEALPix
    import astropy.units as u

    if not (math.isfinite(ra) and math.isfinite(dec) and -90 <= dec <= 90):
        raise SkymapError(f"the error circle's position ({ra}, {dec}) is not a sky position")
    if not (math.isfinite(radius_deg) and 0 < radius_deg <= 180):
        raise SkymapError(f"the error circle's radius {radius_deg} deg is not in (0, 180]")
    # Side of an order-n tile ~ sqrt(4 pi / 12) / 2**n rad = 58.6 deg / 2**n.
    side0 = math.degrees(math.sqrt(4 * math.pi / 12))
    order = int(min(MAX_DEPTH, max(0, math.ceil(math.log2(side0 * CIRCLE_TILES_PER_RADIUS / radius_deg)))))
    hp = HEALPix(nside=1 << order, order="nested")
    extent = min(180.0, CIRCLE_EXTENT_RADII * radius_deg)
    ipix = np.unique(np.asarray(hp.cone_search_lonlat(ra * u.deg, dec * u.deg, extent * u.deg), dtype=np.int64))
    lon, lat = hp.healpix_to_lonlat(ipix)
    d = _angular_distance_deg(ra, dec, lon.to_value(u.deg), lat.to_value(u.deg))
    density = np.where(d <= extent, np.exp(-0.5 * (d / radius_deg) ** 2), 0.0)
    if not density.sum() > 0:  # a circle smaller than its tiles' centres reach: the tile holding the position
        ipix = np.array([int(hp.lonlat_to_healpix(ra * u.deg, dec * u.deg))], dtype=np.int64)
        density = np.ones(1)
    sky = Skymap(name, (np.int64(4) << (2 * order)) + ipix, density)
    sky.meta = {"ra": ra, "dec": dec, "error_radius_deg": radius_deg, "profile": "gaussian"}
    return _normalised(sky)


def _angular_distance_deg(ra1, dec1, ra2, dec2) -> np.ndarray:
    ra1, dec1, ra2, dec2 = (np.radians(x) for x in (ra1, dec1, ra2, dec2))
    s = np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(s, 0, 1))))


# -- writing -----------------------------------------------------------------------------------------------------
def to_multiorder_fits(uniq, probdensity, distmu=None, distsigma=None, distnorm=None, *,
                       meta: dict | None = None) -> bytes:
    """A multi-order FITS file (ORDERING NUNIQ) of the tiles, as LVK distributes them."""
    from astropy.io import fits

    cols = [fits.Column("UNIQ", "K", array=np.asarray(uniq, dtype=np.int64)),
            fits.Column("PROBDENSITY", "D", unit="sr-1", array=np.asarray(probdensity, dtype=float))]
    for label, values, unit in (("DISTMU", distmu, "Mpc"), ("DISTSIGMA", distsigma, "Mpc"),
                                ("DISTNORM", distnorm, "Mpc-2")):
        if values is not None:
            cols.append(fits.Column(label, "D", unit=unit, array=np.asarray(values, dtype=float)))
    table = fits.BinTableHDU.from_columns(cols)
    header = table.header
    header["PIXTYPE"] = ("HEALPIX", "HEALPIX pixelisation")
    header["ORDERING"] = ("NUNIQ", "Pixel ordering scheme: RING, NESTED, or NUNIQ")
    header["COORDSYS"] = ("C", "Ecliptic, Galactic or Celestial (equatorial)")
    header["MOCORDER"] = int(uniq_orders(np.asarray(uniq)).max()) if len(uniq) else 0
    header["INDXSCHM"] = ("EXPLICIT", "Indexing: IMPLICIT or EXPLICIT")
    for key, value in (meta or {}).items():
        if value is not None:
            header[key] = value
    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(buf)
    return buf.getvalue()
