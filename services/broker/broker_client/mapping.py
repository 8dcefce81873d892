"""One Fink/ZTF alert -> the portal writes that record it: source, candidate, photometry, classification, thumbnails.

Alerts arrive in the shape of Fink's Avro records (the REST source converts its rows to the same shape):
`objectId`, `candid`, `candidate` (the detection), `prv_candidates` (earlier detections and upper limits),
`cutoutScience`/`cutoutTemplate`/`cutoutDifference` ({stampData: gzipped FITS}) and Fink's added fields
(`cdsxmatch`, `rf_kn_vs_nonkn`, `snn_snia_vs_nonia`, ...). A NaN or missing field loses only what needs it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

try:  # pybase64's SIMD encoder: the cutouts (~40 kB an alert) are the most bytes the service handles
    from pybase64 import b64encode_as_string as base64_text
except ImportError:  # pragma: no cover - the standard library gives the same text, about twice as slowly
    import base64

    def base64_text(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")


JD_MJD = 2400000.5
JD_UNIX_EPOCH = 2440587.5
ZTF_FILTERS = {1: "ztfg", 2: "ztfr", 3: "ztfi"}
CUTOUTS = (("cutoutScience", "new"), ("cutoutTemplate", "ref"), ("cutoutDifference", "sub"))
#: A photometry point's values, in the order of its tuple (and the columns of PUT /api/photometry).
POINT_COLUMNS = ("obj_id", "mjd", "filter", "instrument_id", "mag", "magerr", "limiting_mag", "alert_id", "ra", "dec")

# Fink's science classes: the taxonomy the service makes sure exists, and how its topics map onto it.
FINK_CLASSES = [
    "Kilonova candidate", "Early Kilonova candidate", "Early SN Ia candidate", "SN candidate",
    "Microlensing candidate", "Solar System candidate", "Solar System MPC", "Tracklet", "Anomaly",
    "Ambiguous", "Unknown",
]
TOPIC_CLASSES = {
    "fink_kn_candidates_ztf": "Kilonova candidate",
    "fink_rate_based_kn_candidates_ztf": "Kilonova candidate",
    "fink_early_kn_candidates_ztf": "Early Kilonova candidate",
    "fink_early_sn_candidates_ztf": "Early SN Ia candidate",
    "fink_sn_candidates_ztf": "SN candidate",
    "fink_microlensing_candidates_ztf": "Microlensing candidate",
    "fink_sso_ztf_candidates_ztf": "Solar System candidate",
    "fink_sso_fink_candidates_ztf": "Solar System candidate",
    "fink_tracklet_ztf": "Tracklet",
    "fink_anomaly": "Anomaly",
}
# The score that is the probability of each class, where Fink has one.
CLASS_SCORES = {
    "Kilonova candidate": "rf_kn_vs_nonkn",
    "Early Kilonova candidate": "rf_kn_vs_nonkn",
    "Early SN Ia candidate": "rf_snia_vs_nonia",
    "SN candidate": "snn_snia_vs_nonia",
}
# Fink's science fields kept as the alert's annotation (when present and finite).
SCORE_FIELDS = ("rf_kn_vs_nonkn", "rf_snia_vs_nonia", "snn_snia_vs_nonia", "snn_sn_vs_all", "rfscore", "snn",
                "mulens", "anomaly_score", "roid", "cdsxmatch", "nalerthist")


class MappingError(Exception):
    """An alert that cannot be written at all (no object id, no position): it goes to the dead letters."""


@dataclass
class Context:
    """What the portal's setup resolved: ids the writes refer to."""

    group_ids: list[int]
    instrument_id: int
    filter_id: int | None = None
    taxonomy_id: int | None = None
    origin: str = "Fink"


@dataclass
class AlertWrites:
    obj_id: str
    candid: int | None
    source: dict
    candidate: dict | None
    points: list[tuple] = field(default_factory=list)  # each in POINT_COLUMNS order (see point)
    classifications: list[dict] = field(default_factory=list)
    thumbnails: list[dict] = field(default_factory=list)
    annotations: dict = field(default_factory=dict)


def number(value: Any) -> float | None:
    """A finite float, or None for missing, NaN, infinite or non-numeric values."""
    if type(value) is float:  # the common case (what the Avro decoders give): no conversion needed
        return value if value - value == 0.0 else None  # x - x is NaN for NaN and infinities, 0.0 otherwise
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def integer(value: Any) -> int | None:
    """An int, or None for missing, boolean or non-numeric values."""
    if type(value) is int:
        return value
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an infinite float
        return None


def jd_to_iso(jd: float) -> str:
    """A Julian date as an ISO 8601 UTC time (microsecond precision)."""
    t = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(days=jd - JD_UNIX_EPOCH)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@functools.lru_cache(maxsize=1024)
def _topic_class(name: str) -> str | None:
    """The Fink class a topic name (or class name) stands for; cached, as every alert of a stream names the same."""
    if name in TOPIC_CLASSES:
        return TOPIC_CLASSES[name]
    # A topic name with a deployment's prefix (e.g. "test_fink_kn_candidates_ztf") keeps its class.
    known = [t for t in TOPIC_CLASSES if name.endswith("_" + t) or name.endswith("." + t)]
    if known:
        return TOPIC_CLASSES[max(known, key=len)]
    return name if name in FINK_CLASSES else None


def fink_class(record: dict, topic: str | None) -> str | None:
    """The alert's Fink class: from its Kafka topic, else Fink's own `classification` field (REST)."""
    for name in (topic, record.get("topic")):
        if isinstance(name, str):
            cls = _topic_class(name)
            if cls is not None:
                return cls
        elif name in TOPIC_CLASSES:
            return TOPIC_CLASSES[name]
    cls = record.get("classification")
    if isinstance(cls, str) and cls in FINK_CLASSES:
        return cls
    return None


def point(entry: dict, obj_id: str, ctx: Context) -> tuple | None:
    """One photometry point from a candidate or prv_candidates entry, as a tuple in POINT_COLUMNS order; None when
    it cannot be a point.

    Why a tuple and the inline checks: this runs for every entry of every light curve (~50 an alert), and the
    decoders give floats and ints already, so the common case skips the general conversions of number/integer."""
    get = entry.get
    jd = get("jd")
    if type(jd) is not float or jd - jd != 0.0:  # x - x is 0.0 for a finite float only
        jd = number(jd)
        if jd is None:
            return None
    fid = get("fid")
    band = ZTF_FILTERS.get(fid if type(fid) is int else integer(fid))
    if band is None:
        return None
    mag, magerr, limit = get("magpsf"), get("sigmapsf"), get("diffmaglim")
    if mag is not None and (type(mag) is not float or mag - mag):  # NaN is true, 0.0 false
        mag = number(mag)
    if magerr is not None and (type(magerr) is not float or magerr - magerr):
        magerr = number(magerr)
    if limit is not None and (type(limit) is not float or limit - limit):
        limit = number(limit)
    if mag is None or magerr is None or not magerr > 0:
        if limit is None:
            return None
        # A non-detection (or a detection whose error is lost): only its limiting magnitude is known.
        mag = magerr = None
    candid, ra, dec = get("candid"), get("ra"), get("dec")
    if candid is not None and type(candid) is not int:
        candid = integer(candid)
    if ra is not None and (type(ra) is not float or ra - ra):
        ra = number(ra)
    if dec is not None and (type(dec) is not float or dec - dec):
        dec = number(dec)
    return (obj_id, jd - JD_MJD, band, ctx.instrument_id, mag, magerr, limit, candid,
            ra if ra is not None and 0 <= ra < 360 else None, dec if dec is not None and -90 <= dec <= 90 else None)


def map_alert(record: Any, topic: str | None, ctx: Context) -> AlertWrites:
    """The portal writes of one alert; MappingError when it has no object id or usable position."""
    if not isinstance(record, dict):
        raise MappingError(f"the alert is not a record but {type(record).__name__}")
    obj_id = record.get("objectId")
    if not isinstance(obj_id, str) or not obj_id.strip() or "/" in obj_id:
        raise MappingError(f"the alert has no usable objectId ({obj_id!r:.60})")
    cand = record.get("candidate")
    if not isinstance(cand, dict):
        raise MappingError(f"alert {obj_id} has no `candidate` record (the detection)")
    ra, dec = number(cand.get("ra")), number(cand.get("dec"))
    if ra is None or dec is None or not (0 <= ra < 360 and -90 <= dec <= 90):
        raise MappingError(f"alert {obj_id} has no valid position (ra {cand.get('ra')!r}, dec {cand.get('dec')!r})")
    candid = integer(record.get("candid")) or integer(cand.get("candid"))
    if candid is not None and not 0 <= candid < 2**63:
        candid = None
    source = {"id": obj_id, "ra": ra, "dec": dec, "group_ids": ctx.group_ids, "origin": ctx.origin}
    jd = number(cand.get("jd"))
    candidate = None
    if ctx.filter_id is not None and jd is not None:
        candidate = {"id": obj_id, "ra": ra, "dec": dec, "filter_ids": [ctx.filter_id],
                     "passed_at": jd_to_iso(jd), "passing_alert_id": candid, "origin": ctx.origin}
    writes = AlertWrites(obj_id=obj_id, candid=candid, source=source, candidate=candidate)

    points = writes.points
    p = point(cand, obj_id, ctx)
    if p is not None:
        points.append(p)
    for entry in record.get("prv_candidates") or ():
        if isinstance(entry, dict):
            p = point(entry, obj_id, ctx)
            if p is not None:
                points.append(p)

    scores = {}
    for name in SCORE_FIELDS:
        value = record.get(name)
        if isinstance(value, str):
            scores[name] = value
        elif value is not None:
            value = number(value)
            if value is not None:
                scores[name] = value
    writes.annotations = scores
    cls = fink_class(record, topic)
    if cls is not None and ctx.taxonomy_id is not None:
        prob = number(record.get(CLASS_SCORES.get(cls, ""), None))
        writes.classifications.append({
            "obj_id": obj_id, "taxonomy_id": ctx.taxonomy_id, "classification": cls,
            "probability": prob if prob is not None and 0 <= prob <= 1 else None, "group_ids": ctx.group_ids,
        })

    for key, ttype in CUTOUTS:
        cutout = record.get(key)
        data = cutout.get("stampData") if isinstance(cutout, dict) else None
        if isinstance(data, (bytes, bytearray)) and data:
            writes.thumbnails.append({"obj_id": obj_id, "ttype": ttype, "origin": ctx.origin,
                                      "data": base64_text(data)})
    return writes


def _preference(p: tuple) -> tuple:
    """Which of two measurements of an object at the same time and band is kept (lowest first): a detection over
    a non-detection, then the smaller error, then the smaller alert id. It depends on the points alone, so every
    alert carrying them makes the same choice and sending them again changes nothing."""
    _, _, _, _, mag, magerr, _, alert_id, _, _ = p
    return (mag is None, magerr if magerr is not None else math.inf,
            alert_id if alert_id is not None else 2**63, mag if mag is not None else math.inf)


def one_per_key(points: list[tuple]) -> list[tuple]:
    """One point per (object, instrument, band, time), in first-seen order.

    The portal keeps one point per such key and refuses a batch naming one twice with different values. Real
    alerts do: a light curve can hold two detections of one exposure (the object on two readout channels), and
    the same detection comes back in every later alert's history."""
    kept: dict[tuple, tuple] = {}
    first = kept.setdefault
    for p in points:
        key = (p[0], p[3], p[2], p[1])
        q = first(key, p)
        if q is not p and _preference(p) < _preference(q):
            kept[key] = p
    return points if len(kept) == len(points) else list(kept.values())


#: The most points the portal takes in one photometry upload (its MAX_BATCH_POINTS).
MAX_POINTS_PER_REQUEST = 20_000


def photometry_body(points: list[tuple], group_ids: list[int], origin: str) -> dict:
    """The points of a batch (tuples of POINT_COLUMNS) as one PUT /api/photometry body (columns; one point per
    object, band and time)."""
    return _columns(one_per_key(points), group_ids, origin)


def photometry_bodies(points: list[tuple], group_ids: list[int], origin: str,
                      limit: int = MAX_POINTS_PER_REQUEST) -> list[dict]:
    """The points of a batch as PUT /api/photometry bodies of at most `limit` points each: two hundred alerts
    with long light curves hold more than the portal takes at once (it would refuse the whole batch). The
    duplicates are settled over the whole batch first, so that every body agrees on which point is kept."""
    points = one_per_key(points)
    return [_columns(points[start:start + limit], group_ids, origin) for start in range(0, len(points), limit)]


def _columns(points: list[tuple], group_ids: list[int], origin: str) -> dict:
    columns = zip(*points) if points else [()] * len(POINT_COLUMNS)
    body: dict[str, Any] = {c: list(values) for c, values in zip(POINT_COLUMNS, columns)}
    body.update(magsys="ab", origin=origin, group_ids=group_ids)
    return body
