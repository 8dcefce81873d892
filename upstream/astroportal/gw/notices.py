"""GCN notices, read into one `Notice` shape: LVK `igwn.gwalert` JSON and VOEvent XML (LVK, Fermi GBM, Swift, ...).

Parsing needs no database and fetches nothing: a VOEvent that refers to its sky map by URL carries the URL in
`SkymapRef.url`; the caller decides how (or whether) to fetch it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone

GWALERT_STREAM = "igwn.gwalert"
VOEVENT_STREAM = "voevent"
GW_ALERT_TYPES = ("EARLYWARNING", "PRELIMINARY", "INITIAL", "UPDATE", "RETRACTION")
GW_CLASSES = ("BNS", "NSBH", "BBH")


class NoticeError(ValueError):
    """A notice that cannot be read; the message says what is wrong with it."""


@dataclass
class SkymapRef:
    """Where a notice's sky map is: FITS bytes, a URL (or file name) to fetch, or an error circle."""

    name: str
    data: bytes | None = None
    url: str | None = None
    circle: tuple[float, float, float] | None = None  # ra, dec, radius (deg)


@dataclass
class Notice:
    """One notice about one event. `dateobs` is None only for a notice that names its event without a time
    (an igwn.gwalert retraction): it is then found by `trigger_id`."""

    stream: str
    notice_type: str
    content: bytes
    date: datetime
    dateobs: datetime | None
    trigger_id: str | None = None
    aliases: list[str] = field(default_factory=list)
    ivorn: str | None = None
    tags: list[str] = field(default_factory=list)
    properties: dict = field(default_factory=dict)
    skymaps: list[SkymapRef] = field(default_factory=list)
    is_test: bool = False
    urls: dict = field(default_factory=dict)

    @property
    def is_retraction(self) -> bool:
        return self.notice_type.upper() == "RETRACTION"


def _utc(text: str, what: str) -> datetime:
    """An ISO time (Z, offset or naive UTC) as a naive UTC datetime."""
    if not isinstance(text, str) or not text.strip():
        raise NoticeError(f"{what} is missing")
    value = text.strip().replace("Z", "+00:00")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise NoticeError(f"{what} {text!r} is not an ISO 8601 time") from None
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    return when


def parse(content: bytes | str) -> Notice:
    """A notice from its raw content: igwn.gwalert JSON (an object) or VOEvent XML."""
    raw = content.encode() if isinstance(content, str) else bytes(content)
    head = raw.lstrip()[:1]
    if head == b"{":
        return parse_gwalert(raw)
    if head == b"<":
        return parse_voevent(raw)
    raise NoticeError("the notice is neither JSON (an igwn.gwalert object) nor XML (a VOEvent)")


# -- igwn.gwalert ------------------------------------------------------------------------------------------------
def _number(value, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise NoticeError(f"{what} must be a number, got {value!r}")
    return float(value)


def parse_gwalert(raw: bytes) -> Notice:
    """An LVK igwn.gwalert JSON alert (schema of the igwn-gwalert-schema package)."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise NoticeError(f"the igwn.gwalert notice is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise NoticeError("an igwn.gwalert notice is a JSON object")
    superevent = data.get("superevent_id")
    if not isinstance(superevent, str) or not superevent.strip():
        raise NoticeError("the igwn.gwalert notice has no superevent_id")
    alert_type = data.get("alert_type")
    if alert_type not in GW_ALERT_TYPES:
        raise NoticeError(f"alert_type {alert_type!r} is not one of {', '.join(GW_ALERT_TYPES)}")
    date = _utc(data.get("time_created"), "time_created")
    event = data.get("event")
    if event is not None and not isinstance(event, dict):
        raise NoticeError("`event` must be an object or null")
    notice = Notice(stream=GWALERT_STREAM, notice_type=alert_type, content=raw, date=date, dateobs=None,
                    trigger_id=superevent, aliases=[superevent], urls=dict(data.get("urls") or {}),
                    is_test=superevent.startswith(("M", "T")))
    if alert_type == "RETRACTION":
        notice.tags.append("RETRACTED")
    if event:
        notice.dateobs = _utc(event.get("time"), "event.time")
        props: dict = {}
        far = _number(event.get("far"), "event.far")
        if far is not None:
            props["FAR"] = far
        if "significant" in event:
            props["significant"] = bool(event["significant"])
        for key in ("instruments", "group", "pipeline", "search", "duration", "central_frequency"):
            if event.get(key) is not None:
                props[key] = event[key]
        classification = event.get("classification") or {}
        if isinstance(classification, dict) and classification:
            props["classification"] = {k: _number(v, f"classification.{k}") for k, v in classification.items()}
        for key, value in (event.get("properties") or {}).items():
            props[key] = _number(value, f"properties.{key}")
        notice.properties = props
        if event.get("search") == "MDC":
            notice.is_test = True
        notice.tags.append("GW")
        if props.get("significant"):
            notice.tags.append("Significant")
        if event.get("group") == "Burst":
            notice.tags.append("Burst")
        probs = props.get("classification") or {}
        if probs:
            best = max(probs, key=lambda k: probs[k] if probs[k] is not None else -1)
            if best in GW_CLASSES:
                notice.tags.append(best)
        skymap = event.get("skymap")
        if skymap:
            notice.skymaps.append(SkymapRef(name="", data=_base64(skymap, "event.skymap")))
    coinc = data.get("external_coinc")
    if isinstance(coinc, dict):
        info = {k: v for k, v in coinc.items() if k != "combined_skymap"}
        notice.properties["external_coinc"] = info
        observatory = coinc.get("observatory")
        if isinstance(observatory, str) and observatory:
            notice.tags.append(observatory)
        if coinc.get("combined_skymap"):
            notice.skymaps.append(SkymapRef(name="combined", data=_base64(coinc["combined_skymap"],
                                                                             "external_coinc.combined_skymap")))
    return notice


def _base64(text, what: str) -> bytes:
    if not isinstance(text, str):
        raise NoticeError(f"{what} must be a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NoticeError(f"{what} is not valid base64") from None


# -- VOEvent -----------------------------------------------------------------------------------------------------
def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(node: ET.Element, *path: str) -> ET.Element | None:
    for name in path:
        if node is None:
            return None
        node = next((c for c in node if _local(c.tag) == name), None)
    return node


def _params(what: ET.Element | None) -> tuple[dict[str, str], dict[str, dict[str, str]], dict[str, ET.Element]]:
    """Top-level params {name: value}, groups' params {group name or type: {name: value}}, groups by key."""
    top: dict[str, str] = {}
    groups: dict[str, dict[str, str]] = {}
    elements: dict[str, ET.Element] = {}
    if what is None:
        return top, groups, elements
    for child in what:
        tag = _local(child.tag)
        if tag == "Param" and child.get("name"):
            top[child.get("name")] = child.get("value", "")
        elif tag == "Group":
            params = {p.get("name"): p.get("value", "") for p in child if _local(p.tag) == "Param" and p.get("name")}
            for key in filter(None, (child.get("type"), child.get("name"))):
                groups.setdefault(key, {}).update(params)
                elements.setdefault(key, child)
    return top, groups, elements


def _float(value: str | None) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def parse_voevent(raw: bytes) -> Notice:
    """A VOEvent 2.0 notice: LVK (GW, sky map by URL), or a GRB mission's (Fermi GBM, Swift...: an error circle)."""
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise NoticeError(f"the notice is not well-formed XML: {exc}") from None
    if _local(root.tag) != "VOEvent":
        raise NoticeError(f"the XML is a <{_local(root.tag)}>, not a <VOEvent>")
    ivorn = root.get("ivorn")
    if not ivorn:
        raise NoticeError("the VOEvent has no ivorn")
    top, groups, elements = _params(_find(root, "What"))
    coords = _find(root, "WhereWhen", "ObsDataLocation", "ObservationLocation", "AstroCoords")
    iso = _find(coords, "Time", "TimeInstant", "ISOTime") if coords is not None else None
    dateobs = _utc(iso.text if iso is not None else None, "WhereWhen's ISOTime")
    who_date = _find(root, "Who", "Date")
    date = _utc(who_date.text, "Who/Date") if who_date is not None and who_date.text else dateobs
    authority = ivorn.split("#", 1)[0].rsplit("/", 1)[-1]  # LVC, Fermi, SWIFT, ...
    fragment = ivorn.split("#", 1)[-1]
    notice = Notice(stream=VOEVENT_STREAM, notice_type="", content=raw, date=date, dateobs=dateobs, ivorn=ivorn,
                    is_test=root.get("role", "observation") != "observation")
    flags = {k: v for g in groups.values() for k, v in g.items()}
    if str(flags.get("Test_Submission", "")).lower() == "true":
        notice.is_test = True

    if "GraceID" in top:  # LVK (LVC) notices
        grace = top["GraceID"]
        notice.trigger_id = grace
        notice.aliases = [grace]
        notice.notice_type = (top.get("AlertType") or "UNKNOWN").upper()
        notice.is_test = notice.is_test or grace.startswith(("M", "T")) or top.get("Search") == "MDC"
        props: dict = {}
        if _float(top.get("FAR")) is not None:
            props["FAR"] = _float(top["FAR"])
        for key, param in (("group", "Group"), ("pipeline", "Pipeline"), ("search", "Search")):
            if top.get(param):
                props[key] = top[param]
        if top.get("Instruments"):
            props["instruments"] = [i for i in top["Instruments"].split(",") if i]
        if top.get("Significant") is not None:
            props["significant"] = top["Significant"] in ("1", "true", "True")
        classification = {k: _float(v) for k, v in groups.get("Classification", {}).items()}
        if classification:
            props["classification"] = classification
        for key, value in groups.get("Properties", {}).items():
            props[key] = _float(value)
        notice.properties = props
        if notice.notice_type == "RETRACTION":
            notice.tags.append("RETRACTED")
        notice.tags.append("GW")
        if props.get("significant"):
            notice.tags.append("Significant")
        gw = {k: v for k, v in classification.items() if v is not None}
        if gw:
            best = max(gw, key=gw.get)
            if best in GW_CLASSES:
                notice.tags.append(best)
        sky = elements.get("GW_SKYMAP")
        if sky is not None:
            url = groups["GW_SKYMAP"].get("skymap_fits")
            if url:
                notice.skymaps.append(SkymapRef(name=url.rsplit("/", 1)[-1] or sky.get("name", "skymap"), url=url))
        if top.get("EventPage"):
            notice.urls["gracedb"] = top["EventPage"]
        return notice

    # GRB missions: Fermi GBM, Swift BAT/XRT/UVOT, ... with a position and an error radius.
    mission = {"fermi": "Fermi", "swift": "Swift"}.get(authority.lower(), authority)
    notice.tags += [mission, "GRB"] if mission in ("Fermi", "Swift") else [mission]
    match = re.match(r"([A-Za-z][A-Za-z_]*?)_(?=\d)", fragment)
    notice.notice_type = match.group(1) if match else fragment
    trig = top.get("TrigID")
    if trig:
        notice.trigger_id = trig
        notice.aliases = [f"{mission.upper()}#{trig}"]
    burst = re.search(r"(bn\d{9})", top.get("LightCurve_URL", "") or "")
    if burst:
        notice.aliases.append(f"{mission.upper()}#{burst.group(1)}")
    props = {}
    for key in ("Burst_Signif", "Rate_Signif", "Image_Signif", "Data_Integ", "Integ_Time", "Pkt_Ser_Num"):
        if _float(top.get(key)) is not None:
            props[key] = _float(top[key])
    if str(flags.get("Def_NOT_a_GRB", "")).lower() == "true":
        props["not_a_grb"] = True
    notice.properties = props
    position = _find(coords, "Position2D") if coords is not None else None
    if position is not None:
        ra = _float(getattr(_find(position, "Value2", "C1"), "text", None))
        dec = _float(getattr(_find(position, "Value2", "C2"), "text", None))
        err = _float(getattr(_find(position, "Error2Radius"), "text", None))
        if ra is not None and dec is not None and err is not None and err > 0:
            notice.properties.update({"ra": ra, "dec": dec, "error_radius_deg": err})
            notice.skymaps.append(SkymapRef(name=f"{ra:.5f}_{dec:.5f}_{err:.5f}", circle=(ra, dec, err)))
    return notice
