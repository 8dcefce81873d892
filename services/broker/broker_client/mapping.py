"""One Fink/ZTF alert -> the portal writes that record it: source, candidate, photometry, classification, thumbnails.

Alerts arrive in the shape of Fink's Avro records (the REST source converts its rows to the same shape):
`objectId`, `candid`, `candidate` (the detection), `prv_candidates` (earlier detections and upper limits),
`cutoutScience`/`cutoutTemplate`/`cutoutDifference` ({stampData: gzipped FITS}) and Fink's added fields
(`cdsxmatch`, `rf_kn_vs_nonkn`, `snn_snia_vs_nonia`, ...). A NaN or missing field loses only what needs it.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

JD_MJD = 2400000.5
JD_UNIX_EPOCH = 2440587.5
ZTF_FILTERS = {1: "ztfg", 2: "ztfr", 3: "ztfi"}
CUTOUTS = (("cutoutScience", "new"), ("cutoutTemplate", "ref"), ("cutoutDifference", "sub"))

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
    points: list[dict] = field(default_factory=list)
    classifications: list[dict] = field(default_factory=list)
    thumbnails: list[dict] = field(default_factory=list)
    annotations: dict = field(default_factory=dict)


def number(value: Any) -> float | None:
    """A finite float, or None for missing, NaN, infinite or non-numeric values."""
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def integer(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def jd_to_iso(jd: float) -> str:
    """A Julian date as an ISO 8601 UTC time (microsecond precision)."""
    t = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(days=jd - JD_UNIX_EPOCH)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def fink_class(record: dict, topic: str | None) -> str | None:
    """The alert's Fink class: from its Kafka topic, else Fink's own `classification` field (REST)."""
    for name in (topic, record.get("topic")):
        if name in TOPIC_CLASSES:
            return TOPIC_CLASSES[name]
        # A topic name with a deployment's prefix (e.g. "test_fink_kn_candidates_ztf") keeps its class.
        if isinstance(name, str):
            known = [t for t in TOPIC_CLASSES if name.endswith("_" + t) or name.endswith("." + t)]
            if known:
                return TOPIC_CLASSES[max(known, key=len)]
        if isinstance(name, str) and name in FINK_CLASSES:
            return name
    cls = record.get("classification")
    if isinstance(cls, str) and cls in FINK_CLASSES:
        return cls
    return None


def point(entry: dict, obj_id: str, ctx: Context) -> dict | None:
    """One photometry point from a candidate or prv_candidates entry; None when it cannot be a point."""
    jd = number(entry.get("jd"))
    band = ZTF_FILTERS.get(integer(entry.get("fid")))
    if jd is None or band is None:
        return None
    mag, magerr, limit = number(entry.get("magpsf")), number(entry.get("sigmapsf")), number(entry.get("diffmaglim"))
    if mag is not None and magerr is not None and magerr > 0:
        values = {"mag": mag, "magerr": magerr, "limiting_mag": limit}
    elif limit is not None:
        # A non-detection (or a detection whose error is lost): only its limiting magnitude is known.
        values = {"mag": None, "magerr": None, "limiting_mag": limit}
    else:
        return None
    ra, dec = number(entry.get("ra")), number(entry.get("dec"))
    return {
        "obj_id": obj_id, "mjd": jd - JD_MJD, "filter": band, "instrument_id": ctx.instrument_id,
        "alert_id": integer(entry.get("candid")), "ra": ra if ra is not None and 0 <= ra < 360 else None,
        "dec": dec if dec is not None and -90 <= dec <= 90 else None, **values,
    }


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

    for entry in [cand, *(record.get("prv_candidates") or [])]:
        if isinstance(entry, dict):
            p = point(entry, obj_id, ctx)
            if p is not None:
                writes.points.append(p)

    scores = {}
    for name in SCORE_FIELDS:
        value = record.get(name)
        if isinstance(value, str):
            scores[name] = value
        elif number(value) is not None:
            scores[name] = number(value)
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
                                      "data": base64.b64encode(bytes(data)).decode("ascii")})
    return writes


def _preference(p: dict) -> tuple:
    """Which of two measurements of an object at the same time and band is kept (lowest first): a detection over
    a non-detection, then the smaller error, then the smaller alert id. It depends on the points alone, so every
    alert carrying them makes the same choice and sending them again changes nothing."""
    return (p["mag"] is None, p["magerr"] if p["magerr"] is not None else math.inf,
            p["alert_id"] if p["alert_id"] is not None else 2**63, p["mag"] if p["mag"] is not None else math.inf)


def one_per_key(points: list[dict]) -> list[dict]:
    """One point per (object, instrument, band, time), in first-seen order.

    The portal keeps one point per such key and refuses a batch naming one twice with different values. Real
    alerts do: a light curve can hold two detections of one exposure (the object on two readout channels), and
    the same detection comes back in every later alert's history."""
    kept: dict[tuple, dict] = {}
    for p in points:
        key = (p["obj_id"], p["instrument_id"], p["filter"], p["mjd"])
        if key not in kept or _preference(p) < _preference(kept[key]):
            kept[key] = p
    return list(kept.values())


def photometry_body(points: list[dict], group_ids: list[int], origin: str) -> dict:
    """The points of a batch as one PUT /api/photometry body (columns; one point per object, band and time)."""
    cols = ("obj_id", "mjd", "filter", "instrument_id", "mag", "magerr", "limiting_mag", "alert_id", "ra", "dec")
    points = one_per_key(points)
    body: dict[str, Any] = {c: [p[c] for p in points] for c in cols}
    body.update(magsys="ab", origin=origin, group_ids=group_ids)
    return body
