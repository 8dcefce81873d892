"""The photometric filters the portal knows, by their sncosmo bandpass names.

Photometry points and instruments' filter lists name bandpasses the way sncosmo's registry does, so that
light curves can be handed to sncosmo without translation. Only names that sncosmo ships are listed.
"""

from __future__ import annotations

from typing import Iterable

from .errors import ApiError
from .validate import shown

_GROUPS: dict[str, tuple[str, ...]] = {
    "Bessell": ("bessellux", "bessellb", "bessellv", "bessellr", "besselli"),
    "Landolt standard": ("standard::u", "standard::b", "standard::v", "standard::r", "standard::i"),
    "DECam (DES)": ("desu", "desg", "desr", "desi", "desz", "desy"),
    "SDSS": ("sdssu", "sdssg", "sdssr", "sdssi", "sdssz"),
    "HST ACS WFC": ("f435w", "f475w", "f555w", "f606w", "f625w", "f775w", "f850lp"),
    "HST NICMOS": ("nicf110w", "nicf160w"),
    "HST WFC3 IR": ("f098m", "f105w", "f110w", "f125w", "f127m", "f139m", "f140w", "f153m", "f160w"),
    "HST WFC3 UVIS": (
        "f218w", "f225w", "f275w", "f300x", "f336w", "f350lp", "f390w", "f689m", "f763m", "f845m", "f438w",
        "uvf475w", "uvf555w", "uvf606w", "uvf625w", "uvf775w", "uvf814w", "uvf850lp",
    ),
    "Kepler": ("kepler",),
    "TESS": ("tess",),
    "CSP": (
        "cspb", "csphs", "csphd", "cspjs", "cspjd", "cspv3009", "cspv3014", "cspv9844", "cspys", "cspyd",
        "cspg", "cspi", "cspk", "cspr", "cspu",
    ),
    "JWST NIRCam": (
        "f070w", "f090w", "f115w", "f150w", "f200w", "f277w", "f356w", "f444w", "f140m", "f162m", "f182m",
        "f210m", "f250m", "f300m", "f335m", "f360m", "f410m", "f430m", "f460m", "f480m",
    ),
    "JWST MIRI": (
        "f560w", "f770w", "f1000w", "f1130w", "f1280w", "f1500w", "f1800w", "f2100w", "f2550w",
        "f1065c", "f1140c", "f1550c", "f2300c",
    ),
    "LSST": ("lsstu", "lsstg", "lsstr", "lssti", "lsstz", "lssty"),
    "KeplerCam": ("keplercam::us", "keplercam::b", "keplercam::v", "keplercam::r", "keplercam::i"),
    "4Shooter2": ("4shooter2::us", "4shooter2::b", "4shooter2::v", "4shooter2::r", "4shooter2::i"),
    "Roman WFI": ("f062", "f087", "f106", "f129", "f158", "f184", "f213", "f146"),
    "ZTF": ("ztfg", "ztfr", "ztfi"),
    "Swift UVOT": ("uvot::b", "uvot::u", "uvot::uvm2", "uvot::uvw1", "uvot::uvw2", "uvot::v", "uvot::white"),
    "Pan-STARRS1": ("ps1::open", "ps1::g", "ps1::r", "ps1::i", "ps1::z", "ps1::y", "ps1::w"),
    "ATLAS": ("atlasc", "atlaso"),
    "2MASS": ("2massj", "2massh", "2massks"),
    "Gaia": ("gaia::g", "gaia::gbp", "gaia::grp"),
    "MegaCam (position-averaged)": (
        "megacampsf::u", "megacampsf::g", "megacampsf::r", "megacampsf::i", "megacampsf::z", "megacampsf::y",
    ),
}

#: Every bandpass name accepted for photometry and instrument filter lists.
KNOWN_FILTERS: frozenset[str] = frozenset(name for names in _GROUPS.values() for name in names)

#: The same names grouped by instrument family, in a stable order (for documentation and pick lists).
FILTER_FAMILIES: dict[str, tuple[str, ...]] = dict(_GROUPS)


def check_filters(names: Iterable[str] | str, field: str = "filter") -> None:
    """Raise ApiError 400 naming `field` and every unknown bandpass in `names` (a name or an iterable)."""
    if isinstance(names, str):
        names = [names]
    unknown = []
    for name in names:
        if not isinstance(name, str):
            raise ApiError(400, f"`{field}` must name bandpasses as strings, got {shown(name)}")
        if name not in KNOWN_FILTERS and name not in unknown:
            unknown.append(name)
    if unknown:
        listed = ", ".join(repr(n) for n in unknown)
        raise ApiError(
            400,
            f"`{field}`: unknown filter(s) {listed}; use sncosmo bandpass names such as "
            "'ztfg', 'sdssr', 'bessellv', 'ps1::i', 'uvot::uvw1' (GET /api/photometry/filters lists them all)",
        )
