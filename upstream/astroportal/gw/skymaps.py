"""Sky maps as multi-order HEALPix tiles, and the depth-29 nested index of sky positions."""

from __future__ import annotations

import numpy as np

# Depth 29 (nside 2**29) is the finest order whose nested indices fit a signed 64-bit integer; every tile of a
# multi-order map is a contiguous range of depth-29 indices, so a position's depth-29 index locates it in any map.
MAX_DEPTH = 29
NSIDE29 = 1 << MAX_DEPTH


def healpix29(ra_deg, dec_deg):
    """The nested HEALPix index at depth 29 of (ra, dec) in degrees: an int for scalars, an int64 array otherwise."""
    import astropy.units as u
    from astropy_healpix import lonlat_to_healpix

    scalar = np.isscalar(ra_deg) and np.isscalar(dec_deg)
    ra = np.asarray(ra_deg, dtype=float) % 360.0
    dec = np.asarray(dec_deg, dtype=float)
    ipix = lonlat_to_healpix(ra * u.deg, dec * u.deg, NSIDE29, order="nested")
    return int(ipix) if scalar else np.asarray(ipix, dtype=np.int64)
