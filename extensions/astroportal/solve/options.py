"""nova.astrometry.net's request options: each checked, and refused by name when unknown or out of range.

nova ignores what it does not know and treats a centre of RA 0 or Dec 0 as "no hint"; here an unknown option
is an error naming it, and 0 is a position like any other.
"""

from __future__ import annotations

import math
from typing import Any

from astroportal.errors import ApiError

SCALE_UNITS = ("degwidth", "arcminwidth", "arcsecperpix", "focalmm")
LICENCE_CHOICES = ("y", "n", "d")

# Keys of the request-json that are not solving options: who is asking, and what to fetch.
PROTOCOL_KEYS = {"session", "apikey", "url"}
XY_KEYS = {"x", "y", "image_width", "image_height"}


def _number(key: str, value: Any, *, low: float | None = None, high: float | None = None,
            low_open: bool = False, integer: bool = False) -> float | int:
    """`value` as a number within bounds; ApiError(400) naming `key` otherwise."""
    if isinstance(value, bool) or value is None:
        raise ApiError(400, f"option `{key}` must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"option `{key}` must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ApiError(400, f"option `{key}` must be a finite number, got {value!r}")
    if integer:
        if number != int(number):
            raise ApiError(400, f"option `{key}` must be a whole number, got {value!r}")
        number = int(number)
    if low is not None and (number < low or (low_open and number == low)):
        bound = f"greater than {low:g}" if low_open else f"at least {low:g}"
        raise ApiError(400, f"option `{key}` must be {bound}, got {value!r}")
    if high is not None and number > high:
        raise ApiError(400, f"option `{key}` must be at most {high:g}, got {value!r}")
    return number


def _flag(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1, "0", "1", "true", "false", "True", "False", "y", "n"):
        return str(value) in ("1", "true", "True", "y")
    raise ApiError(400, f"option `{key}` must be true or false, got {value!r}")


def _choice(key: str, value: Any, choices: tuple) -> Any:
    if value not in choices:
        raise ApiError(400, f"option `{key}` must be one of {', '.join(map(str, choices))}; got {value!r}")
    return value


# key -> checker returning the normalized value.
CHECKS = {
    "scale_units": lambda k, v: _choice(k, v, SCALE_UNITS),
    "scale_type": lambda k, v: _choice(k, v, ("ul", "ev")),
    "scale_lower": lambda k, v: _number(k, v, low=0, low_open=True),
    "scale_upper": lambda k, v: _number(k, v, low=0, low_open=True),
    "scale_est": lambda k, v: _number(k, v, low=0, low_open=True),
    "scale_err": lambda k, v: _number(k, v, low=0, high=100, low_open=True),
    "center_ra": lambda k, v: _number(k, v, low=0, high=360),
    "center_dec": lambda k, v: _number(k, v, low=-90, high=90),
    "radius": lambda k, v: _number(k, v, low=0, high=180, low_open=True),
    "downsample_factor": lambda k, v: _number(k, v, low=1, high=32, integer=True),
    "parity": lambda k, v: _choice(k, _number(k, v, integer=True), (0, 1, 2)),
    "tweak_order": lambda k, v: _number(k, v, low=0, high=10, integer=True),
    "crpix_center": _flag,
    "invert": _flag,
    "positional_error": lambda k, v: _number(k, v, low=0, high=100, low_open=True),
    "use_sextractor": lambda k, v: _no_sextractor(k, _flag(k, v)),
    "publicly_visible": lambda k, v: _choice(k, v, ("y", "n")),
    "allow_commercial_use": lambda k, v: _choice(k, v, LICENCE_CHOICES),
    "allow_modifications": lambda k, v: _choice(k, v, LICENCE_CHOICES),
    "album": lambda k, v: str(v)[:200],
}


def _no_sextractor(key: str, value: bool) -> bool:
    if value:
        raise ApiError(400, "option `use_sextractor`: Source Extractor is not available here; leave it out "
                            "(astrometry.net's own source detection is used)")
    return value


def check_options(request: dict, *, extra_allowed: set[str] = frozenset()) -> dict:
    """The solving options of a nova request-json, checked and normalized (None values count as absent).

    Raises ApiError(400) naming the first unknown option or the first value out of range, and when options that
    only make sense together are incomplete (a scale type without its bounds, a centre without its radius).
    """
    out: dict[str, Any] = {}
    for key, value in request.items():
        if key in PROTOCOL_KEYS or key in extra_allowed:
            continue
        if key not in CHECKS:
            raise ApiError(400, f"unknown option `{key}`; the options are {', '.join(sorted(CHECKS))}")
        if value is None:
            continue
        out[key] = CHECKS[key](key, value)
    scale_keys = {"scale_lower", "scale_upper", "scale_est", "scale_err"} & out.keys()
    if scale_keys or "scale_type" in out:
        kind = out.setdefault("scale_type", "ev" if {"scale_est", "scale_err"} & scale_keys else "ul")
        need = ("scale_est", "scale_err") if kind == "ev" else ("scale_lower", "scale_upper")
        missing = [k for k in need if k not in out]
        if missing:
            raise ApiError(400, f"scale_type {kind} needs {' and '.join(need)}; missing {', '.join(missing)}")
        if kind == "ul" and out["scale_upper"] < out["scale_lower"]:
            raise ApiError(400, f"option `scale_upper` ({out['scale_upper']:g}) is below `scale_lower` "
                                f"({out['scale_lower']:g})")
        out.setdefault("scale_units", "degwidth")
    centre = {"center_ra", "center_dec"} & out.keys()
    if centre and len(centre) == 1:
        raise ApiError(400, "options `center_ra` and `center_dec` go together; give both (0 is a valid value)")
    if centre and "radius" not in out:
        raise ApiError(400, "options `center_ra`/`center_dec` need `radius` (degrees to search around them)")
    if "radius" in out and not centre:
        raise ApiError(400, "option `radius` needs `center_ra` and `center_dec`")
    return out


def check_xy_list(request: dict, max_sources: int = 100_000) -> tuple[list[float], list[float], int, int]:
    """The x/y list of a source-list upload (`x`, `y`, `image_width`, `image_height`), checked."""
    missing = [k for k in ("x", "y", "image_width", "image_height") if request.get(k) is None]
    if missing:
        raise ApiError(400, f"a source-list upload needs x, y, image_width and image_height; missing "
                            f"{', '.join(missing)}")
    xs, ys = request["x"], request["y"]
    if not isinstance(xs, list) or not isinstance(ys, list):
        raise ApiError(400, "`x` and `y` must be lists of pixel positions")
    if len(xs) != len(ys):
        raise ApiError(400, f"`x` has {len(xs)} values and `y` {len(ys)}: they must have the same length")
    if not 3 <= len(xs) <= max_sources:
        raise ApiError(400, f"the source list must have between 3 and {max_sources} positions, got {len(xs)}")
    width = _number("image_width", request["image_width"], low=1, high=1_000_000, integer=True)
    height = _number("image_height", request["image_height"], low=1, high=1_000_000, integer=True)
    x = [_number("x", v) for v in xs]
    y = [_number("y", v) for v in ys]
    return x, y, width, height


def solve_field_arguments(options: dict) -> list[str]:
    """solve-field's arguments for checked options (used by the workers: the mapping is part of the protocol)."""
    args: list[str] = []
    units = options.get("scale_units")
    if options.get("scale_type") == "ul":
        args += ["--scale-units", units, "--scale-low", repr(options["scale_lower"]),
                 "--scale-high", repr(options["scale_upper"])]
    elif options.get("scale_type") == "ev":
        est, err = options["scale_est"], options["scale_err"]
        args += ["--scale-units", units, "--scale-low", repr(est * (1 - err / 100)),
                 "--scale-high", repr(est * (1 + err / 100))]
    if "center_ra" in options:
        args += ["--ra", repr(options["center_ra"]), "--dec", repr(options["center_dec"]),
                 "--radius", repr(options["radius"])]
    if "downsample_factor" in options:
        args += ["--downsample", str(options["downsample_factor"])]
    if options.get("parity") in (0, 1):
        args += ["--parity", "pos" if options["parity"] == 0 else "neg"]
    if "tweak_order" in options:
        args += ["--no-tweak"] if options["tweak_order"] == 0 else ["--tweak-order", str(options["tweak_order"])]
    if options.get("crpix_center"):
        args += ["--crpix-center"]
    if options.get("invert"):
        args += ["--invert"]
    if "positional_error" in options:
        args += ["--pixel-error", repr(options["positional_error"])]
    return args
